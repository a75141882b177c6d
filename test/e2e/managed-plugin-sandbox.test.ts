// The managed plugin's Join in the container's own namespace (docs/design.md, "In the managed
// plugin"): the plugin, --attach auto, opens Docker's SandboxKey in dockerd's view of the files
// (/proc/<dockerd pid>/root). On Docker 28+ the chain runs at Join in the container's namespace:
// tuning's sysctl is the container's, no staging namespace is made, and the teardown leaves
// nothing. On Docker <= 27 the plugin sees that the key is not a namespace yet at Join, in
// dockerd's view, and takes the hand-out (the engine learnt as one that makes it late).
//
// The plugin (scripts/managed-plugin.ts) has host paths of its own: the engine's API socket and a
// state, cache and conf dir in the test's temp dir. CNI_SHIM_PLUGIN_DIR reuses a plugin dir of
// `make plugin PLUGIN_DIR=DIR`; else it is built (minutes). Runs in `make test-engines` on 28.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, DOCKER_CLI, ENGINE, IMAGE, ROOT, docker, rand, requirePrerequisites, sh, waitFor } from "../helpers/e2e.js";
import { managedPlugin, type Managed } from "../../scripts/managed-plugin.js";

const SOMAXCONN = "777";
const late = Number(/^(\d+)/.exec(ENGINE)?.[1] ?? 0) < 28;

interface Record {
  attach: string;
  sandboxKey?: string;
  stagingNetns: string;
}

