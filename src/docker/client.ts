// The Docker Engine API client cni-shim uses (attach, compare, endpoints), with timeouts so a
// stuck daemon can never stall us. dockerode (and what it pulls in, ~30 MB of a process's
// memory) is loaded only when a client is made: the plugin itself asks Docker through
// docker/networks.ts and docker/restart-recovery.ts.
import { createRequire } from "node:module";
import type Docker from "dockerode";
import { DEFAULT_DOCKER_SOCKET } from "./socket.js";

export { DEFAULT_DOCKER_SOCKET } from "./socket.js";

const require = createRequire(import.meta.url);

export function dockerClient(socketPath = process.env.DOCKER_SOCKET ?? DEFAULT_DOCKER_SOCKET, timeoutMs = 10_000): Docker {
  const DockerClass = require("dockerode") as typeof Docker;
  return new DockerClass({ socketPath, timeout: timeoutMs });
}
