// The few Docker Engine API calls cni-shim makes (reconciliation, compare), with timeouts so a
// stuck daemon can never stall us.
import Docker from "dockerode";

export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

export function dockerClient(socketPath = process.env.DOCKER_SOCKET ?? DEFAULT_DOCKER_SOCKET, timeoutMs = 10_000): Docker {
  return new Docker({ socketPath, timeout: timeoutMs });
}

export interface DockerNetworkView {
  id: string;
  name: string;
  driver: string;
  /** Endpoint ids Docker still has on this network, with the container they belong to. */
  endpoints: Map<string, { containerId: string; name: string }>;
}

/** Docker's networks of the given driver names with their endpoints. */
export async function networksOfDriver(docker: Docker, drivers: string[]): Promise<Map<string, DockerNetworkView>> {
  const list = await docker.listNetworks();
  const out = new Map<string, DockerNetworkView>();
  for (const summary of list.filter((n) => drivers.includes(n.Driver))) {
    const info = (await docker.getNetwork(summary.Id).inspect()) as { Id: string; Name: string; Driver: string; Containers?: Record<string, { EndpointID: string; Name: string }> };
    const endpoints = new Map<string, { containerId: string; name: string }>();
    for (const [containerId, c] of Object.entries(info.Containers ?? {})) endpoints.set(c.EndpointID, { containerId, name: c.Name });
    out.set(info.Id, { id: info.Id, name: info.Name, driver: info.Driver, endpoints });
  }
  return out;
}
