// Restart recovery against a stand-in Engine API on a unix socket of the test's own: what it asks
// Docker, which containers it starts, and that every call is bounded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RestartRecovery, driverNameOf } from "../../src/docker/restart-recovery.js";
import type { ContainerInspect } from "../../src/docker/restart-candidates.js";

const unreachable = JSON.parse(readFileSync(new URL("../fixtures/docker-inspect/20.10-always-plugin-unreachable.json", import.meta.url), "utf8")) as ContainerInspect;
const userStopped = JSON.parse(readFileSync(new URL("../fixtures/docker-inspect/20.10-unless-stopped-user-stopped.json", import.meta.url), "utf8")) as ContainerInspect;
const NET = { Id: "9daa0fcc14e3ff80d628e4f69728afc1c871875ae767e3f461da221f74d7c504", Name: "soak-df-6c17a7", Driver: "cnishim-soak-cc8bf6" };
const listed = (c: ContainerInspect) => ({ Id: c.Id, HostConfig: { NetworkMode: c.HostConfig?.NetworkMode }, NetworkSettings: c.NetworkSettings });

describe("RestartRecovery", () => {
  let dir: string;
  let server: Server;
  let seen: string[] = [];
  let startStatus = 204;
  let hang = false;
  const noPolicy = { ...structuredClone(unreachable), Id: `f${unreachable.Id.slice(1)}`, HostConfig: { ...unreachable.HostConfig, RestartPolicy: { Name: "no", MaximumRetryCount: 0 } } };
  const elsewhere = { ...structuredClone(unreachable), Id: `e${unreachable.Id.slice(1)}`, NetworkSettings: { Networks: { bridge: { NetworkID: "4a6fe3970d68" } } }, HostConfig: { ...unreachable.HostConfig, NetworkMode: "bridge" } };
  const containers = [unreachable, userStopped, noPolicy, elsewhere];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cs-recover-"));
    server = createServer((req, res) => {
      const url = decodeURIComponent(req.url ?? "");
      seen.push(`${req.method} ${url}`);
      if (hang) return; // never answers
      if (req.url === "/_ping") return res.end("OK");
      if (url.startsWith("/networks?")) return res.end(JSON.stringify([NET]));
      if (url.startsWith("/containers/json?")) return res.end(JSON.stringify(containers.map(listed)));
      const inspect = /^\/containers\/([0-9a-f]+)\/json$/.exec(url);
      if (inspect) {
        const c = containers.find((x) => x.Id === inspect[1]);
        return c ? res.end(JSON.stringify(c)) : res.writeHead(404).end('{"message":"No such container"}');
      }
      if (/^\/containers\/[0-9a-f]+\/start$/.test(url) && req.method === "POST") return res.writeHead(startStatus).end(startStatus >= 400 ? '{"message":"driver failed programming"}' : "");
      res.writeHead(404).end('{"message":"page not found"}');
    });
    await new Promise<void>((r) => server.listen(join(dir, "docker.sock"), r));
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const recovery = (o: Partial<{ timeoutMs: number; startTimeoutMs: number }> = {}) => new RestartRecovery({ dockerSocket: join(dir, "docker.sock"), pluginSocket: "/run/docker/plugins/cnishim-soak-cc8bf6.sock", ...o });

  it("takes the driver name from the socket's file name", () => {
    expect(driverNameOf("/run/docker/plugins/cni-shim.sock")).toBe("cni-shim");
    expect(recovery().driver).toBe("cnishim-soak-cc8bf6");
  });

  it("asks for this driver's networks and the exited containers, inspects those on them, starts the qualifying one", async () => {
    seen = [];
    startStatus = 204;
    const report = await recovery().run();
    expect(report).toEqual({ started: ["soak-rs-a-22b9b6"], failed: [] });
    expect(seen).toContain('GET /networks?filters={"driver":["cnishim-soak-cc8bf6"]}');
    expect(seen).toContain('GET /containers/json?all=1&filters={"status":["exited"]}');
    // Not on our network: never inspected; the others are, and only one is started.
    expect(seen.filter((s) => s.startsWith("GET /containers/e"))).toEqual([]);
    expect(seen.filter((s) => s.startsWith("POST"))).toEqual([`POST /containers/${unreachable.Id}/start`]);
  });

  it("reports a start Docker refuses, and takes 304 (already started) as nothing to do", async () => {
    startStatus = 500;
    expect((await recovery().run()).failed).toEqual([{ container: "soak-rs-a-22b9b6", error: "container start: Docker answered 500: driver failed programming" }]);
    startStatus = 304;
    expect(await recovery().run()).toEqual({ started: [], failed: [] });
    startStatus = 204;
  });

  it("gives up on a Docker that does not answer, within the timeout", async () => {
    hang = true;
    const t0 = Date.now();
    await expect(recovery({ timeoutMs: 300 }).run()).rejects.toThrow(/no answer within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3_000);
    hang = false;
  });

  it("runs once Docker answers, when asked at serve start", async () => {
    seen = [];
    const r = recovery();
    r.whenDockerAnswers(5_000);
    for (let i = 0; i < 50 && !seen.some((s) => s.startsWith("POST")); i++) await new Promise((res) => setTimeout(res, 100));
    r.cancel();
    expect(seen[0]).toBe("GET /_ping");
    expect(seen.some((s) => s.startsWith("POST"))).toBe(true);
  });
});
