#!/usr/bin/env node
// Benchmark (issue 10): what a container start costs on cni-shim, next to Docker's own bridge and
// podman 4 + CNI (libcni) running the same bridge+portmap+firewall+tuning chain, on this machine,
// in one run. Ratios, not absolute times, are the figures that count.
//
// 1. Sequential: ROUNDS interleaved rounds (the order rotates each round) of
//      docker run --rm IMAGE true    on a user-defined Docker bridge network, on --network none,
//                                    and on one network per cni-shim column: a cni-shim with
//                                    --teardown background and one with --teardown sync, each
//                                    with --attach handoff and, on Docker 28+ (whose container
//                                    namespace exists at Join), also with --attach sandbox; and
//                                    two more chains on the first background cni-shim (in-sandbox
//                                    on 28+): the kind profile (ptp) and kubeadm's (bridge, no
//                                    tuning), each a column of its own (PROFILE_COLUMNS);
//                                    With CNI_SHIM_BENCH_MANAGED (scripts/managed-plugin.ts) also
//                                    the managed plugin (docker plugin, --attach auto) on one more.
//      podman run --rm IMAGE true    on a `podman network create` network and on --network none.
//    Each start begins once every cni-shim's background DELs are done (one plugin per machine is
//    what a user has) and the machine is quiet (podman's cleanup runs on after `podman run`). Medians; N = on the network − on none, the network's share of a start. Ratios:
//    N(cni-shim) − N(Docker bridge) next to the chain's ADD plugin execs per start and the shim's
//    own time per start, and N(cni-shim) / N(podman), per column.
// 2. Where CreateEndpoint's and Join's time goes, from the plugins' own log: the ms phases of the
//    "endpoint attached" line (CreateEndpoint) and of the "endpoint joined" / "endpoint joined in
//    its sandbox" line (Join; "add" is the CNI chain, plugin execs included: at CreateEndpoint on
//    the hand-out, at Join in the container's namespace) and the "cni exec" lines (one per plugin
//    exec, grouped by container id = endpoint id): plugin execs vs the shim's own steps. The
//    shim's own time per start = CreateEndpoint + Join − the chain's ADD plugin execs.
// 3. Parallel: 50 `docker run -d --rm ... sleep 300`, 10 at a time, wall time from the first
//    start to all running, on the Docker bridge network and on each background cni-shim; failures,
//    containers not running and duplicate addresses (docker inspect) counted; then docker rm -f
//    and CniShim.Settle (returns once the background teardowns are done). The CPU seconds of that
//    window: the machine's busy time (a wall time that follows it is CPU-bound), dockerd's,
//    containerd's, the cni-shim process's own and its children's (the plugins, ip, iptables).
// 4. RSS (VmRSS) of each background cni-shim serve process: idle after start, with the 50
//    endpoints up, after they are removed. serve runs with the node flags of packaging/serve-node-flags, as it ships.
// 5. Back to back: 20 `docker run --rm IMAGE true` with no pause on Docker's bridge, and for each
//    background cni-shim on its network (Docker's IPAM) and on a network of the same cni-shim made
//    with --ipam-driver null (the embedded default's chain on a subnet of its own): run times, and
//    the median CreateEndpoint, its settle wait, Join, the plugin execs and the shim's own time.
//
// podman runs with a containers.conf of the bench's own (CONTAINERS_CONF): the CNI backend, the
// CNI plugin dirs cni-shim searches, and a network config dir in the bench's temp dir, so the
// conflist podman writes lands there, not in /etc/cni/net.d. The podman image is the same busybox
// rootfs (docker save IMAGE, then podman load); nothing is pulled (--pull=never).
// Everything the bench creates is removed in `finally` (containers, networks, plugins, the podman
// network, its bridge and host-local dir, the podman image if the bench loaded it, CNI iptables
// chains that appeared during the run and are not in use, the temp dir). Every wait is bounded.
// Prints figures, asserts nothing; exits non-zero only when something failed to run.
// Usage: node dist/scripts/bench.js [rounds]   (default 11; make bench BENCH_ARGS=5)
// Built by make build (tsconfig.scripts.json) from scripts/bench.ts; imports of "../x.js" are src's
// modules (dist/x.js at run time).
import { execa, type ResultPromise } from "execa";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCniPath } from "../src/cni/plugins.js";
import { managedPlugin } from "./managed-plugin.js";
import { socketAnswers, unixRequest } from "../src/util/http.js";

const ROUNDS = Number(process.argv[2] ?? 11);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`rounds must be a positive integer, got "${process.argv[2]}"`);
const IMAGE = process.env.CNI_SHIM_TEST_IMAGE ?? "cni-shim-busybox:latest";
const PARALLEL = { containers: 50, width: 10 };
const TAG = `cnishim-bench-${process.pid}`;
const LABEL = `cni-shim-bench=${process.pid}`;
// dist/scripts/bench.js: the repository is two levels up.
const repoPath = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
// The engine under test (make bench ENGINE=28 runs it through scripts/engine.sh): its own client;
// 20 is the system's dockerd with Debian's client.
const DOCKER = process.env.CNI_SHIM_DOCKER_CLI ?? (existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker");
const ENGINE = process.env.CNI_SHIM_ENGINE ?? "20";
const HARNESS = process.env.CNI_SHIM_ENGINE_HARNESS ?? repoPath("scripts/engine.sh");
const CLI = repoPath("dist/cli/main.js");
// The node flags every launcher starts `serve` with (the RSS figures are of what ships).
const SERVE_NODE_FLAGS = readFileSync(repoPath("packaging/serve-node-flags"), "utf8").trim().split(/\s+/);
const EMBEDDED_DEFAULT = repoPath("plugin-config/net.d/cni-shim-default.conflist");
const CNI_PATH = parseCniPath(process.env.CNI_PATH); // cni-shim's --cni-path default

// ---- small helpers ----------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const progress = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const f0 = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x.toFixed(0) : "-");
const f1 = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x.toFixed(1) : "-");
const f2 = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x.toFixed(2) : "-");
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface RunOptions {
  timeoutMs?: number;
  reject?: boolean;
  env?: Record<string, string>;
  input?: string;
}
interface RunResult {
  stdout: string;
  stderr: string;
  failed: boolean;
  shortMessage: string;
}

/** Runs a command, bounded; throws with its output when it fails (unless reject: false). */
async function run(file: string, args: string[], { timeoutMs = 120_000, reject = true, env, input }: RunOptions = {}): Promise<RunResult> {
  const res = await execa(file, args, { reject: false, timeout: timeoutMs, killSignal: "SIGKILL", env, input });
  const out = { stdout: String(res.stdout ?? ""), stderr: String(res.stderr ?? ""), failed: res.failed, shortMessage: res.shortMessage ?? "" };
  if (reject && out.failed) throw new Error(`${file} ${args.join(" ")} failed: ${(out.stderr || out.stdout || out.shortMessage).trim()}`);
  return out;
}
const docker = (args: string[], opts?: RunOptions) => run(DOCKER, args, opts);

/** Runs fn over items, at most `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

async function timed(fn: () => Promise<unknown>) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Undo steps, run in reverse order in `finally`; a failing step is reported, the rest still run. */
const undo: { what: string; fn: () => Promise<unknown> }[] = [];
const defer = (what: string, fn: () => Promise<unknown>) => undo.push({ what, fn });
async function runUndo() {
  let failed = false;
  for (const { what, fn } of undo.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      failed = true;
      console.error(`bench: cleanup: ${what} failed: ${errText(err)}`);
    }
  }
  return !failed;
}

