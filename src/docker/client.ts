// The Docker Engine API client cni-shim uses (attach, compare, endpoints), with timeouts so a
// stuck daemon can never stall us. dockerode (and what it pulls in, ~30 MB of a process's
// memory) is loaded only when a client is made: the plugin itself asks Docker through
// docker/networks.ts and docker/restart-recovery.ts. The socket is always the settings'
// dockerSocket (--docker-socket, CNI_SHIM_DOCKER_SOCKET, DOCKER_HOST, default), resolved in
// settings.ts only.
import { createRequire } from "node:module";
import type Docker from "dockerode";

const require = createRequire(import.meta.url);

export function dockerClient(socketPath: string, timeoutMs = 10_000): Docker {
  const DockerClass = require("dockerode") as typeof Docker;
  // docker-modem reads DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH ...) when it is
  // constructed, and a tcp:// or ssh:// DOCKER_HOST would win over socketPath: it would talk to
  // another engine than --docker-socket names. It sees the socket given here instead.
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `unix://${socketPath}`;
  try {
    return new DockerClass({ socketPath, timeout: timeoutMs });
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
}
