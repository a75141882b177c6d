// The managed (v2) plugin as a user gets it: `make plugin-push` to a registry of the test's own
// (Debian's docker-registry on this namespace's loopback), the local copy removed, then
// `docker plugin install --grant-all-permissions --alias NAME REG/cni-shim:VERSION` with every
// host path set at install (CNI_SHIM_HOST_*: the engine's Docker socket, a state dir, a CNI cache
// and an empty conf dir of the test's own); then the README scenario against the plugin's driver,
// state across disable/enable, a second plugin on a bare host (its dirs missing, its netns dir not
// shared at first), and disable + rm.
//
// The plugin gets a name of its own instead of "cni-shim": while a managed plugin called
// cni-shim is installed, Docker resolves `-d cni-shim` to it (and then fails with "could not
// resolve driver cni-shim in registry"), which would break a plain cni-shim serving
// /run/docker/plugins/cni-shim.sock on this host at the same time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { access, mkdtemp, readdir, readFile, readlink, rm, stat, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CLI, ENGINE, IMAGE, ROOT, SERVE_NODE_FLAGS, docker, httpGet, rand, requirePrerequisites, sh, startPlugin, waitFor, cleanup } from "../helpers/e2e.js";
import { leaked, snapshot, type HostSnapshot } from "../helpers/host-snapshot.js";
import { startRegistry, type Registry } from "../helpers/registry.js";
import { attachPath, hostSettings, installPlugin, pluginDirs, pluginRootfs, pushPlugin, type PluginDirs } from "../helpers/managed-plugin.js";
import { VERSION } from "../../src/version.js";

const timings: Record<string, number> = {};

/** The engine's dockerd (scripts/engine.sh pid; 20: the system's). */
const dockerdPid = async () => (await sh("bash", [process.env.CNI_SHIM_ENGINE_HARNESS ?? join(ROOT, "scripts/engine.sh"), "pid", ENGINE, "dockerd"])).stdout.trim();

/** The file dockerd's output goes to, where a plugin's stderr lands (the engines' and ensure-dockerd's). */
async function dockerdLog(): Promise<string> {
  const file = await readlink(`/proc/${await dockerdPid()}/fd/1`);
  if (!file.startsWith("/")) throw new Error(`dockerd's output is ${file}, not a file: this test reads the plugin's stderr there (scripts/ensure-dockerd.sh starts dockerd so)`);
  return file;
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings[what] = Math.round((Date.now() - started) / 100) / 10;
  }
}

interface Attachment {
  endpoint: string;
  address: string;
}