// ---- cni-shim plugins --------------------------------------------------------------------------

type Teardown = "background" | "sync";
type AttachPath = "sandbox" | "handoff";
/** A cni-shim's --attach (auto: in the container's namespace, then handed to Docker; its Joins log as hand-outs). */
type AttachMode = AttachPath | "auto";

interface Plugin {
  driver: string;
  socket: string;
  teardown: Teardown;
  attach: AttachMode;
  logs: string;
  /** The serve process (CPU and RSS figures). */
  pid: number | undefined;
  confDir: string;
  /** The managed plugin (--attach auto; CNI_SHIM_BENCH_MANAGED): its log lines arrive through dockerd's output. */
  managed?: true;
  proc?: ResultPromise<{ reject: false; all: true; buffer: false; detached: true; forceKillAfterDelay: number }>;
}

/** Waits until the plugin's background teardowns are done. */
async function backgroundDone(plugin: Plugin) {
  const res = await unixRequest(plugin.socket, "POST", "/CniShim.Settle", 120_000, "{}");
  if (res.status !== 200) throw new Error(`${plugin.driver}: CniShim.Settle answered ${res.status} ${res.body}`);
}

/** Waits until the plugin's background teardowns are done, then lets its log lines arrive. */
async function settle(plugin: Plugin) {
  await backgroundDone(plugin);
  await sleep(300);
}

/** A cni-shim serve process with a driver name of its own; `logs` collects its JSON log lines. */
async function startPlugin(dir: string, teardown: Teardown, attach: AttachMode): Promise<Plugin> {
  const driver = `${TAG}-${teardown}-${attach}`;
  const socket = `/run/docker/plugins/${driver}.sock`;
  const base = join(dir, `${teardown}-${attach}`);
  const args = [...SERVE_NODE_FLAGS, CLI, "serve", "--socket", socket, "--state-dir", join(base, "state"), "--cache-dir", join(base, "cache"), "--conf-dir", join(base, "net.d"), "--reconcile-interval", "0", "--teardown", teardown, "--attach", attach, "--log-level", "info"];
  // detached: a Ctrl-C reaches the bench only, which then removes the networks while the plugins still serve them.
  const proc = execa(process.execPath, args, { reject: false, all: true, buffer: false, detached: true, forceKillAfterDelay: 5_000 });
  const p: Plugin = { driver, socket, teardown, attach, logs: "", pid: proc.pid, confDir: join(base, "net.d"), proc };
  proc.all.on("data", (d: Buffer) => (p.logs += d.toString()));
  defer(`stop ${driver}`, async () => {
    proc.kill("SIGTERM");
    await Promise.race([proc, sleep(15_000)]);
    await rm(socket, { force: true });
  });
  for (let i = 0; i < 100 && !(await socketAnswers(socket)); i++) {
    if (proc.exitCode !== null && proc.exitCode !== undefined) break;
    await sleep(100);
  }
  if (!(await socketAnswers(socket))) throw new Error(`cni-shim (${teardown}, ${attach}) did not answer on ${socket} within 10 s:\n${p.logs.slice(-2000)}`);
  return p;
}

/** The managed-plugin column (scripts/managed-plugin.ts): its log lines copied into `logs` as they arrive. */
async function startManaged(dir: string, source: string): Promise<Plugin> {
  const dockerdPid = Number((await run("bash", [HARNESS, "pid", ENGINE, "dockerd"])).stdout.trim());
  const dockerSocket = process.env.CNI_SHIM_DOCKER_SOCKET ?? "/var/run/docker.sock";
  const m = await managedPlugin({ dir, name: `${TAG}-managed`, docker, dockerCli: DOCKER, dockerSocket, dockerdPid, repo: repoPath, defer, progress }, source);
  const p: Plugin = { driver: m.driver, socket: m.socket, teardown: "background", attach: "sandbox", logs: "", pid: m.pid, confDir: m.confDir, managed: true };
  const copy = setInterval(() => (p.logs = m.logs()), 50);
  defer("stop copying the managed plugin's log", () => Promise.resolve(clearInterval(copy)));
  return p;
}

/** A JSON log line of the plugin (the fields the bench reads). */
interface LogLine {
  msg?: string;
  container?: string;
  endpoint?: string;
  command?: string;
  plugin?: string;
  cniNetwork?: string;
  ms?: number | Record<string, number>;
  /** "sandbox" on a Join whose chain ran in the container's namespace, then handed to Docker (--attach auto). */
  addedIn?: string;
}

/** The plugin's log lines (parsed) from offset `from` on. */
function logLines(plugin: Plugin, from = 0): LogLine[] {
  return plugin.logs
    .slice(from)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as LogLine];
      } catch {
        return [];
      }
    });
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux that matters here). */
const USER_HZ = 100;

/** CPU seconds of a process (utime + stime) and of its waited-for children (cutime + cstime: for cni-shim, the plugins and the ip/iptables they and it ran). */
async function cpuOf(pid: number): Promise<{ self: number; children: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number); // fields from 3 (state) on
  const at = (i: number) => f[i] ?? NaN;
  return { self: (at(11) + at(12)) / USER_HZ, children: (at(13) + at(14)) / USER_HZ };
}

/** Busy and total CPU seconds of the whole machine (/proc/stat), all cores. */
async function machineCpu() {
  const [, ...v] = ((await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "").trim().split(/\s+/);
  const n = v.map(Number);
  const idle = (n[3] ?? NaN) + (n[4] ?? NaN);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / USER_HZ, total: total / USER_HZ };
}

/** Waits (at most 3 s) for a 100 ms window in which the machine was busy less than 15 % of the time. */
async function machineQuiet() {
  for (let waited = 0; waited < 3_000; waited += 100) {
    const a = await machineCpu();
    await sleep(100);
    const b = await machineCpu();
    if (b.total > a.total && (b.busy - a.busy) / (b.total - a.total) < 0.15) return;
  }
}

/** CPU used between two samples: the machine's, dockerd's and containerd's, and the plugin's own and its children's. */
type CpuSample = Awaited<ReturnType<typeof cpuSample>>;
async function cpuSample(pluginPid?: number) {
  // This engine's daemons only: another engine may run beside it.
  const pids = async (name: string) => (await run("bash", [HARNESS, "pid", ENGINE, name], { reject: false })).stdout.split("\n").filter(Boolean).map(Number);
  const sumOf = async (ps: number[]) => (await Promise.all(ps.map(cpuOf))).reduce((a, c) => a + c.self, 0);
  return {
    machine: await machineCpu(),
    dockerd: await sumOf(await pids("dockerd")),
    containerd: await sumOf(await pids("containerd")),
    plugin: pluginPid ? await cpuOf(pluginPid) : { self: 0, children: 0 },
  };
}
const cpuDelta = (a: CpuSample, b: CpuSample) => ({
  busy: b.machine.busy - a.machine.busy,
  total: b.machine.total - a.machine.total,
  dockerd: b.dockerd - a.dockerd,
  containerd: b.containerd - a.containerd,
  pluginSelf: b.plugin.self - a.plugin.self,
  pluginChildren: b.plugin.children - a.plugin.children,
});

/** VmRSS of a process, in MiB. */
async function rssMiB(pid: number | undefined): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---- docker networks ---------------------------------------------------------------------------

