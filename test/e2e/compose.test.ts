// A Compose project on cni-shim networks, as a user writes it: one network on a cluster's conflist
// with the chain's own IPAM (`ipam: {driver: "null"}`, the embedded kind profile, no subnet), one on
// the embedded default with Docker's IPAM. Services reach each other by service name through
// Docker's embedded DNS, a published port answers, and `docker-compose down` leaves nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMAGE, cleanup, docker, httpGet, rand, requirePrerequisites, sh, startPlugin, waitFor, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

const id = rand();
const project = `csc${id}`;

describe("a Compose project on cni-shim networks", () => {
  let plugin: PluginHandle;
  let dir: string;
  let before: HostSnapshot;
  const port = 20000 + (parseInt(id.slice(0, 3), 16) % 8000) + 60;
  const compose = (args: string[], reject = true) => sh("docker-compose", ["--project-name", project, "--file", join(dir, "docker-compose.yml"), ...args], { reject, timeoutMs: 180_000 });

  beforeAll(async () => {
    await requirePrerequisites();
    const version = await sh("docker-compose", ["version", "--short"], { reject: false });
    if (version.failed) throw new Error(`docker-compose is missing (${version.stderr}): apt-get install docker-compose (make test installs it)`);
    plugin = await startPlugin();
    before = await settledSnapshot(plugin);
    dir = await mkdtemp(join(tmpdir(), "cs-compose-"));
    // Compose file format 2.4: docker-compose 1.29 (Debian's) reads it, and it has ipam.driver.
    await writeFile(
      join(dir, "docker-compose.yml"),
      [
        `version: "2.4"`,
        `services:`,
        `  web:`,
        `    image: ${IMAGE}`,
        `    command: ["httpd", "-f", "-p", "80", "-h", "/www"]`,
        `    ports: ["127.0.0.1:${port}:80"]`,
        `    networks: [pods, apps]`,
        `  client:`,
        `    image: ${IMAGE}`,
        `    command: ["sleep", "300"]`,
        `    networks: [pods]`,
        `  other:`,
        `    image: ${IMAGE}`,
        `    command: ["sleep", "300"]`,
        `    networks: [apps]`,
        `networks:`,
        `  pods:`,
        `    driver: ${plugin.driver}`,
        `    driver_opts: {cni.network: kind}`,
        `    ipam: {driver: "null"}`,
        `  apps:`,
        `    driver: ${plugin.driver}`,
        ``,
      ].join("\n"),
    );
  }, 120_000);

  const whatClientSees = async (from: string) => {
    const run = async (service: string, cmd: string[]) => (await compose(["exec", "-T", service, ...cmd], false)).stdout.trim();
    return [`nslookup web: ${await run(from, ["timeout", "5", "nslookup", "web"])}`, `${from} routes: ${await run(from, ["ip", "route"])}`, `web routes: ${await run("web", ["ip", "route"])}`, `web addrs: ${await run("web", ["ip", "-o", "-4", "addr"])}`].join("\n");
  };

  afterAll(async () => {
    if (dir) await compose(["down", "--timeout", "1"], false);
    await cleanup([], [], plugin, dir ? [dir] : []);
  });

  it("starts the project: every container gets an address docker inspect shows", async () => {
    await compose(["up", "--detach"]);
    for (const service of ["web", "client", "other"]) {
      const container = (await compose(["ps", "--quiet", service])).stdout.trim();
      expect(container, service).not.toBe("");
      const nets = JSON.parse((await docker(["inspect", "--format", "{{json .NetworkSettings.Networks}}", container])).stdout) as Record<string, { IPAddress: string }>;
      for (const [name, n] of Object.entries(nets)) {
        expect(n.IPAddress, `${service} on ${name}`).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        const inside = (await docker(["exec", container, "ip", "-o", "-4", "addr"])).stdout;
        expect(inside, `${service} on ${name}`).toContain(`inet ${n.IPAddress}/`);
      }
    }
    const pods = Object.entries(JSON.parse((await docker(["inspect", "--format", "{{json .NetworkSettings.Networks}}", (await compose(["ps", "--quiet", "client"])).stdout.trim()])).stdout) as Record<string, { IPAddress: string }>);
    expect(pods.map(([, n]) => n.IPAddress)[0]).toMatch(/^10\.244\.0\./); // the kind profile's own range
  });

  it("services reach each other by service name on both networks, and the published port answers", async () => {
    for (const from of ["client", "other"]) {
      // Three tries: a miss is reported with what the client saw (CI once saw one, silent, that
      // did not come back on this machine), so that a retry that succeeds still leaves a trace.
      const misses: string[] = [];
      let page = "";
      for (let attempt = 0; attempt < 3 && !page.includes("cni-shim test page"); attempt++) {
        const out = await compose(["exec", "-T", from, "timeout", "5", "wget", "-qO-", "http://web/"], false);
        page = out.stdout;
        if (!page.includes("cni-shim test page")) misses.push(`try ${attempt + 1}: exit ${out.exitCode} ${out.stderr.trim()}\n${await whatClientSees(from)}`);
      }
      if (misses.length) console.warn(`compose e2e: ${from} -> web missed ${misses.length} time(s):\n${misses.join("\n")}`);
      expect(page, `${from} -> web:\n${misses.join("\n")}`).toContain("cni-shim test page");
    }
    expect(await waitFor("the published port", () => httpGet(port).catch(() => undefined))).toContain("cni-shim test page");
  });

  it("docker-compose down removes containers and networks and leaves nothing behind", async () => {
    await compose(["down", "--timeout", "1"]);
    expect((await docker(["network", "ls", "--quiet", "--filter", `name=${project}_`])).stdout).toBe("");
    expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
    await rm(join(dir, "docker-compose.yml"), { force: true });
  });
});
