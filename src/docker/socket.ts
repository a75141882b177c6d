// Where the Docker Engine API listens by default.
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";