interface DockerNetwork {
  name: string;
  subnets: string[];
}
async function dockerNetwork(name: string, driverArgs: string[]): Promise<DockerNetwork> {
  await docker(["network", "create", ...driverArgs, "--label", LABEL, name]);
  defer(`docker network rm ${name}`, () => docker(["network", "rm", name]));
  const res = await docker(["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", name]);
  return { name, subnets: res.stdout.trim().split(/\s+/).filter(Boolean) };
}

async function removeLabelledContainers() {
  const ids = (await docker(["ps", "-aq", "--filter", `label=${LABEL}`])).stdout.split("\n").filter(Boolean);
  if (ids.length) await docker(["rm", "-f", ...ids], { timeoutMs: 300_000 });
}

// ---- podman ------------------------------------------------------------------------------------

/** podman with a containers.conf of the bench's own (CNI backend, conflists in the temp dir). */
type PodmanEnv = Awaited<ReturnType<typeof setUpPodman>>;
type Podman = PodmanEnv["podman"];
async function setUpPodman(dir: string) {
  if (!(await run("podman", ["--version"], { reject: false })).stdout) throw new Error("podman is missing: make bench installs it (scripts/install-bench-deps.sh)");
  const confDir = join(dir, "podman-net.d");
  await mkdir(confDir, { recursive: true });
  const conf = join(dir, "containers.conf");
  await writeFile(conf, `[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "${confDir}"\ncni_plugin_dirs = [${CNI_PATH.map((d) => `"${d}"`).join(", ")}]\n`);
  const env = { CONTAINERS_CONF: conf };
  const podman = (args: string[], opts: RunOptions = {}) => run("podman", args, { ...opts, env });
  const version = (await podman(["--version"])).stdout.trim().replace(/^podman version /, "");
  const backend = (await podman(["info", "--format", "{{.Host.NetworkBackend}}"])).stdout.trim();
  if (backend !== "cni") throw new Error(`podman uses the "${backend}" network backend even with ${conf}; the bench compares with CNI (libcni)`);
  return { podman, version, backend, confDir };
}

/** The busybox image in podman: `docker save` of the bench's image, `podman load`ed (removed at the end if new). */
async function podmanImage(dir: string, podman: Podman) {
  const ids = async () => new Set((await podman(["images", "-q", "--no-trunc"])).stdout.split("\n").map((s) => s.trim().replace(/^sha256:/, "")).filter(Boolean));
  const known = await ids();
  const tar = join(dir, "image.tar");
  await docker(["save", "-o", tar, IMAGE]);
  const res = await podman(["load", "-i", tar]);
  await rm(tar, { force: true });
  const name = /Loaded image(?:\(s\))?: ([^\s,]+)/.exec(`${res.stdout}\n${res.stderr}`)?.[1];
  if (!name) throw new Error(`podman load did not say which image it loaded: ${res.stdout} ${res.stderr}`);
  const id = (await podman(["image", "inspect", "--format", "{{.Id}}", name])).stdout.trim().replace(/^sha256:/, "");
  if (!known.has(id)) defer(`podman rmi ${id.slice(0, 12)}`, () => podman(["rmi", "-f", id]));
  return { name, id };
}

/** A conflist, as far as the bench reads it. */
interface Conflist {
  name?: string;
  plugins: { type: string; bridge?: string; ipam?: { ranges?: { subnet: string }[][] } }[];
}
interface PodmanNetwork {
  name: string;
  file: string | undefined;
  text: string;
  list?: Conflist;
  bridge: string | undefined;
  subnets: string[];
  bridgeIsOurs?: boolean;
}

/** A podman CNI network; returns its name, the conflist podman wrote, bridge and subnets. */
async function podmanNetwork(podmanEnv: PodmanEnv): Promise<PodmanNetwork> {
  const { podman, confDir } = podmanEnv;
  const name = TAG;
  await podman(["network", "create", "--disable-dns", "--label", LABEL, name]);
  const net: PodmanNetwork = { name, file: undefined, text: "", bridge: undefined, subnets: [] };
  defer(`podman network ${name}`, () => removePodmanNetwork(podmanEnv, net));
  for (const f of (await readdir(confDir)).filter((f) => f.endsWith(".conflist"))) {
    const text = await readFile(join(confDir, f), "utf8");
    const list = JSON.parse(text) as Conflist;
    if (list.name !== name) continue;
    const bridge = list.plugins.find((p) => p.type === "bridge");
    Object.assign(net, { file: join(confDir, f), text, list, bridge: bridge?.bridge, subnets: (bridge?.ipam?.ranges ?? []).flat().map((r) => r.subnet) });
  }
  if (!net.file) throw new Error(`podman network create ${name} wrote no conflist in ${confDir}`);
  // The bridge appears with the first ADD; if a link of that name exists already it is not ours.
  net.bridgeIsOurs = net.bridge ? (await run("ip", ["link", "show", net.bridge], { reject: false })).failed : false;
  return net;
}

async function removePodmanNetwork({ podman }: PodmanEnv, net: PodmanNetwork) {
  const ids = (await podman(["ps", "-aq", "--filter", `label=${LABEL}`])).stdout.split("\n").filter(Boolean);
  if (ids.length) await podman(["rm", "-f", ...ids], { reject: false });
  const res = await podman(["network", "rm", "-f", net.name], { reject: false });
  if (net.file) await rm(net.file, { force: true });
  if (net.bridgeIsOurs && net.bridge) await run("ip", ["link", "del", net.bridge], { reject: false });
  await rm(join("/var/lib/cni/networks", net.name), { recursive: true, force: true }); // host-local's reservations dir
  if (res.failed) throw new Error(`podman network rm ${net.name}: ${String(res.stderr).trim()} (its conflist, bridge and host-local dir were removed)`);
}

// ---- iptables: CNI chains the bench's chains created -------------------------------------------

// Chains the firewall and portmap plugins create once and share between all attachments.
const SHARED_CHAINS = /^CNI-(FORWARD|ADMIN|HOSTPORT-[A-Z]+)$/;
const BUILTIN_CHAINS = new Set(["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]);

interface Rule {
  chain: string;
  spec: string;
}
interface TableState {
  chains: Set<string>;
  rules: Rule[];
}
type Family = 4 | 6;

async function iptablesSave(family: Family) {
  const res = await run(family === 6 ? "ip6tables-save" : "iptables-save", [], { reject: false, timeoutMs: 30_000 });
  return res.failed ? undefined : parseSave(res.stdout);
}

function parseSave(text: string): Map<string, TableState> {
  const tables = new Map<string, TableState>();
  let cur: TableState | undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) tables.set(line.slice(1).trim(), (cur = { chains: new Set(), rules: [] }));
    else if (line.startsWith(":") && cur) cur.chains.add(line.slice(1).split(" ")[0] ?? "");
    else if (line.startsWith("-A ") && cur) {
      const rest = line.slice(3);
      const sp = rest.indexOf(" ");
      cur.rules.push({ chain: sp < 0 ? rest : rest.slice(0, sp), spec: sp < 0 ? "" : rest.slice(sp + 1) });
    }
  }
  return tables;
}

const ipv4 = (s: string) => s.split(".").reduce((a, o) => a * 256 + Number(o), 0);
function inCidr(ip: string, cidr: string) {
  const [net, bits] = cidr.split("/");
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(net ?? "")) return false;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(ip) / size) === Math.floor(ipv4(net ?? "") / size);
}
const mentions = (spec: string, cidrs: string[]) => [...spec.matchAll(/(\d{1,3}(?:\.\d{1,3}){3})/g)].some((m) => cidrs.some((c) => inCidr(m[1] ?? "", c)));
const jumpTarget = (spec: string) => /(?:^|\s)-[jg] (\S+)/.exec(spec)?.[1];