describe(`the managed plugin's Join on Docker ${ENGINE} (--attach auto)`, () => {
  const id = rand();
  const name = `cnishim-mps-${id}`;
  const list = `cs-mps-${id}`;
  const net = `cs-mps-net-${id}`;
  const bridge = `csmps${id}`;
  const containers = [`cs-mps-a-${id}`, `cs-mps-b-${id}`];
  const undo: Array<() => Promise<unknown>> = [];
  let dir = "";
  let plugin: Managed;
  let endpoints: string[] = [];

  const records = async (): Promise<Record[]> => {
    const files = await readdir(join(plugin.stateDir, "endpoints")).catch(() => [] as string[]);
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(join(plugin.stateDir, "endpoints", f), "utf8")) as Record));
  };
  const logLines = () => plugin.logs().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg: string; endpoint?: string; sandboxKeys?: string });

  beforeAll(async () => {
    await requirePrerequisites();
    dir = await mkdtemp(join(tmpdir(), "cs-mps-"));
    const dockerdPid = Number((await sh("bash", [process.env.CNI_SHIM_ENGINE_HARNESS ?? join(ROOT, "scripts/engine.sh"), "pid", ENGINE, "dockerd"])).stdout.trim());
    plugin = await managedPlugin(
      {
        dir,
        name,
        docker: async (args, opts) => docker(args, opts),
        dockerCli: DOCKER_CLI,
        dockerSocket: process.env.CNI_SHIM_DOCKER_SOCKET ?? "/var/run/docker.sock",
        dockerdPid,
        repo: (p) => join(ROOT, p),
        defer: (_what, fn) => undo.push(fn),
        progress: (msg) => console.log(msg),
      },
      process.env.CNI_SHIM_PLUGIN_DIR ?? "1",
    );
    const chain = [
      { type: "bridge", bridge, isGateway: true, ipMasq: true, capabilities: { ips: true }, ipam: { type: "host-local", ranges: [[{ subnet: "10.232.77.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] } },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "firewall" },
      // A per-interface sysctl keeps the interface where the chain made it (link-bound.ts): the Join stays in the container's namespace.
      { type: "tuning", capabilities: { mac: true }, sysctl: { "net.core.somaxconn": SOMAXCONN, "net.ipv4.conf.eth0.route_localnet": "1" } },
    ];
    await writeFile(join(plugin.confDir, `${list}.conflist`), JSON.stringify({ cniVersion: "1.0.0", name: list, plugins: chain }));
  }, 1_200_000);

  afterAll(async () => {
    await docker(["rm", "-f", ...containers], { reject: false });
    await docker(["network", "rm", net], { reject: false });
    for (const fn of undo.reverse()) await fn().catch((err: Error) => console.error(`cleanup: ${err.message}`));
    await sh("ip", ["link", "del", bridge], { reject: false });
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 300_000);

  it("says at start how it opens Docker's sandbox keys: in dockerd's view", async () => {
    // Logged once the socket listens, and read from dockerd's output as it arrives.
    const serving = await waitFor("the serving line", () => Promise.resolve(logLines().find((l) => l.msg === "cni-shim serving")), 10_000);
    expect(serving?.sandboxKeys).toMatch(/^in dockerd's view of the files, \/proc\/\d+\/root/);
  });

  it(late ? "takes the hand-out, having seen in dockerd's view that the namespace comes after Join" : "joins in the container's namespace: tuning's sysctl is the container's, no staging namespace", async () => {
    await docker(["network", "create", "-d", plugin.driver, "--subnet", "10.232.77.0/24", "-o", `cni.network=${list}`, net]);
    for (const c of containers) await docker(["run", "-d", "--name", c, "--network", net, IMAGE, "sleep", "600"]);
    const recs = await records();
    expect(recs.map((r) => r.attach)).toEqual(late ? ["staging-handoff", "staging-handoff"] : ["in-sandbox", "in-sandbox"]);
    endpoints = recs.map((r) => r.stagingNetns);
    const somaxconn = (await docker(["exec", containers[0]!, "cat", "/proc/sys/net/core/somaxconn"])).stdout.trim();
    const seen = JSON.parse(await readFile(join(plugin.stateDir, "attach-seen.json"), "utf8")) as { joinsWithNamespace: number; joinsWithout: number; unseen?: unknown };
    expect(seen.unseen).toBeUndefined();
    if (late) {
      expect(somaxconn).not.toBe(SOMAXCONN);
      expect(seen.joinsWithout).toBeGreaterThan(0);
    } else {
      expect(somaxconn).toBe(SOMAXCONN);
      expect(seen.joinsWithout).toBe(0); // the file keeps the first Join of each kind
      expect(seen.joinsWithNamespace).toBeGreaterThan(0);
      // No staging namespace: the endpoint's own name is made only as the hold after Leave.
      const netns = (await sh("ip", ["netns", "list"])).stdout;
      for (const n of endpoints) expect(netns).not.toContain(n);
      expect(logLines().filter((l) => l.msg === "endpoint joined in its sandbox")).toHaveLength(2);
    }
    const addr = (await docker(["inspect", containers[1]!, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`])).stdout.trim();
    expect((await docker(["exec", containers[0]!, "ping", "-c", "1", "-W", "3", addr], { reject: false })).stdout).toContain("1 packets received");
  });

  it("doctor reads what the plugin kept: the path, and how it opens keys", async () => {
    const res = await execa(process.execPath, [CLI, "doctor", "--json", "--state-dir", plugin.stateDir], { reject: false });
    const attach = (JSON.parse(res.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.find((c) => c.id === "attach");
    expect(attach).toMatchObject({ status: "pass" });
    expect(attach?.summary).toContain(late ? "staging hand-out" : "(in-sandbox)");
    expect(attach?.summary).toContain("the serving cni-shim opens sandbox keys in dockerd's view of the files");
  });

  it("leaves nothing behind: records, holds, reservations", async () => {
    await docker(["rm", "-f", ...containers]);
    await waitFor("the teardown of both endpoints", async () => ((await records()).length === 0 ? true : undefined), 60_000);
    const netns = (await sh("ip", ["netns", "list"])).stdout;
    for (const n of endpoints) expect(netns).not.toContain(n);
    const reservations = (await readdir(join(plugin.cacheDir, "networks", list)).catch(() => [] as string[])).filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip"));
    expect(reservations).toEqual([]);
    await docker(["network", "rm", net]);
  });
});
