// Upgrading the managed plugin while containers run on its network (issue 26), with the commands
// of the README's "Installing for good": docker plugin disable -f NAME, docker plugin upgrade
// --grant-all-permissions --skip-remote-check NAME REG/cni-shim:NEW (a tag other than the one
// installed: without it the client asks "Plugin images do not match"), docker plugin enable NAME:
// no `docker plugin set` in between, the host paths set at install are Env settings, which the
// upgrade keeps (it put mount sources back to their defaults). Two versions of this tree are
// pushed to the test's own registry: `make plugin-push` (package.json's version), then the same
// rootfs with another version in its package.json, so `cni-shim --version` tells them apart (one
// image build: the upgrade is what is tested, not a change of code). While the plugin is swapped
// the running containers are probed without pause, as the soak does: the host through a
// published port (portmap's rules) and one container pinging the other; not one probe may fail.
// Then a new container starts on the same network, the old containers are removed and torn down
// by the new version, and nothing of theirs is left (host snapshot before and after, and the
// test's own names).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { access, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMAGE, docker, httpGet, rand, requirePrerequisites, sh, waitFor } from "../helpers/e2e.js";
import { leaked, snapshot, type HostSnapshot } from "../helpers/host-snapshot.js";
import { startRegistry, type Registry } from "../helpers/registry.js";
import { attachPath, envSettings, hostSettings, installPlugin, pluginDirs, pluginRootfs, pushAsVersion, pushPlugin, type PluginDirs } from "../helpers/managed-plugin.js";
import { VERSION } from "../../src/version.js";