/**
 * iptables-restore input removing, from one table, the CNI chains that did not exist before the
 * bench: per-attachment ones whose rules (or the jumps to them) name the bench's CNI subnets, and
 * the shared ones when nothing uses them any more (no per-address rule, no jump from another CNI
 * chain). Also every rule that still names those subnets. Returns the script and what it leaves.
 */
function sweepTable(table: string, before: TableState, after: TableState, cidrs: string[]): { script: string; removed: string[]; kept: string[] } {
  const fresh = [...after.chains].filter((c) => c.startsWith("CNI-") && !before.chains.has(c));
  const doomed = new Set(fresh.filter((c) => !SHARED_CHAINS.test(c) && after.rules.some((r) => (r.chain === c || jumpTarget(r.spec) === c) && mentions(r.spec, cidrs))));
  const doomedRule = (r: Rule) => !doomed.has(r.chain) && (mentions(r.spec, cidrs) || doomed.has(jumpTarget(r.spec) ?? ""));
  const shared = new Set(fresh.filter((c) => SHARED_CHAINS.test(c)));
  const left = after.rules.filter((r) => !doomed.has(r.chain) && !doomedRule(r));
  const usesShared = left.some((r) => {
    const to = jumpTarget(r.spec);
    if (shared.has(r.chain)) return /\/(32|128)(\s|$)/.test(r.spec) || (!!to?.startsWith("CNI-") && !shared.has(to));
    return shared.has(to ?? "") && !BUILTIN_CHAINS.has(r.chain);
  });
  if (!usesShared) for (const c of shared) doomed.add(c);
  const rules = after.rules.filter(doomedRule);
  const kept = fresh.filter((c) => !doomed.has(c));
  if (!rules.length && !doomed.size) return { script: "", removed: [], kept };
  const script = [`*${table}`, ...rules.map((r) => `-D ${r.chain} ${r.spec}`), ...[...doomed].map((c) => `-F ${c}`), ...[...doomed].map((c) => `-X ${c}`), "COMMIT", ""].join("\n");
  return { script, removed: [...[...doomed].map((c) => `chain ${table}/${c}`), ...rules.map((r) => `rule ${table}/${r.chain} ${r.spec}`)], kept };
}

type IptablesSnapshot = Record<Family, Map<string, TableState> | undefined>;
async function snapshotIptables(): Promise<IptablesSnapshot> {
  return { 4: await iptablesSave(4), 6: await iptablesSave(6) };
}

async function sweepIptables(before: IptablesSnapshot, cidrs: string[]) {
  const removed: string[] = [];
  const kept: string[] = [];
  for (const family of [4, 6] as const) {
    const after = await iptablesSave(family);
    const was = before[family];
    if (!after || !was) continue; // no snapshot: nothing can be told apart as the bench's
    for (const [table, state] of after) {
      const out = sweepTable(table, was.get(table) ?? { chains: new Set(), rules: [] }, state, family === 4 ? cidrs : []);
      kept.push(...out.kept.map((c) => `${table}/${c}`));
      if (!out.script) continue;
      await run(family === 6 ? "ip6tables-restore" : "iptables-restore", ["-w", "5", "--noflush"], { input: out.script, timeoutMs: 30_000 });
      removed.push(...out.removed);
    }
  }
  if (removed.length) console.log(`iptables: removed what the bench's CNI chains left: ${removed.join("; ")}`);
  if (kept.length) console.log(`iptables: CNI chains that appeared during the run left in place (in use, not the bench's alone): ${kept.join(", ")}`);
}

// ---- 1. sequential rounds ----------------------------------------------------------------------

// podman (as root) raises a container's nofile/nproc limits to the kernel's maximum, which a
// host without CAP_SYS_RESOURCE (this kind of sandbox) refuses at runc init: ask for modest ones.
const PODMAN_ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];

/** A cni-shim column: one serve (a teardown mode and an attach path) and its network. */
interface Shim {
  key: string;
  label: string;
  plugin: Plugin;
  net: DockerNetwork;
  /** A column of another chain on the same plugin (profileColumns): its own CNI network's lines only; not in sections 3 and 5. */
  cniNetwork?: string;
}

/** The timed starts: name, command, and the plugin whose log tells what CreateEndpoint and Join did. */
interface Mode {
  key: string;
  start: () => Promise<unknown>;
  plugin?: Plugin;
}

function sequentialModes({ bridgeNet, shims, podman, pImage, pNet }: { bridgeNet: DockerNetwork; shims: Shim[]; podman: Podman; pImage: { name: string }; pNet: PodmanNetwork }): Mode[] {
  const d = (net: string) => () => docker(["run", "--rm", "--label", LABEL, "--network", net, IMAGE, "true"]);
  const p = (net: string) => () => podman(["run", "--rm", "--pull=never", ...PODMAN_ULIMITS, "--label", LABEL, "--network", net, pImage.name, "true"]);
  return [
    { key: "bridge", start: d(bridgeNet.name) },
    { key: "none", start: d("none") },
    ...shims.map((sh) => ({ key: sh.key, start: d(sh.net.name), plugin: sh.plugin })),
    { key: "podman", start: p(pNet.name) },
    { key: "podmanNone", start: p("none") },
  ];
}

type Times = Record<string, number[]>;
async function sequentialRounds(modes: Mode[]): Promise<{ times: Times; marks: Map<Plugin, number> }> {
  progress("warm-up: one start of each kind (not counted)");
  for (const m of modes) await m.start();
  const plugins = modes.flatMap((m) => (m.plugin ? [m.plugin] : []));
  for (const p of plugins) await settle(p);
  const marks = new Map(plugins.map((p) => [p, p.logs.length]));
  const times: Times = Object.fromEntries(modes.map((m) => [m.key, [] as number[]]));
  for (let i = 0; i < ROUNDS; i++) {
    progress(`round ${i + 1}/${ROUNDS}`);
    for (let j = 0; j < modes.length; j++) {
      const m = modes[(i + j) % modes.length] as Mode; // rotate the order: no kind always runs first
      // Each start on a quiet machine: the background DELs of the other columns' last starts (a
      // user runs one plugin, not four) and podman's cleanup after its last start (conmon runs it
      // after `podman run --rm` returned) would otherwise share the cores with this one.
      await Promise.all(plugins.map((p) => backgroundDone(p)));
      await machineQuiet();
      times[m.key]?.push(await timed(m.start));
    }
  }
  for (const p of plugins) await settle(p);
  return { times, marks };
}

// ---- 2. CreateEndpoint's and Join's phases -----------------------------------------------------

/** One start: CreateEndpoint's and Join's ms phases, the ADD/DEL plugin execs' ms, ADD ms by plugin. */
interface Attachment {
  create: Record<string, number>;
  join: Record<string, number>;
  /** Which path the Join took: its log line says ("endpoint joined in its sandbox" or "endpoint joined"). */
  path: AttachPath | undefined;
  /** A hand-out Join whose chain ran in the container's namespace (--attach auto on 28+). */
  handed: boolean;
  /** The chain's ADD execs (its plugins; an IPAM plugin nested in one is part of that exec). */
  addExecs: number;
  /** IPAM plugins run by themselves (null IPAM in the sandbox: ADD at CreateEndpoint, DEL at Join). */
  ipamExecs: number;
  delExecs: number;
  delCount: number;
  byPlugin: Record<string, number>;
}

