// dockerClient talks to the socket it is given (the settings' dockerSocket), whatever DOCKER_HOST
// says: docker-modem would otherwise take a tcp:// DOCKER_HOST over socketPath.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerClient } from "../../src/docker/client.js";

const ENV = ["DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] as const;

describe("dockerClient", () => {
  let dir: string;
  let server: Server;
  const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cs-dcli-"));
    server = createServer((req, res) => res.end(JSON.stringify({ Version: "26.1.5+dfsg1", ApiVersion: "1.45", path: req.url })));
    await new Promise<void>((r) => server.listen(join(dir, "docker.sock"), r));
  });

  afterAll(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("asks the given socket even when DOCKER_HOST names a tcp engine with TLS, and leaves DOCKER_HOST as it was", async () => {
    process.env.DOCKER_HOST = "tcp://127.0.0.1:2376";
    process.env.DOCKER_TLS_VERIFY = "1";
    process.env.DOCKER_CERT_PATH = join(dir, "no-certs-here");
    const docker = dockerClient(join(dir, "docker.sock"), 2_000);
    expect(process.env.DOCKER_HOST).toBe("tcp://127.0.0.1:2376");
    expect(await docker.version()).toMatchObject({ Version: "26.1.5+dfsg1" });
    delete process.env.DOCKER_HOST;
    expect(await dockerClient(join(dir, "docker.sock"), 2_000).version()).toMatchObject({ ApiVersion: "1.45" });
    expect(process.env.DOCKER_HOST).toBeUndefined();
  });
});