const PAGE = "cni-shim test page\n";
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Requests to a published port every 200 ms until stopped: how many answered, and each miss. */
function probeHttp(port: number) {
  let ok = 0;
  const failed: string[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const started = Date.now();
      await httpGet(port, "127.0.0.1", 1_000).then(
        (body) => (body === PAGE ? ok++ : failed.push(`${new Date().toISOString()} answered ${JSON.stringify(body)}`)),
        (err: Error) => failed.push(`${new Date().toISOString()} ${err.message}`),
      );
      await sleep(Math.max(0, 200 - (Date.now() - started)));
    }
  })();
  return {
    counts: () => ({ ok, failed: [...failed] }),
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** A container that pings `address` every 200 ms for its whole life and logs each answer: ok or fail. */
const pingerCommand = (address: string) => ["sh", "-c", `while :; do if ping -c 1 -W 1 ${address} >/dev/null 2>&1; then echo ok; else echo fail $(date +%s); fi; sleep 0.2; done`];

async function pingerCounts(container: string): Promise<{ ok: number; failed: string[] }> {
  const lines = (await docker(["logs", container])).stdout.split("\n");
  return { ok: lines.filter((l) => l === "ok").length, failed: lines.filter((l) => l.startsWith("fail")) };
}

describe("the managed plugin upgraded while containers run on its network", () => {
  const id = rand();
  const name = `cnishim-upg-${id}`;
  const net = `cs-upg-${id}`;
  const web = `cs-upg-web-${id}`;
  const pinger = `cs-upg-ping-${id}`;
  const late = `cs-upg-late-${id}`;
  const containers = [web, pinger, late];
  const webPort = 21000 + Math.floor(Math.random() * 1000);
  const latePort = webPort + 1000;
  const [versionA, versionB] = [VERSION, `${VERSION}-next`];
  const timings: Record<string, number> = {};
  let registry: Registry | undefined;
  let buildDir = "";
  let dirs: PluginDirs | undefined;
  let refs: string[] = [];
  let pluginId = "";
  let netId = "";
  let cniNetwork = "";
  let before: HostSnapshot;
  let afterUpgrade: Record<string, string> = {};
  const endpoints: Array<{ endpoint: string; address: string }> = [];

  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await fn();
    } finally {
      timings[what] = Math.round((Date.now() - started) / 100) / 10;
    }
  };
  const socketUp = () => waitFor("the plugin socket", async () => ((await access(`/run/docker/plugins/${pluginId}/cni-shim.sock`).then(() => true, () => false)) ? true : undefined), 30_000);
  const endpointOf = async (container: string) => {
    const nets = JSON.parse((await docker(["inspect", container, "--format", "{{json .NetworkSettings.Networks}}"])).stdout) as Record<string, { EndpointID: string; IPAddress: string }>;
    return { endpoint: nets[net]!.EndpointID, address: nets[net]!.IPAddress };
  };
  const versionInside = async () => (await sh(process.execPath, [join(await pluginRootfs(pluginId), "opt/cni-shim/dist/cli/main.js"), "--version"])).stdout;
  /**
   * What this test's endpoints could leave on the host: new veths and per-container chains since
   * the snapshot before (the engine's network namespace); namespaces, reservations and cache files
   * by the test's names (/run/netns is the host's, shared with whatever else runs).
   */
  const ours = async (): Promise<Record<string, string[]>> => {
    const snap = await snapshot(dirs!.cache);
    const short = endpoints.map((e) => e.endpoint.slice(0, 12));
    const diff = leaked(before, snap);
    const out: Record<string, string[]> = {
      veths: diff.veths ?? [],
      perContainerChains: diff.perContainerChains ?? [],
      netns: snap.netns.filter((n) => short.some((s) => n === `cni-shim-${s}`)),
      ipReservations: snap.ipReservations.filter((r) => r.startsWith(`${cniNetwork}/`)),
      cacheFiles: snap.cacheFiles.filter((f) => f.startsWith(`${cniNetwork}-`)),
      endpointRecords: (await readdir(join(dirs!.state, "endpoints")).catch(() => [])).filter((f) => endpoints.some((e) => f === `${e.endpoint}.json`)),
    };
    return Object.fromEntries(Object.entries(out).filter(([, v]) => v.length));
  };

  beforeAll(async () => {
    await requirePrerequisites();
    buildDir = await mkdtemp(join(tmpdir(), "cs-upg-build-"));
    dirs = await pluginDirs();
    registry = await startRegistry();
    const reg = registry.address;
    refs = [await timed("make plugin-push", () => pushPlugin(reg, versionA, buildDir)), `${reg}/cni-shim:${versionB}`];
    await timed("push next", () => pushAsVersion(buildDir, refs[1]!, versionB));
    // Another env setting too: the upgrade keeps every one (Settings.Env).
    pluginId = await timed("install a", () => installPlugin(name, refs[0]!, dirs!, ["CNI_SHIM_LOG_LEVEL=debug"]));
    await socketUp();
    before = await snapshot(dirs.cache);
  }, 1_800_000);

  afterAll(async () => {
    await docker(["rm", "-f", ...containers], { reject: false });
    await docker(["network", "rm", net], { reject: false });
    await docker(["plugin", "disable", "-f", name], { reject: false, timeoutMs: 60_000 });
    await docker(["plugin", "rm", "-f", name], { reject: false });
    for (const ref of refs) await docker(["plugin", "rm", "-f", ref], { reject: false }); // a push that failed half-way
    await registry?.stop();
    for (const d of [buildDir, dirs?.base]) if (d) await rm(d, { recursive: true, force: true });
    console.log(`managed plugin upgrade e2e timings (s): ${JSON.stringify(timings)}`);
  }, 180_000);

  it("runs the first version: a network, a web container with a published port, a container pinging it", async () => {
    expect(await versionInside()).toBe(`cni-shim ${versionA}`);
    netId = (await docker(["network", "create", "-d", `${name}:latest`, net])).stdout;
    await docker(["run", "-d", "--name", web, "--network", net, "-p", `${webPort}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    endpoints.push(await endpointOf(web));
    await docker(["run", "-d", "--name", pinger, "--network", net, IMAGE, ...pingerCommand(endpoints[0]!.address)]);
    endpoints.push(await endpointOf(pinger));
    cniNetwork = `cni-shim-${netId.slice(0, 12)}`;
    expect(await httpGet(webPort)).toBe(PAGE);
    await waitFor("the pinger's first answer", async () => ((await pingerCounts(pinger)).ok > 0 ? true : undefined), 10_000);
  });

  it("disable -f, upgrade, enable: not one probe of the running containers fails", async () => {
    const http = probeHttp(webPort);
    const pingsBefore = await pingerCounts(pinger);
    try {
      await sleep(1_000);
      await timed("disable -f", () => docker(["plugin", "disable", "-f", name], { timeoutMs: 60_000 }));
      await timed("upgrade", () => docker(["plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", name, refs[1]!], { timeoutMs: 300_000 }));
      afterUpgrade = await envSettings(name);
      await timed("enable", () => docker(["plugin", "enable", name], { timeoutMs: 60_000 }));
      await socketUp();
      await sleep(2_000); // the new version's start (reconciliation) is part of the window
    } finally {
      await http.stop();
    }
    const pings = await pingerCounts(pinger);
    const counts = http.counts();
    console.log(`upgrade window: http probes ${counts.ok} answered, ${counts.failed.length} failed; pings ${pings.ok - pingsBefore.ok} answered, ${pings.failed.length} failed`);
    expect(counts.failed).toEqual([]);
    expect(pings.failed).toEqual([]);
    // Probes did run through the whole window (each every 200 ms).
    expect(counts.ok).toBeGreaterThan(10);
    expect(pings.ok - pingsBefore.ok).toBeGreaterThan(10);
  }, 600_000);

  it("is the new version, on the host paths set at install, and knows the network", async () => {
    const inspect = (JSON.parse((await docker(["plugin", "inspect", name])).stdout) as Array<{ Id: string; Enabled: boolean; PluginReference: string; Settings: { Env: string[] } }>)[0]!;
    expect(inspect).toMatchObject({ Id: pluginId, Enabled: true, PluginReference: refs[1] });
    expect(inspect.Settings.Env).toContain("CNI_SHIM_LOG_LEVEL=debug");
    // The host paths set at install survived the upgrade (Settings.Env; moby replaces the
    // plugin's Config, where mount sources were kept), with nothing set again before the enable.
    const ours = Object.fromEntries(hostSettings(dirs!).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
    expect(afterUpgrade).toMatchObject(ours);
    expect(await envSettings(name)).toMatchObject(ours);
    expect(await versionInside()).toBe(`cni-shim ${versionB}`);
    // The records the first version wrote, in the state dir set at install, are the new one's:
    // the attach path as reported, and the network (the next test starts a container on it).
    expect((await attachPath(dirs!.state)).status).toBe("pass");
    expect(await readdir(join(dirs!.state, "networks"))).toEqual([`${netId}.json`]);
  });

  it("starts a new container on the same network, which reaches the old ones", async () => {
    await docker(["run", "-d", "--name", late, "--network", net, "-p", `${latePort}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    endpoints.push(await endpointOf(late));
    expect(await httpGet(latePort)).toBe(PAGE);
    for (const from of [web, pinger]) {
      expect((await docker(["exec", from, "ping", "-c", "1", "-W", "3", endpoints[2]!.address], { reject: false })).stdout, from).toContain("1 packets received");
    }
    expect((await docker(["exec", late, "ping", "-c", "1", "-W", "3", endpoints[0]!.address], { reject: false })).stdout).toContain("1 packets received");
  });

  it("tears down the old containers' endpoints, and the new one's, completely", async () => {
    await docker(["rm", "-f", web, pinger]);
    await waitFor("the old endpoints' teardown", async () => ((await readdir(join(dirs!.state, "endpoints"))).some((f) => endpoints.slice(0, 2).some((e) => f === `${e.endpoint}.json`)) ? undefined : true), 30_000);
    expect(await httpGet(latePort)).toBe(PAGE); // the one left still serves
    await docker(["rm", "-f", late]);
    const left = await waitFor("nothing left of the test's endpoints", async () => {
      const l = await ours();
      return Object.keys(l).length === 0 ? l : undefined;
    }, 30_000).catch(async () => ours());
    expect(left).toEqual({});
    const rules = (await sh("iptables-save", [])).stdout;
    for (const e of endpoints) expect(rules).not.toContain(`${e.address}/32`);
    expect(rules).not.toMatch(new RegExp(`--dports? (${webPort}|${latePort}) `));
    await docker(["network", "rm", net]);
    expect(await readdir(join(dirs!.state, "networks"))).toEqual([]);
    expect((await sh("ip", ["-br", "link"])).stdout).not.toContain(`cs-${netId.slice(0, 12)}`);
  });
});