/** IPAM plugins: an exec of one is the runtime running the IPAM alone, never a link of the chain. */
const IPAM_PLUGINS = new Set(["host-local", "static", "dhcp"]);

const JOIN_LINES: Record<string, AttachPath> = { "endpoint joined in its sandbox": "sandbox", "endpoint joined": "handoff" };

/** Per start (one "endpoint attached" line, with its Join line): ms phases and plugin execs by command. */
function attachments(plugin: Plugin, from: number | undefined, mine: (cniNetwork: string | undefined) => boolean = () => true): Attachment[] {
  const lines = logLines(plugin, from);
  const execs = new Map<string, LogLine[]>();
  const joins = new Map<string, LogLine>();
  for (const l of logLines(plugin)) {
    if (l.msg === "cni exec" && l.container) {
      if (!execs.has(l.container)) execs.set(l.container, []);
      execs.get(l.container)?.push(l);
    }
    if (l.msg && JOIN_LINES[l.msg] && l.endpoint) joins.set(l.endpoint, l);
  }
  const execMs = (e: LogLine) => e.ms as number; // a "cni exec" line's ms is a number
  return lines
    .filter((l) => l.msg === "endpoint attached" && mine(l.cniNetwork))
    .map((l) => {
      const mine = execs.get(l.endpoint ?? "") ?? [];
      const joined = joins.get(l.endpoint ?? "");
      const ipamOnly = mine.filter((e) => IPAM_PLUGINS.has(e.plugin ?? ""));
      const of = (cmd: string) => mine.filter((e) => e.command === cmd && !ipamOnly.includes(e));
      const byPlugin: Record<string, number> = {};
      for (const e of of("ADD")) byPlugin[e.plugin ?? "undefined"] = (byPlugin[e.plugin ?? "undefined"] ?? 0) + execMs(e);
      return {
        create: (l.ms ?? {}) as Record<string, number>,
        join: (joined?.ms ?? {}) as Record<string, number>,
        path: joined?.msg ? JOIN_LINES[joined.msg] : undefined,
        handed: joined?.addedIn === "sandbox",
        addExecs: sum(of("ADD").map(execMs)),
        ipamExecs: sum(ipamOnly.map(execMs)),
        delExecs: sum(of("DEL").map(execMs)),
        delCount: of("DEL").length,
        byPlugin,
      };
    });
}

/** The finite numbers of a list (missing phases and NaN left out). */
const finite = (xs: (number | undefined)[]) => xs.filter((x): x is number => Number.isFinite(x));
const joinTotal = (a: Attachment) => a.join.total ?? NaN;
/** The shim's own time of one start: CreateEndpoint + Join − the plugin execs (the chain's ADD, an IPAM run alone). */
const ownMs = (a: Attachment) => (a.create.total ?? NaN) + joinTotal(a) - a.addExecs - a.ipamExecs;
/** The chain's time with the runtime's part (the "add" phase, at CreateEndpoint or at Join). */
const addMs = (a: Attachment) => (a.create.add ?? 0) + (a.join.add ?? 0);

function phaseTable(columns: Record<string, Attachment[]>): string[][] {
  const all = Object.values(columns).flat();
  // The phases of every start, each new one right after the phase it follows in its own start.
  const keysOf = (pick: (a: Attachment) => Record<string, number>) => {
    const keys: string[] = [];
    for (const a of all) {
      const own = Object.keys(pick(a)).filter((k) => k !== "total");
      for (const [i, k] of own.entries()) if (!keys.includes(k)) keys.splice(i ? keys.indexOf(own[i - 1] as string) + 1 : 0, 0, k);
    }
    return keys;
  };
  const rows: string[][] = [];
  const row = (label: string, f: (a: Attachment) => number | undefined) => rows.push([label, ...Object.values(columns).map((atts) => f1(median(finite(atts.map(f)))))]);
  const phaseName = (k: string) => (k === "add" ? "add (the CNI chain)" : k);
  const heading = (label: string) => rows.push([label, ...Object.keys(columns).map(() => "")]);
  heading("CreateEndpoint");
  for (const k of keysOf((a) => a.create)) row(`  ${phaseName(k)}`, (a) => a.create[k]);
  row("  total", (a) => a.create.total);
  heading("Join");
  for (const k of keysOf((a) => a.join)) row(`  ${phaseName(k)}`, (a) => a.join[k]);
  row("  total", joinTotal);
  row("plugin execs, ADD", (a) => a.addExecs);
  row("  runtime's own (add − execs)", (a) => addMs(a) - a.addExecs);
  row("shim's own (CreateEndpoint + Join − execs)", ownMs);
  const plugins: string[] = [];
  for (const a of all) for (const p of Object.keys(a.byPlugin)) if (!plugins.includes(p)) plugins.push(p);
  for (const p of plugins) row(`  exec ${p} ADD`, (a) => a.byPlugin[p]);
  row("plugin execs, DEL (per stop)", (a) => (a.delCount ? a.delExecs : NaN));
  return rows;
}

function printRows(header: string[], rows: (string | number)[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r: (string | number)[]) => "  " + r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0))).join("   ");
  console.log(fmt(header));
  for (const r of rows) console.log(fmt(r));
}

// ---- 3. parallel starts ------------------------------------------------------------------------

/** PARALLEL.containers `docker run -d` on one network, PARALLEL.width at a time. */
type Parallel = Awaited<ReturnType<typeof parallelStarts>>;
async function parallelStarts(netName: string, tag: string, whileUp?: () => Promise<number>, pluginPid?: number) {
  const names = Array.from({ length: PARALLEL.containers }, (_, i) => `${TAG}-${tag}-${i}`);
  const failures: string[] = [];
  const started: string[] = [];
  const cpu0 = await cpuSample(pluginPid);
  const wallMs = await timed(() =>
    pool(names, PARALLEL.width, async (name) => {
      const res = await docker(["run", "-d", "--rm", "--name", name, "--label", LABEL, "--network", netName, IMAGE, "sleep", "300"], { reject: false });
      if (res.failed) failures.push(`${name}: ${String(res.stderr || res.shortMessage).trim().split("\n").pop()}`);
      else started.push(name);
    }),
  );
  const cpu = cpuDelta(cpu0, await cpuSample(pluginPid));
  let running = 0;
  const addresses: string[] = [];
  if (started.length) {
    // reject: false: a container that already exited (--rm) is missing, the others are still listed.
    const res = await docker(["inspect", "--format", "{{.State.Running}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", ...started], { reject: false });
    for (const line of res.stdout.trim().split("\n")) {
      const [up, addr] = line.split(" ");
      if (up === "true") running++;
      if (addr) addresses.push(addr);
    }
  }
  const duplicates = addresses.length - new Set(addresses).size;
  const during = whileUp ? await whileUp() : undefined;
  if (started.length) await docker(["rm", "-f", ...started], { timeoutMs: 300_000, reject: false }); // gone already is fine
  return { wallMs, failures, running, noAddress: started.length - addresses.length, duplicates, during, cpu };
}

// ---- 5. back to back ---------------------------------------------------------------------------

const BACK_TO_BACK = 20;

/**
 * A network of the bg/handoff cni-shim made with --ipam-driver null: the embedded default's chain
 * (bridge, host-local, portmap, firewall, tuning) with a subnet and bridge of its own, written to
 * that plugin's conf dir, so the chain's host-local picks the addresses.
 */
