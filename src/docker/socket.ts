// Where the Docker Engine API listens by default, and the one form of DOCKER_HOST cni-shim can use.
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

/**
 * The socket path of a DOCKER_HOST value (`unix:///run/docker.sock`). cni-shim runs next to the
 * engine and talks to it over its unix socket only: tcp://, ssh://, fd://, npipe:// and bare
 * host names (which the docker CLI takes for tcp) are refused with what to do instead.
 */
export function dockerHostSocket(dockerHost: string): string {
  const path = /^unix:\/\/(\/.*)$/.exec(dockerHost)?.[1];
  if (path) return path;
  const why = dockerHost.startsWith("unix://") ? "a unix:// DOCKER_HOST needs an absolute path (unix:///run/docker.sock)" : "cni-shim needs the engine's unix socket";
  throw new Error(`DOCKER_HOST=${dockerHost}: ${why}; pass the engine's socket with --docker-socket PATH (or CNI_SHIM_DOCKER_SOCKET=PATH), or set DOCKER_HOST=unix:///PATH`);
}
