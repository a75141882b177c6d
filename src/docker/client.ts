// The Docker Engine API client cni-shim uses (reconciliation, attach, compare, endpoints), with
// timeouts so a stuck daemon can never stall us.
import Docker from "dockerode";

export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

export function dockerClient(socketPath = process.env.DOCKER_SOCKET ?? DEFAULT_DOCKER_SOCKET, timeoutMs = 10_000): Docker {
  return new Docker({ socketPath, timeout: timeoutMs });
}