/** A /24 of 10.248.0.0/16 no route of the host and none of `avoid` is in. */
async function freeSubnet(avoid: string[]): Promise<string> {
  const routes = (await run("ip", ["-4", "route", "show", "table", "all"])).stdout;
  const taken = (x: number) => routes.includes(`10.248.${x}.`) || avoid.includes(`10.248.${x}.0/24`);
  const octet = [...Array(250).keys()].map((i) => 1 + ((process.pid + i) % 250)).find((x) => !taken(x));
  if (octet === undefined) throw new Error("no free /24 in 10.248.0.0/16 for a network of the bench");
  return `10.248.${octet}.0/24`;
}

async function nullIpamNetwork(plugin: Plugin, confDir: string, suffix: string, avoid: string[]): Promise<DockerNetwork> {
  const subnet = await freeSubnet(avoid);
  const list = JSON.parse(await readFile(EMBEDDED_DEFAULT, "utf8")) as { name: string; plugins: Array<Record<string, unknown>> };
  const name = `${TAG}-null${suffix}`;
  const bridge = `csbn${suffix}${process.pid % 100000}`;
  list.name = name;
  for (const p of list.plugins) {
    if (p.type !== "bridge") continue;
    p.bridge = bridge;
    p.ipam = { ...(p.ipam as object), ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }] };
  }
  await mkdir(confDir, { recursive: true });
  await writeFile(join(confDir, `${name}.conflist`), JSON.stringify(list));
  defer(`bridge ${bridge} and host-local's ${name}`, async () => {
    await run("ip", ["link", "del", bridge], { reject: false });
    await rm(`/var/lib/cni/networks/${name}`, { recursive: true, force: true });
  });
  const net = await dockerNetwork(name, ["-d", plugin.driver, "--ipam-driver", "null", "-o", `cni.network=${name}`]);
  return { ...net, subnets: [subnet] };
}

/**
 * The chains of the extra columns, beside the embedded default on the first background cni-shim
 * (in-sandbox on Docker 28+): the kind profile (ptp: no plugin of it takes the MAC, so the Join
 * sets it) and the kubeadm profile (bridge without tuning: bridge takes MAC= from CNI_ARGS).
 */
const PROFILE_COLUMNS = [
  { profile: "kind", file: "plugin-config/net.d/10-kind.conflist", what: "kind profile (ptp + portmap + firewall)" },
  { profile: "kubeadm", file: "plugin-config/net.d/10-kubeadm.conflist", what: "kubeadm profile (bridge + portmap + firewall, no tuning)" },
];

/**
 * A profile's chain as a network of `plugin` on Docker's IPAM: the profile's list under a name,
 * subnet and bridge of the bench's own, written to that plugin's conf dir, so nothing a real
 * cluster's list uses (cni0, its subnet, /run/cni-ipam-state) is touched.
 */
async function profileNetwork(plugin: Plugin, confDir: string, { profile, file }: { profile: string; file: string }, avoid: string[]): Promise<DockerNetwork & { cniNetwork: string }> {
  const subnet = await freeSubnet(avoid);
  const gateway = subnet.replace(/0\/24$/, "1");
  const list = JSON.parse(await readFile(repoPath(file), "utf8")) as { name: string; plugins: Array<Record<string, unknown>> };
  const name = `${TAG}-${profile}`;
  const bridge = `csb${profile.slice(0, 2)}${process.pid % 100000}`;
  list.name = name;
  for (const p of list.plugins) {
    if (p.type === "bridge") p.bridge = bridge;
    if (!p.ipam) continue;
    const { dataDir: _, ...ipam } = p.ipam as Record<string, unknown>;
    p.ipam = { ...ipam, ranges: [[{ subnet, gateway }]] };
  }
  await mkdir(confDir, { recursive: true });
  await writeFile(join(confDir, `${name}.conflist`), JSON.stringify(list));
  defer(`bridge ${bridge} and host-local's ${name}`, async () => {
    await run("ip", ["link", "del", bridge], { reject: false });
    await rm(`/var/lib/cni/networks/${name}`, { recursive: true, force: true });
  });
  const net = await dockerNetwork(name, ["-d", plugin.driver, "-o", `cni.network=${name}`, "--subnet", subnet, "--gateway", gateway]);
  return { ...net, cniNetwork: name };
}

/** The profile columns, on the first background cni-shim (its own key and label, then the chain). */
async function profileShims(first: Shim, dir: string, avoid: string[]): Promise<Shim[]> {
  const out: Shim[] = [];
  for (const c of PROFILE_COLUMNS) {
    const net = await profileNetwork(first.plugin, join(dir, `background-${first.plugin.attach}`, "net.d"), c, [...avoid, ...out.flatMap((o) => o.net.subnets)]);
    out.push({ key: `${first.key} ${c.profile}`, label: `${first.label}, ${c.what}`, plugin: first.plugin, net, cniNetwork: net.cniNetwork });
  }
  return out;
}

/** A column's "endpoint attached" lines: its own CNI network's, or (a plugin's first column) all but its profile columns'. */
function columnLines(sh: Shim, shims: Shim[]): (cniNetwork: string | undefined) => boolean {
  if (sh.cniNetwork) return (n) => n === sh.cniNetwork;
  const others = new Set(shims.filter((o) => o.plugin === sh.plugin && o.cniNetwork).map((o) => o.cniNetwork));
  return (n) => !others.has(n);
}

interface BackToBack {
  label: string;
  runs: number[];
  failures: number;
  atts: Attachment[];
}

/** `docker run --rm IMAGE true` BACK_TO_BACK times with no pause: each start follows the previous one's removal at once. */
async function backToBack(label: string, net: string, plugin?: Plugin): Promise<BackToBack> {
  progress(`back to back: ${BACK_TO_BACK} x docker run --rm on ${label}`);
  const mark = plugin?.logs.length;
  const runs: number[] = [];
  let failures = 0;
  for (let i = 0; i < BACK_TO_BACK; i++) {
    const t = await timed(() => docker(["run", "--rm", "--label", LABEL, "--network", net, IMAGE, "true"]).catch(() => failures++));
    runs.push(t);
  }
  if (plugin) await settle(plugin);
  return { label, runs, failures, atts: plugin ? attachments(plugin, mark) : [] };
}

function printBackToBack(rows: BackToBack[]) {
  console.log(`\nBack to back: ${BACK_TO_BACK} x docker run --rm IMAGE true, no pause (median ms; CreateEndpoint and Join from the "endpoint attached" / "endpoint joined" lines):`);
  printRows(
    ["network", "run", "total s", "fail", "CreateEndpoint", "settle", "Join", "chain ADD execs", "IPAM alone", "CreateEndpoint − chain ADD execs", "shim's own"],
    rows.map((r) => {
      const m = (f: (a: Attachment) => number | undefined) => (r.atts.length ? f1(median(finite(r.atts.map(f)))) : "-");
      return [r.label, f0(median(r.runs)), f1(sum(r.runs) / 1000), r.failures, m((a) => a.create.total), m((a) => a.create.settle), m(joinTotal), m((a) => a.addExecs), m((a) => a.ipamExecs), m((a) => (a.create.total ?? NaN) - a.addExecs), m(ownMs)];
    }),
  );
  console.log("  (settle: CreateEndpoint waiting for the previous container's DEL, which still holds the address Docker's IPAM handed out again;");
  console.log("   IPAM alone: null IPAM in the container's namespace runs the IPAM by itself, ADD at CreateEndpoint and DEL at Join, and the chain at Join;");
  console.log("   CreateEndpoint − chain ADD execs: medians of each start's difference; shim's own: CreateEndpoint + Join − both)");
}