describe("the managed plugin, pushed to a registry and installed from it", () => {
  const id = rand();
  const pluginName = `cnishim-managed-${id}`;
  const driver = `${pluginName}:latest`;
  const net = `cs-mp-${id}`;
  const web = `cs-mp-web-${id}`;
  const client = `cs-mp-client-${id}`;
  const late = `cs-mp-late-${id}`;
  const clash = `cs-mp-clash-${id}`;
  const containers = [web, client, late];
  const hostPort = 19000 + Math.floor(Math.random() * 1000);
  const latePort = hostPort + 1000;
  let pluginDir = "";
  let pluginId = "";
  let rootfs = "";
  let ref = "";
  let registry: Registry | undefined;
  let dirs: PluginDirs;
  const stateDir = () => dirs.state;
  const cacheDir = () => dirs.cache;
  let netId = "";
  let cniNetwork = "";
  let before: HostSnapshot;
  const attachments: Attachment[] = [];

  const pluginSocket = () => `/run/docker/plugins/${pluginId}/cni-shim.sock`;
  const attachment = async (container: string): Promise<Attachment> => {
    const networks = JSON.parse((await docker(["inspect", container, "--format", "{{json .NetworkSettings.Networks}}"])).stdout) as Record<string, { EndpointID: string; IPAddress: string }>;
    const info = networks[net]!;
    return { endpoint: info.EndpointID, address: info.IPAddress };
  };
  /** What this test's endpoints could leave behind on the host, attributed by name. */
  const ours = async (): Promise<Record<string, string[]>> => {
    const snap = await snapshot(cacheDir());
    const short = attachments.map((a) => a.endpoint.slice(0, 12));
    const links = JSON.parse((await sh("ip", ["-j", "link", "show"])).stdout || "[]") as Array<{ ifname: string }>;
    const out: Record<string, string[]> = {
      netns: snap.netns.filter((n) => short.some((s) => n === `cni-shim-${s}`)),
      links: links.map((l) => l.ifname).filter((n) => short.some((s) => n === `cs${s}`)),
      ipReservations: snap.ipReservations.filter((r) => r.startsWith(`${cniNetwork}/`)),
      cacheFiles: snap.cacheFiles.filter((f) => f.startsWith(`${cniNetwork}-`)),
      endpointRecords: (await readdir(join(stateDir(), "endpoints")).catch(() => [])).filter((f) => attachments.some((a) => f === `${a.endpoint}.json`)),
      perContainerChains: leaked(before, snap).perContainerChains ?? [],
    };
    return Object.fromEntries(Object.entries(out).filter(([, v]) => v.length));
  };

  beforeAll(async () => {
    const started = Date.now();
    await requirePrerequisites();
    pluginDir = await mkdtemp(join(tmpdir(), "cs-managed-plugin-"));
    dirs = await pluginDirs();
    registry = await startRegistry();
    ref = await timed("make plugin-push", () => pushPlugin(registry!.address, VERSION, pluginDir));
    // push-plugin removed the local copy: what follows comes from the registry.
    expect((await docker(["plugin", "inspect", ref], { reject: false })).failed).toBe(true);
    pluginId = await timed("plugin install", () => installPlugin(pluginName, ref, dirs));
    rootfs = await pluginRootfs(pluginId);
    await waitFor("the plugin socket", async () => ((await access(pluginSocket()).then(() => true, () => false)) ? true : undefined), 20_000);
    before = await snapshot(cacheDir());
    timings["setup total"] = Math.round((Date.now() - started) / 100) / 10;
  }, 1_800_000);

  afterAll(async () => {
    await docker(["rm", "-f", ...containers], { reject: false });
    await docker(["network", "rm", net, clash], { reject: false });
    await docker(["plugin", "disable", "-f", pluginName], { reject: false });
    await docker(["plugin", "rm", "-f", pluginName], { reject: false });
    if (ref) await docker(["plugin", "rm", "-f", ref], { reject: false }); // a push that failed half-way
    await registry?.stop();
    for (const d of [pluginDir, dirs?.base]) if (d) await rm(d, { recursive: true, force: true });
    console.log(`managed plugin e2e timings (s): ${JSON.stringify(timings)}`);
  }, 120_000);

  it("is enabled from the registry's reference and runs the project from its own rootfs, with host networking", async () => {
    const inspect = (
      JSON.parse((await docker(["plugin", "inspect", pluginName])).stdout) as Array<{
        Enabled: boolean;
        PluginReference: string;
        Config: { Interface: { Socket: string; Types: string[] }; Network: { Type: string } };
      }>
    )[0]!;
    expect(inspect.Enabled).toBe(true);
    expect(inspect.PluginReference).toBe(ref);
    expect(inspect.Config.Interface).toMatchObject({ Socket: "cni-shim.sock", Types: ["docker.networkdriver/1.0"] });
    expect(inspect.Config.Network.Type).toBe("host");
    // Its root mount is the plugin's rootfs (there may be other managed plugins running), and
    // the entrypoint started serve with the node flags of packaging/serve-node-flags.
    const pids = (await sh("pgrep", ["-f", `^node ${SERVE_NODE_FLAGS.join(" ")} /opt/cni-shim/dist/cli/main.js serve$`])).stdout.split("\n");
    const roots = await Promise.all(pids.map(async (p) => (await readFile(`/proc/${p}/mountinfo`, "utf8")).split("\n").find((l) => l.split(" ")[4] === "/")?.split(" ")[3]));
    expect(roots).toContain(rootfs);
    // No copy of a host namespace mount (Docker's sandbox keys) under /host that follows none of
    // dockerd's mounts: no unmount on the host would reach it (packaging/plugin-host.sh drops
    // them). /host is a slave by then, so a copy that follows is a slave of a dockerd peer group.
    const dockerdMounts = await readFile(`/proc/${await dockerdPid()}/mountinfo`, "utf8");
    const dockerdGroups = new Set(dockerdMounts.split(/\s+/).filter((t) => t.startsWith("shared:")).map((t) => t.slice("shared:".length)));
    const follows = (f: string[]) => f.some((t) => /^(shared|master):\d+$/.test(t) && dockerdGroups.has(t.split(":")[1]!));
    const pluginMounts = (await readFile(`/proc/${pids[roots.indexOf(rootfs)]}/mountinfo`, "utf8")).split("\n").map((l) => l.split(" "));
    const copies = pluginMounts.filter((f) => f[4]?.startsWith("/host/") && f[f.indexOf("-") + 1] === "nsfs");
    expect(copies.filter((f) => !follows(f)).map((f) => f[4])).toEqual([]);
    // The rootfs carries Node, the CNI plugins, iptables and iproute2 of its own.
    for (const file of ["usr/local/bin/node", "usr/lib/cni/bridge", "usr/lib/cni/portmap", "usr/sbin/iptables", "usr/sbin/ip", "opt/cni-shim/dist/cli/main.js", "opt/cni-shim/plugin-config/net.d/cni-shim-default.conflist"]) {
      await access(join(rootfs, file));
    }
    // The version inside is the tag it was pushed with (make plugin-push's default: package.json's).
    expect((await sh(process.execPath, [join(rootfs, "opt/cni-shim/dist/cli/main.js"), "--version"])).stdout).toBe(`cni-shim ${ref.split(":").at(-1)}`);
  });

  it("cni-shim doctor finds the managed plugin's socket, and warns when a plain plugin has its name", async () => {
    const doctor = async (socket: string) => {
      const res = await sh(process.execPath, [CLI, "doctor", "--json", "--socket", socket], { reject: false });
      return Object.fromEntries((JSON.parse(res.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.map((c) => [c.id, c]));
    };
    // Managed sockets are found as <dir of --socket>/<plugin id>/<socket name>.
    const dir = await mkdtemp(join(tmpdir(), "cs-mp-doctor-"));
    try {
      await symlink(`/run/docker/plugins/${pluginId}`, join(dir, pluginId));
      const c = await doctor(join(dir, "cni-shim.sock"));
      expect(c["plugin-socket"]).toMatchObject({ status: "pass", summary: `${join(dir, pluginId, "cni-shim.sock")} answers Plugin.Activate with NetworkDriver (managed plugin)` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // A plain plugin serving the same name: Docker resolves -d NAME to the managed plugin.
    const plain = await startPlugin({ driver: pluginName });
    try {
      const c = await doctor(plain.socket);
      expect(c["plugin-socket"]!.status).toBe("pass");
      expect(c["driver-name"]!.status).toBe("warn");
      expect(c["driver-name"]!.summary).toContain(`both a managed plugin ${driver} (enabled) and ${plain.socket} exist`);
      const create = await docker(["network", "create", "-d", pluginName, clash], { reject: false });
      expect(create.failed).toBe(true);
      expect(create.stderr).toContain(`could not resolve driver ${pluginName}`);
    } finally {
      await cleanup([], [], plain);
    }
  });

  it("serves docker network create -d NAME:latest: two containers, ping, and a published port", async () => {
    netId = (await docker(["network", "create", "-d", driver, net])).stdout;
    await docker(["run", "-d", "--name", web, "--network", net, "-p", `${hostPort}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    await docker(["run", "-d", "--name", client, "--network", net, IMAGE, "sleep", "600"]);
    attachments.push(await attachment(web), await attachment(client));
    const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", attachments[0]!.address], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
    expect(await httpGet(hostPort)).toBe("cni-shim test page\n");
  });

  it("keeps its state on the host: records, the CNI cache, and staging namespaces only on the path that makes them", async () => {
    const record = JSON.parse(await readFile(join(stateDir(), "networks", `${netId}.json`), "utf8")) as { conflist: { name: string } };
    cniNetwork = record.conflist.name;
    expect(cniNetwork).toBe(`cni-shim-${netId.slice(0, 12)}`);
    for (const a of attachments) await access(join(stateDir(), "endpoints", `${a.endpoint}.json`));
    expect((await readdir(join(cacheDir(), "results"))).filter((f) => f.startsWith(`${cniNetwork}-`))).toHaveLength(2);
    // The path the plugin reports (doctor reads what it kept in the state dir, the serving line
    // said it from the start): the hand-out where Docker makes the namespace after Join (<= 27);
    // in-sandbox where it is there at Join (28+): the chain runs in the container's namespace and
    // no staging namespace is made (on --attach auto the interface then goes on to Docker, and
    // the record is the hand-out's from there). Either way the plugin could look.
    const path = await attachPath(stateDir());
    expect(path.status, path.summary).toBe("pass");
    const netns = (await sh("ip", ["netns", "list"])).stdout;
    for (const a of attachments) {
      const rec = JSON.parse(await readFile(join(stateDir(), "endpoints", `${a.endpoint}.json`), "utf8")) as { stagingNetns: string };
      if (path.kind === "in-sandbox") {
        expect(netns).not.toContain(rec.stagingNetns);
        continue;
      }
      expect(rec.stagingNetns).toMatch(new RegExp(`^cni-shim-(${a.endpoint.slice(0, 12)}|p\\d+-\\d+)$`)); // its own, or one prepared ahead
      // `ip netns add` inside the plugin propagated to the host (rshared /run/netns).
      expect(netns).toContain(rec.stagingNetns);
      // A mount here, not only a file: the namespace outlives the plugin's own mount namespace.
      expect((await sh("mountpoint", ["-q", `/run/netns/${rec.stagingNetns}`], { reject: false })).exitCode, rec.stagingNetns).toBe(0);
    }
  });

  it("keeps working across docker plugin disable and enable", async () => {
    // The network holds a reference to the plugin: only a forced disable stops it.
    const refused = await docker(["plugin", "disable", pluginName], { reject: false });
    expect(refused.stderr).toContain("in use");
    await docker(["plugin", "disable", "-f", pluginName], { timeoutMs: 60_000 });
    expect((await docker(["plugin", "inspect", pluginName, "--format", "{{.Enabled}}"])).stdout).toBe("false");
    // The data path does not need the plugin.
    expect(await httpGet(hostPort)).toBe("cni-shim test page\n");
    await docker(["plugin", "enable", pluginName], { timeoutMs: 60_000 });
    await waitFor("the plugin socket", async () => ((await access(pluginSocket()).then(() => true, () => false)) ? true : undefined), 20_000);
    // The re-enabled plugin knows the network created before: a new container joins it ...
    await docker(["run", "-d", "--name", late, "--network", net, "-p", `${latePort}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    attachments.push(await attachment(late));
    expect(await httpGet(latePort)).toBe("cni-shim test page\n");
    const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", attachments[2]!.address], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
    // ... and tears down an endpoint created by the plugin's previous run.
    await docker(["stop", "-t", "1", web]);
    await docker(["rm", web]);
    await waitFor("the web container's endpoint to be torn down", async () => ((await access(join(stateDir(), "endpoints", `${attachments[0]!.endpoint}.json`)).then(() => false, () => true)) ? true : undefined), 30_000);
    await expect(httpGet(hostPort, "127.0.0.1", 2_000)).rejects.toThrow();
  });

  it("a second plugin from the same reference, on host dirs that do not exist yet: stops with one line while its netns dir is not shared, then makes its dirs and keeps its own records", async () => {
    // A bare host: the state, cache and conf dirs are missing, and the netns dir is on a private
    // mount (this host's / is private, a systemd host's is shared: a private bind mount either way).
    const other = `${pluginName}-b`;
    const otherNet = `${net}-b`;
    const otherBox = `${client}-b`;
    const otherDirs = await pluginDirs({ made: false });
    const privateNetns = join(otherDirs.base, "private");
    const logFile = await dockerdLog();
    let installed = false;
    try {
      await sh("mkdir", ["-p", privateNetns]);
      await sh("mount", ["--bind", privateNetns, privateNetns]);
      await sh("mount", ["--make-private", privateNetns]);
      const logFrom = (await stat(logFile)).size;
      const refused = await docker(["plugin", "install", "--grant-all-permissions", "--alias", other, ref, ...hostSettings(otherDirs), `CNI_SHIM_HOST_NETNS_DIR=${privateNetns}/netns`], { reject: false, timeoutMs: 300_000 });
      installed = true;
      expect(refused.failed).toBe(true);
      expect((await docker(["plugin", "inspect", other, "--format", "{{.Enabled}}"])).stdout).toBe("false");
      // One line per start (Docker starts a plugin that exits at once again before it gives up).
      const otherId = (await docker(["plugin", "inspect", other, "--format", "{{.Id}}"])).stdout;
      const said = (await readFile(logFile)).subarray(logFrom).toString("utf8").split("\n").filter((l) => l.endsWith(`plugin=${otherId}`));
      expect(said.length).toBeGreaterThan(0);
      expect(new Set(said.map((l) => /msg="(.*)" plugin=/.exec(l)?.[1])).size, said.join("\n")).toBe(1);
      expect(said[0]).toContain(`the host's netns dir ${privateNetns}/netns (CNI_SHIM_HOST_NETNS_DIR) is not a shared mount`);
      expect(said[0]).toContain(`run on the host: mount --bind ${privateNetns}/netns ${privateNetns}/netns && mount --make-shared ${privateNetns}/netns, then docker plugin enable again`);
      // The default netns dir (shared here, as on a systemd host): enable makes the other dirs.
      await docker(["plugin", "set", other, "CNI_SHIM_HOST_NETNS_DIR=/run/netns"]);
      // Docker cleans the failed start up after it replied, and an enable right after can trip on
      // that, a different way per version and moment: 20.10 "id already in use" (its containerd
      // container; one of those may still have started it), 26.1 "error mounting
      // /run/docker/plugins/<id>" (its socket dir, removed under the new start) or "cannot start a
      // container that has stopped". A user runs enable again; so does the test, for at most 20 s,
      // and what counts is that the plugin ends up enabled and serving (below).
      const enabled = async () => (await docker(["plugin", "inspect", other, "--format", "{{.Enabled}}"])).stdout === "true";
      const raced: string[] = [];
      let enable = await docker(["plugin", "enable", other], { timeoutMs: 60_000, reject: false });
      for (let i = 0; i < 40 && enable.failed && !(await enabled()); i++) {
        raced.push(enable.stderr.trim());
        await new Promise((r) => setTimeout(r, 500));
        enable = await docker(["plugin", "enable", other], { timeoutMs: 60_000, reject: false });
      }
      if (raced.length) console.log(`enable retried after Docker's cleanup of the failed start: ${JSON.stringify(raced)}`);
      expect(await enabled()).toBe(true);
      for (const d of [otherDirs.state, otherDirs.cache, otherDirs.conf]) expect((await stat(d)).isDirectory(), d).toBe(true);
      expect((await stat(otherDirs.state)).mode & 0o777).toBe(0o700);
      // As two engines on one host would: each install names its own state and cache dirs.
      const otherNetId = (await docker(["network", "create", "-d", `${other}:latest`, otherNet])).stdout;
      await docker(["run", "-d", "--name", otherBox, "--network", otherNet, IMAGE, "sleep", "600"]);
      const box = (JSON.parse((await docker(["inspect", otherBox, "--format", "{{json .NetworkSettings.Networks}}"])).stdout) as Record<string, { EndpointID: string; Gateway: string }>)[otherNet]!;
      expect((await docker(["exec", otherBox, "ping", "-c", "1", "-W", "3", box.Gateway], { reject: false })).stdout).toContain("1 packets received");
      expect(await readdir(join(otherDirs.state, "networks"))).toEqual([`${otherNetId}.json`]);
      expect(await readdir(join(stateDir(), "networks"))).toEqual([`${netId}.json`]);
      const otherCni = `cni-shim-${otherNetId.slice(0, 12)}`;
      expect((await readdir(join(otherDirs.cache, "results"))).filter((f) => f.startsWith(`${otherCni}-`))).toHaveLength(1);
      await docker(["rm", "-f", otherBox]);
      await docker(["network", "rm", otherNet]);
      // Its teardown leaves nothing: records, reservations, results, namespaces, links.
      const left = async () => ({
        endpoints: await readdir(join(otherDirs.state, "endpoints")),
        networks: await readdir(join(otherDirs.state, "networks")),
        results: (await readdir(join(otherDirs.cache, "results")).catch(() => [])).filter((f) => f.startsWith(`${otherCni}-`)),
        reservations: await readdir(join(otherDirs.cache, "networks", otherCni)).catch(() => []),
        netns: (await sh("ip", ["netns", "list"])).stdout.split("\n").filter((n) => n.startsWith(`cni-shim-${box.EndpointID.slice(0, 12)}`)),
        links: (await sh("ip", ["-br", "link"])).stdout.split("\n").filter((l) => l.includes(`cs${box.EndpointID.slice(0, 12)}`) || l.includes(`cs-${otherNetId.slice(0, 12)}`)),
      });
      const empty = { endpoints: [], networks: [], results: [], reservations: [], netns: [], links: [] };
      expect(await waitFor("the other plugin's teardown", async () => ((s) => (JSON.stringify(s) === JSON.stringify(empty) ? s : undefined))(await left()), 30_000).catch(left)).toEqual(empty);
      // The first plugin's network still serves.
      expect(await httpGet(latePort)).toBe("cni-shim test page\n");
    } finally {
      await docker(["rm", "-f", otherBox], { reject: false });
      await docker(["network", "rm", otherNet], { reject: false });
      if (installed) await docker(["plugin", "rm", "-f", other], { reject: false });
      await sh("umount", [privateNetns], { reject: false });
      await rm(otherDirs.base, { recursive: true, force: true });
    }
  }, 300_000);

  it("leaves nothing behind after the containers and the network are removed", async () => {
    await docker(["rm", "-f", client, late]);
    // DEL may run after DeleteEndpoint replied (background teardown): wait for it.
    const leftovers = await waitFor("the teardown of every endpoint", async () => {
      const left = await ours();
      return Object.keys(left).length === 0 ? left : undefined;
    }, 30_000).catch(async () => ours());
    expect(leftovers).toEqual({});
    const rules = (await sh("iptables-save", [])).stdout;
    for (const a of attachments) expect(rules).not.toContain(`${a.address}/32`);
    expect(rules).not.toMatch(new RegExp(`--dports? (${hostPort}|${latePort}) `));
    await docker(["network", "rm", net]);
    await access(join(stateDir(), "networks", `${netId}.json`)).then(
      () => expect.fail("the network record is still there"),
      () => undefined,
    );
    expect((await sh("ip", ["-br", "link"])).stdout).not.toContain(`cs-${netId.slice(0, 12)}`);
    await access(join(cacheDir(), "networks", cniNetwork)).then(
      () => expect.fail("host-local's directory of the network is still there"),
      () => undefined,
    );
  });

  it("disables and removes cleanly", async () => {
    await docker(["plugin", "disable", pluginName], { timeoutMs: 60_000 });
    await docker(["plugin", "rm", pluginName], { timeoutMs: 60_000 });
    expect((await docker(["plugin", "ls", "--format", "{{.Name}}"])).stdout.split("\n")).not.toContain(driver);
    await access(dirname(rootfs)).then(
      () => expect.fail("the plugin's directory is still there"),
      () => undefined,
    );
    const procs = await sh("pgrep", ["-f", dirname(rootfs)], { reject: false });
    expect(procs.stdout).toBe("");
  });
});