// ---- reporting ---------------------------------------------------------------------------------

/** The conflist podman wrote, and both chains' plugin types side by side. */
async function printChains(pNet: PodmanNetwork) {
  const types = (list: Conflist | undefined) => (list as Conflist).plugins.map((p) => p.type).join(" → ");
  const embedded = JSON.parse(await readFile(EMBEDDED_DEFAULT, "utf8")) as Conflist;
  console.log(`\nThe conflist podman wrote (${pNet.file ?? "undefined"}):`);
  console.log(pNet.text.trimEnd().replace(/^/gm, "  "));
  console.log(`  podman's chain:               ${types(pNet.list)}`);
  console.log(`  cni-shim's embedded default:  ${types(embedded)}  (plugin-config/net.d/cni-shim-default.conflist)`);
}

/** N = network − none per kind: "bridge", "podman" and each cni-shim column's key. */
type NetworkShare = Record<string, number>;
function printTable({ times }: { times: Times }, shims: Shim[], podmanVersion: string): NetworkShare {
  const m = (k: string) => median(times[k] ?? []);
  const N: NetworkShare = { bridge: m("bridge") - m("none"), podman: m("podman") - m("podmanNone") };
  for (const sh of shims) N[sh.key] = m(sh.key) - m("none");
  console.log(`\nStart of a container that exits at once (\`docker run --rm ${IMAGE} true\`, podman: \`podman run --rm\`), median of ${ROUNDS} interleaved rounds, ms:`);
  printRows(
    ["", "on the network", "on none", "N = network − none"],
    [
      ["Docker's bridge (user-defined network)", f0(m("bridge")), f0(m("none")), f0(N.bridge)],
      ...shims.map((sh) => [`cni-shim ${sh.label}`, f0(m(sh.key)), f0(m("none")), f0(N[sh.key])]),
      [`podman ${podmanVersion} + CNI (libcni)`, f0(m("podman")), f0(m("podmanNone")), f0(N.podman)],
    ],
  );
  return N;
}

function printRatios(N: NetworkShare, shims: Shim[], atts: Record<string, Attachment[]>) {
  console.log("\nRatios (the figures that count), per start, median:");
  printRows(
    ["cni-shim", "N − N(Docker bridge)", "chain's ADD execs", "shim's own (CreateEndpoint + Join − execs)", "N / N(podman)"],
    shims.map((sh) => {
      const a = atts[sh.key] ?? [];
      return [sh.label, `${f0((N[sh.key] ?? NaN) - (N.bridge ?? NaN))} ms`, `${f0(median(a.map((x) => x.addExecs)))} ms`, `${f1(median(finite(a.map(ownMs))))} ms`, f2((N[sh.key] ?? NaN) / (N.podman ?? NaN))];
    }),
  );
}

/** How many of a column's starts joined which way (a sandbox column whose Joins fell back shows it here). */
function pathCounts(atts: Attachment[]): string {
  const n = (p: AttachPath | undefined) => atts.filter((a) => a.path === p).length;
  const unknown = n(undefined);
  const handed = atts.filter((a) => a.handed).length;
  return `${n("sandbox")} in the container's namespace, ${handed} there then handed to Docker, ${n("handoff") - handed} handed out${unknown ? `, ${unknown} without a Join line` : ""}`;
}

function printParallel(bridge: Parallel, shims: { shim: Shim; par: Parallel; atts: Attachment[] }[]) {
  console.log(`\nParallel: ${PARALLEL.containers} × \`docker run -d --rm ${IMAGE} sleep 300\`, ${PARALLEL.width} at a time, first start to all running:`);
  const row = (label: string, r: Parallel) => [label, `${f0(r.wallMs)} ms`, r.failures.length, PARALLEL.containers - r.failures.length - r.running, r.noAddress, r.duplicates, f2(r.wallMs / bridge.wallMs)];
  printRows(["", "wall time", "failed", "not running", "no address", "duplicate addresses", "ratio to bridge"], [row("Docker's bridge", bridge), ...shims.map(({ shim, par }) => row(`cni-shim ${shim.label}`, par))]);
  // Where the CPU went in that window: a wall time that follows the machine's busy CPU time is CPU-bound.
  const cpuRow = (label: string, { cpu }: Parallel) => [label, `${f1(cpu.busy)} s of ${f1(cpu.total)} s (${f0((cpu.busy / cpu.total) * 100)}%)`, f1(cpu.dockerd), f1(cpu.containerd), f1(cpu.pluginSelf), f1(cpu.pluginChildren), f0((cpu.busy / PARALLEL.containers) * 1000)];
  console.log(`  CPU seconds in that window (all cores):`);
  printRows(["", "machine busy", "dockerd", "containerd", "cni-shim (node)", "cni-shim's children (plugins, ip)", "machine busy per container, ms"], [cpuRow("Docker's bridge", bridge), ...shims.map(({ shim, par }) => cpuRow(`cni-shim ${shim.label}`, par))]);
  for (const f of [bridge, ...shims.map((x) => x.par)].flatMap((r) => r.failures).slice(0, 5)) console.log(`  failure: ${f}`);
  for (const { shim, atts } of shims) {
    if (!atts.length) continue;
    const ms = (pick: (a: Attachment) => number | undefined) => f1(median(finite(atts.map(pick))));
    console.log(`  cni-shim ${shim.label} under this load, median ms per start: CreateEndpoint ${ms((a) => a.create.total)} (settle ${ms((a) => a.create.settle)}, lock ${ms((a) => a.create.lock)}), Join ${ms(joinTotal)} (lock ${ms((a) => a.join.lock)}), plugin execs ${ms((a) => a.addExecs)}, shim's own ${ms(ownMs)}; max CreateEndpoint + Join ${f1(Math.max(...atts.map((a) => (a.create.total ?? 0) + (a.join.total ?? 0))))}`);
  }
}

/** Parallel starts on Docker's bridge and on each background cni-shim, with its RSS after. */
async function parallelRuns(bridgeNet: string, shims: Shim[]) {
  progress(`parallel: ${PARALLEL.containers} containers on Docker's bridge`);
  const parBridge = await parallelStarts(bridgeNet, "pbr");
  const parallel: { shim: Shim; par: Parallel; atts: Attachment[]; rssAfter: number }[] = [];
  for (const shim of shims.filter((sh) => sh.plugin.teardown === "background" && !sh.cniNetwork)) {
    progress(`parallel: ${PARALLEL.containers} containers on cni-shim ${shim.key}`);
    const { plugin } = shim;
    const mark = plugin.logs.length;
    const par = await parallelStarts(shim.net.name, `p${shim.key.replace(/\W/g, "")}`, () => rssMiB(plugin.pid), plugin.pid);
    await settle(plugin);
    parallel.push({ shim, par, atts: attachments(plugin, mark), rssAfter: await rssMiB(plugin.pid) });
  }
  return [parBridge, parallel] as const;
}

// ---- main --------------------------------------------------------------------------------------

const ATTACH_LABEL: Record<AttachMode, string> = { sandbox: "in-sandbox", handoff: "hand-out", auto: "in-sandbox then handed to Docker" };
// Fewer rows (a figure of one path, on a shared machine): CNI_SHIM_BENCH_ATTACH=auto,sandbox picks the
// --attach columns (28+; default sandbox,handoff), CNI_SHIM_BENCH_TEARDOWN=background the teardowns
// (default background,sync), CNI_SHIM_BENCH_SEQUENTIAL_ONLY=1 stops after parts 1 and 2.
const TEARDOWNS = (process.env.CNI_SHIM_BENCH_TEARDOWN ?? "background,sync").split(",") as Teardown[];
if (!TEARDOWNS.length || TEARDOWNS.some((t) => t !== "background" && t !== "sync")) throw new Error(`CNI_SHIM_BENCH_TEARDOWN: background and/or sync, got "${process.env.CNI_SHIM_BENCH_TEARDOWN}"`);
const SEQUENTIAL_ONLY = process.env.CNI_SHIM_BENCH_SEQUENTIAL_ONLY === "1";

/** The --attach columns: Docker 28+ makes the container's namespace before Join, so the in-sandbox paths run there beside the hand-out. */
function attachModes(dockerVersion: string): AttachMode[] {
  if (Number(/^(\d+)\./.exec(dockerVersion)?.[1] ?? 0) < 28) return ["handoff"];
  const modes = (process.env.CNI_SHIM_BENCH_ATTACH ?? "sandbox,handoff").split(",") as AttachMode[];
  if (!modes.length || modes.some((m) => !(m in ATTACH_LABEL))) throw new Error(`CNI_SHIM_BENCH_ATTACH: sandbox, handoff and/or auto, got "${process.env.CNI_SHIM_BENCH_ATTACH}"`);
  return modes;
}

async function main() {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run make build (make bench does it)`);
  const dir = await mkdtemp(join(tmpdir(), "cnishim-bench-"));
  defer(`rm -r ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const before = await snapshotIptables();
  const cniSubnets: string[] = []; // filled below; the sweep runs after everything else is removed
  defer("iptables sweep", () => sweepIptables(before, cniSubnets));

  const dockerVersion = (await docker(["version", "--format", "{{.Server.Version}}"])).stdout.trim();
  const paths = attachModes(dockerVersion);
  const pEnv = await setUpPodman(dir);
  progress("loading the image into podman (docker save | podman load)");
  const pImage = await podmanImage(dir, pEnv.podman);
  // Undo runs in reverse: containers go first, then networks, then the plugins serving them.
  const plugins: Plugin[] = [];
  for (const teardown of TEARDOWNS) for (const attach of paths) plugins.push(await startPlugin(dir, teardown, attach));
  await sleep(1_000); // past the start-up reconciliation
  const managed = process.env.CNI_SHIM_BENCH_MANAGED;
  if (managed) plugins.push(await startManaged(dir, managed));
  const rssIdle = new Map(await Promise.all(plugins.filter((p) => p.teardown === "background").map(async (p) => [p, await rssMiB(p.pid)] as const)));
  const bridgeNet = await dockerNetwork(`${TAG}-bridge`, []);
  const shims: Shim[] = [];
  for (const plugin of plugins) {
    const key = plugin.managed ? "managed/auto" : `${plugin.teardown === "background" ? "bg" : "sync"}/${plugin.attach}`;
    const label = plugin.managed ? "background DEL, managed plugin (--attach auto)" : `${plugin.teardown === "background" ? "background DEL" : "--teardown sync"}, ${ATTACH_LABEL[plugin.attach]}`;
    const net = await dockerNetwork(`${TAG}-${key.replace(/\W/g, "-")}`, ["-d", plugin.driver]);
    cniSubnets.push(...net.subnets);
    shims.push({ key, label, plugin, net });
  }
  const first = shims.find((sh) => sh.plugin.teardown === "background");
  if (first) shims.push(...(await profileShims(first, dir, cniSubnets)));
  cniSubnets.push(...shims.flatMap((sh) => (sh.cniNetwork ? sh.net.subnets : [])));
  const pNet = await podmanNetwork(pEnv);
  cniSubnets.push(...pNet.subnets);
  defer("remove the bench's docker containers", removeLabelledContainers);

  const kernel = (await run("uname", ["-r"])).stdout.trim();
  console.log(`cni-shim bench: ${ROUNDS} rounds, image ${IMAGE}; docker ${dockerVersion}, podman ${pEnv.version} (network backend ${pEnv.backend}), node ${process.version}, kernel ${kernel}`);
  console.log(`cni-shim columns: ${shims.map((sh) => `${sh.key} (${sh.plugin.managed ? "docker plugin, --teardown background --attach auto" : `--teardown ${sh.plugin.teardown} --attach ${sh.plugin.attach}`})`).join(", ")}`);
  await printChains(pNet);

  // 1 + 2: sequential rounds, then the phases of the CreateEndpoints and Joins they made.
  const modes = sequentialModes({ bridgeNet, shims, podman: pEnv.podman, pImage, pNet });
  const seq = await sequentialRounds(modes);
  const N = printTable(seq, shims, pEnv.version);
  const atts: Record<string, Attachment[]> = Object.fromEntries(shims.map((sh) => [sh.key, attachments(sh.plugin, seq.marks.get(sh.plugin), columnLines(sh, shims))]));
  printRatios(N, shims, atts);
  console.log(`\nCreateEndpoint and Join, median ms per start over the cni-shim runs, from the "endpoint attached", "endpoint joined (in its sandbox)" and "cni exec" log lines:`);
  printRows(["phase", ...shims.map((sh) => sh.key)], phaseTable(atts));
  console.log(`  ("shim's own" = CreateEndpoint + Join but the plugin execs; DEL: background = after docker run returned, sync = inside it)`);
  for (const sh of shims) console.log(`  ${sh.key}: ${(atts[sh.key] ?? []).length} starts: ${pathCounts(atts[sh.key] ?? [])}`);

  if (SEQUENTIAL_ONLY) return;
  // 3 + 4: parallel starts, RSS with the 50 endpoints up and after they are gone.
  const [parBridge, parallel] = await parallelRuns(bridgeNet.name, shims);
  printParallel(parBridge, parallel);

  // 5: back to back on Docker's bridge, and on a Docker-IPAM and a null-IPAM network of each background cni-shim.
  const rows = [await backToBack("Docker's bridge", bridgeNet.name)];
  for (const shim of shims.filter((sh) => sh.plugin.teardown === "background" && !sh.cniNetwork)) {
    const nullNet = await nullIpamNetwork(shim.plugin, shim.plugin.confDir, shim.plugin.managed ? "m" : shim.plugin.attach.slice(0, 1), cniSubnets);
    cniSubnets.push(...nullNet.subnets);
    rows.push(await backToBack(`cni-shim, Docker's IPAM (${shim.key})`, shim.net.name, shim.plugin));
    rows.push(await backToBack(`cni-shim, --ipam-driver null (${shim.key})`, nullNet.name, shim.plugin));
  }
  printBackToBack(rows);
  console.log(`\nRSS of the cni-shim serve process (VmRSS):`);
  for (const { shim, par, rssAfter } of parallel) console.log(`  ${shim.key}: idle after start ${f1(rssIdle.get(shim.plugin))} MiB, with ${par.running} endpoints up ${f1(par.during)} MiB, after they were removed ${f1(rssAfter)} MiB`);
}

let cleaning: Promise<boolean> | undefined;
const cleanup = () => (cleaning ??= (progress("cleaning up"), runUndo()));
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    progress(`${sig}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}

let ok = false;
try {
  await main();
  ok = true;
} catch (err) {
  console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
} finally {
  if (!(await cleanup())) ok = false;
}
process.exit(ok ? 0 : 1);
