#!/usr/bin/env node
// Fault-injection soak against the real dockerd and the real CNI plugins (make soak).
//
// Phases (each bounded in count and time, each printing figures):
//   cycles   docker run -d / docker rm -f on one cni-shim network, some with -p, while the plugin
//            is kill -9'd at random points (idle, during an in-flight docker run, during a
//            background teardown) and restarted at once, as systemd's Restart=always does.
//   dockerd  --restart always containers; dockerd kill -9'd and restarted N times; each time every
//            container must be back with working networking.
//   dockerd-first  plugin and dockerd both kill -9'd; dockerd restarted first (it tries the
//            restart-policy containers while the plugin is down and gives up on them), the plugin
//            3 s later: it must start them again (src/docker/restart-recovery.ts), with working
//            networking, and leave an unless-stopped container the user stopped alone. Rounds
//            alternate kill -9 of the plugin (socket file left) and a clean stop (socket removed).
//   reboot   the same containers; plugin, dockerd, containerd and the containers killed, then what a
//            reboot wipes is removed (veths, named netns, the network's bridge and iptables state,
//            sandbox mounts) and everything restarted with a new boot id.
//   fuzz     hostile requests straight at the socket (scripts/soak/fuzz.ts).
// --ipam null runs every phase on networks made with --ipam-driver null (the chain's host-local
// picks the addresses; CreateEndpoint replies with them) instead of Docker's IPAM.
// Failures of docker commands that overlapped a kill are expected and counted apart; any other
// failure, any connectivity failure of a running container, any leak after removal and gc makes
// the exit code non-zero.
//
// Network safety: traffic goes only to containers this script created and to 127.0.0.1.
// Built by make build (tsconfig.scripts.json) from scripts/soak.ts; imports of "../x.js" are src's
// modules (dist/x.js at run time).
import { execa, type ResultPromise } from "execa";
import { mkdtemp, mkdir, readdir, rm, readFile, access, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { existsSync, createWriteStream, readFileSync, type WriteStream } from "node:fs";
import { parseArgs } from "node:util";
import { isLivePreparedNetns } from "../src/host/netns-pool.js";
import { isLiveLookLink } from "../src/host/sandbox-look.js";
import { run } from "../src/util/command.js";
import { httpGet, socketAnswers, unixRequest } from "../src/util/http.js";
import { mulberry32 } from "./soak/random.js";

// dist/scripts/soak.js: the repository is two levels up.
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(ROOT, "dist/cli/main.js");
// The node flags every launcher starts `serve` with: the soak runs what ships.
const SERVE_NODE_FLAGS = readFileSync(join(ROOT, "packaging/serve-node-flags"), "utf8").trim().split(/\s+/);
// The engine under test (scripts/engine.sh run N -- node dist/scripts/soak.js): its own client; 20
// is the system's dockerd.
const DOCKER = process.env.CNI_SHIM_DOCKER_CLI ?? (existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker");
const ENGINE = process.env.CNI_SHIM_ENGINE ?? "20";
const HARNESS = process.env.CNI_SHIM_ENGINE_HARNESS ?? join(ROOT, "scripts/engine.sh");
const IMAGE = process.env.CNI_SHIM_TEST_IMAGE ?? "cni-shim-busybox:latest";

const { values: opt } = parseArgs({
  options: {
    cycles: { type: "string", default: "150" },
    kills: { type: "string", default: "10" },
    teardown: { type: "string", default: "both" },
    "dockerd-kills": { type: "string", default: "3" },
    "dockerd-first": { type: "string", default: "2" },
    reboot: { type: "string", default: "1" },
    fuzz: { type: "string", default: "10000" },
    "timeout-s": { type: "string", default: "3600" },
    phases: { type: "string", default: "cycles,dockerd,dockerd-first,reboot,fuzz" },
    seed: { type: "string" },
    // "null": every network is made with --ipam-driver null on a conflist of the soak's own
    // (bridge + host-local + portmap + firewall): the chain's IPAM picks the addresses.
    ipam: { type: "string", default: "docker" },
  },
});
if (opt.ipam !== "docker" && opt.ipam !== "null") throw new Error(`--ipam must be docker or null, got "${opt.ipam}"`);
const phases = new Set(opt.phases.split(","));
const deadline = Date.now() + Number(opt["timeout-s"]) * 1000;
const seedUsed = Number(opt.seed ?? Date.now() % 1e9);
const random = mulberry32(seedUsed); // seeded, so a failing run can be replayed with --seed
const pick = (n: number) => Math.floor(random() * n);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const rand = () => randomBytes(3).toString("hex");
const say = (...a: unknown[]) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

function checkTime(what: string) {
  if (Date.now() > deadline) throw new Error(`soak: time limit (${opt["timeout-s"]} s) reached during ${what}`);
}

interface ShOptions {
  timeoutMs?: number;
  input?: string;
}
interface ShResult {
  ok: boolean;
  out: string;
  err: string;
  code: number | undefined;
}

/** A command whose failure is a figure, not an error. */
async function sh(file: string, args: string[], { timeoutMs = 60_000, input }: ShOptions = {}): Promise<ShResult> {
  const r = await execa(file, args, { reject: false, timeout: timeoutMs, killSignal: "SIGKILL", input });
  return { ok: !r.failed, out: String(r.stdout ?? "").trim(), err: String(r.stderr ?? "").trim() || (r.shortMessage ?? ""), code: r.exitCode };
}
/** A command that must work (src's run: throws with its stderr), trimmed stdout. */
async function must(file: string, args: string[], o: ShOptions = {}): Promise<string> {
  return (await run(file, args, { timeoutMs: 60_000, ...o })).trim();
}
const slow: string[] = [];
const docker = async (args: string[], o?: ShOptions) => {
  const t0 = Date.now();
  const r = await sh(DOCKER, args, o);
  const ms = Date.now() - t0;
  if (ms > 3000) slow.push(`${ms} ms: docker ${args.slice(0, 3).join(" ")}`);
  return r;
};

/** Does the test page answer on host:port (within 4 s)? */
const pageAnswers = (host: string, port: number) => httpGet(host, port, 4000).then((r) => r.body.includes("cni-shim test page"), () => false);

// ---- the plugin process ----------------------------------------------------------------------

class Plugin {
  readonly driver = `cnishim-soak-${rand()}`;
  readonly socket = `/run/docker/plugins/${this.driver}.sock`;
  kills = 0;
  bootId: string | undefined;
  readonly logTail: string[] = [];
  readonly warnings = { forced: 0, recovered: 0, restarted: 0 };
  /** Which attach path the endpoints took (the plugin's log): Joins in the container's namespace, hand-outs at Join. */
  readonly attach = { inSandboxJoins: 0, fallbacks: 0 };
  base = "";
  stateDir = "";
  cacheDir = "";
  confDir = "";
  child: ResultPromise<{ reject: false; all: true; buffer: false }> | undefined;
  logFile: WriteStream | undefined;

  constructor(readonly teardown: string) {}

  async init() {
    this.base = await mkdtemp(join(tmpdir(), `${this.driver}-`));
    this.stateDir = join(this.base, "state");
    this.cacheDir = join(this.base, "cache");
    this.confDir = join(this.base, "net.d");
  }
  args() {
    return [...SERVE_NODE_FLAGS, CLI, "serve", "--socket", this.socket, "--state-dir", this.stateDir, "--cache-dir", this.cacheDir, "--conf-dir", this.confDir, "--reconcile-interval", "0", "--teardown", this.teardown];
  }
  async start() {
    const env = this.bootId ? { ...process.env, CNI_SHIM_BOOT_ID: this.bootId } : process.env;
    const child = execa("node", this.args(), { reject: false, all: true, buffer: false, env });
    this.child = child;
    const logFile = (this.logFile ??= createWriteStream(join(tmpdir(), `${this.driver}.log`)));
    child.all.on("data", (d: Buffer) => {
      logFile.write(d);
      for (const line of d.toString().split("\n").filter(Boolean)) {
        if (line.includes('"teardown forced')) this.warnings.forced++;
        if (line.includes('"recovering endpoint')) this.warnings.recovered++;
        if (line.includes('"container started again"')) this.warnings.restarted++;
        if (line.includes('"endpoint joined in its sandbox"')) this.attach.inSandboxJoins++;
        if (line.includes('"no container namespace at Join')) this.attach.fallbacks++;
        this.logTail.push(line);
        if (this.logTail.length > 200) this.logTail.shift();
      }
    });
    for (let i = 0; i < 150; i++) {
      if (await socketAnswers(this.socket)) return;
      await sleep(100);
    }
    throw new Error(`plugin did not start:\n${this.logTail.slice(-20).join("\n")}`);
  }
  private running(): boolean {
    return !!this.child && this.child.exitCode === null;
  }
  async kill9() {
    if (!this.child || !this.running()) return;
    this.child.kill("SIGKILL");
    await this.child;
    this.kills++;
  }
  async stop() {
    if (!this.child || !this.running()) return;
    this.child.kill("SIGTERM");
    await Promise.race([this.child, sleep(30_000)]);
    if (this.running()) await this.kill9();
  }
  async settle() {
    const r = await unixRequest(this.socket, "POST", "/CniShim.Settle", 120_000, "{}");
    if (r.status !== 200) throw new Error(`settle: ${r.status} ${r.body}`);
  }
  /**
   * The user's cleanup command, run with the plugin stopped and no grace (the serving plugin
   * keeps endpoints younger than --reconcile-grace: Docker may be mid-start). Returns what it
   * removed: endpoints Docker forgot, e.g. when a kill broke a docker run for good.
   */
  async gc(): Promise<ShResult & { removed: number }> {
    await this.stop();
    const r = await sh("node", [CLI, "gc", "--socket", `${this.socket}.stopped`, "--state-dir", this.stateDir, "--cache-dir", this.cacheDir, "--conf-dir", this.confDir, "--reconcile-grace", "0", "--log-level", "error"], { timeoutMs: 300_000 });
    let removed = 0;
    try {
      const rep = JSON.parse(r.out) as { endpointsRemoved?: unknown[]; cacheEntriesRemoved?: number };
      removed = (rep.endpointsRemoved?.length ?? 0) + (rep.cacheEntriesRemoved ?? 0);
    } catch {
      /* reported as a failure below */
    }
    return { ...r, removed };
  }
  async records() {
    const list = async (kind: string) => (await readdir(join(this.stateDir, kind)).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
    return { endpoints: await list("endpoints"), networks: await list("networks") };
  }
  async dispose(keepLog: boolean) {
    await this.stop();
    this.logFile?.end();
    if (!keepLog) await rm(join(tmpdir(), `${this.driver}.log`), { force: true });
    else say(`plugin log kept: ${join(tmpdir(), `${this.driver}.log`)}`);
    await rm(this.base, { recursive: true, force: true });
  }
}

// ---- the soak's networks ---------------------------------------------------------------------

/** The CNI network and bridge a soak network uses when they are not the embedded default's (null IPAM). */
interface NetworkNames {
  cniName?: string;
  bridge?: string;
}

/**
 * A cni-shim network as --ipam says: the embedded default on Docker's IPAM, or (null) a list of
 * the soak's own in the plugin's conf dir, on a /24 no route and no Docker network uses.
 */
async function createNetwork(plugin: Plugin, net: string): Promise<NetworkNames> {
  if (opt.ipam === "docker") {
    await must(DOCKER, ["network", "create", "-d", plugin.driver, net]);
    return remember(net, {});
  }
  const tag = rand();
  const names = { cniName: `soak-null-${tag}`, bridge: `csn-${tag}` };
  const ids = (await must(DOCKER, ["network", "ls", "-q"])).split("\n").filter(Boolean);
  const used = (await must("ip", ["-4", "route", "show", "table", "all"])) + (ids.length ? await must(DOCKER, ["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids]) : "");
  const octet = [...Array(250).keys()].map((i) => 1 + ((pick(250) + i) % 250)).find((x) => !used.includes(`10.249.${x}.`));
  if (octet === undefined) throw new Error("no free /24 in 10.249.0.0/16 for the null-IPAM network");
  const list = {
    cniVersion: "1.0.0",
    name: names.cniName,
    plugins: [
      { type: "bridge", bridge: names.bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: "host-local", ranges: [[{ subnet: `10.249.${octet}.0/24` }]], routes: [{ dst: "0.0.0.0/0" }] } },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "firewall" },
    ],
  };
  await mkdir(plugin.confDir, { recursive: true });
  await writeFile(join(plugin.confDir, `${names.cniName}.conflist`), JSON.stringify(list));
  await must(DOCKER, ["network", "create", "-d", plugin.driver, "--ipam-driver", "null", "-o", `cni.network=${names.cniName}`, net]);
  return remember(net, names);
}

const networkNames = new Map<string, NetworkNames>();
const remember = (net: string, names: NetworkNames) => (networkNames.set(net, names), names);

/** After the network is gone: what of its list stays behind by design (the bridge, host-local's dir) goes too. */
async function removeNetworkLeftovers(names: NetworkNames) {
  if (!names.bridge) return;
  await sh("ip", ["link", "del", names.bridge]);
  await rm(`/var/lib/cni/networks/${names.cniName}`, { recursive: true, force: true });
}

// ---- leak snapshot -------------------------------------------------------------------------------

type Snapshot = Record<"ipReservations" | "veths" | "bridges" | "netns" | "chains" | "rules" | "cacheFiles" | "endpointRecords" | "networkRecords", string[]>;
type Leaks = Partial<Snapshot>;
const ifnames = (json: string) => (JSON.parse(json || "[]") as { ifname: string }[]).map((l) => l.ifname);

async function snapshot(plugin: Plugin | undefined): Promise<Snapshot> {
  const ipReservations: string[] = [];
  for (const net of await readdir("/var/lib/cni/networks").catch(() => [])) {
    for (const f of await readdir(join("/var/lib/cni/networks", net)).catch(() => [])) {
      if (f !== "lock" && !f.startsWith("last_reserved_ip")) ipReservations.push(`${net}/${f}`);
    }
  }
  const veths = ifnames(await must("ip", ["-j", "link", "show", "type", "veth"]));
  const bridges = ifnames(await must("ip", ["-j", "link", "show", "type", "bridge"]));
  // A running plugin's prepared staging namespaces (cni-shim-p<pid>-<n>) are its pool, not leaks.
  const netns = (await must("ip", ["netns", "list"])).split("\n").filter(Boolean).map((l) => l.split(" ")[0] ?? l).filter((n) => !isLivePreparedNetns(n) && !isLiveLookLink(n));
  const rules: string[] = [];
  const chains: string[] = [];
  for (const tool of ["iptables-save", "ip6tables-save"]) {
    const text = (await sh(tool, [])).out;
    for (const l of text.split("\n")) {
      if (l.startsWith(":") && /^:CNI-(DN-)?[0-9a-f]{12,}/.test(l)) chains.push(`${tool}:${l.slice(1).split(" ")[0] ?? ""}`);
      // Per-attachment rules: the plugins' id comments, jumps to per-attachment chains, the
      // firewall plugin's per-address rules. Global chains (CNI-FORWARD...) stay by design.
      if (l.startsWith("-A") && (/ id: \\"/.test(l) || / -j CNI-(DN-)?[0-9a-f]{12,}/.test(l) || /^-A CNI-FORWARD .*-[sd] [0-9a-f.:]+\/(32|128)/.test(l))) rules.push(`${tool}:${l}`);
    }
  }
  const cacheFiles = plugin ? await readdir(join(plugin.cacheDir, "results")).catch(() => []) : [];
  const records = plugin ? await plugin.records() : { endpoints: [], networks: [] };
  return { ipReservations, veths, bridges, netns, chains, rules, cacheFiles, endpointRecords: records.endpoints, networkRecords: records.networks };
}

function leaked(before: Snapshot, after: Snapshot): Leaks {
  const out: Leaks = {};
  for (const k of Object.keys(before) as (keyof Snapshot)[]) {
    const extra = after[k].filter((x) => !before[k].includes(x));
    if (extra.length) out[k] = extra;
  }
  return out;
}

// ---- helpers on containers -------------------------------------------------------------------

async function containerIP(name: string, net: string) {
  const r = await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`]);
  return r.ok ? r.out : "";
}
async function running(name: string) {
  const r = await docker(["inspect", name, "--format", "{{.State.Running}}"]);
  return r.ok && r.out === "true";
}
async function reachable(name: string, net: string, hostPort: number): Promise<string | undefined> {
  const ip = await containerIP(name, net);
  if (!ip) return `${name}: no address on ${net}`;
  let direct = false;
  let published = false;
  for (let i = 0; i < 10; i++) {
    direct = await pageAnswers(ip, 80);
    published = hostPort ? await pageAnswers("127.0.0.1", hostPort) : true;
    if (direct && published) return undefined;
    await sleep(300);
  }
  const ep = await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`]);
  const inside = await docker(["exec", name, "sh", "-c", "ip -o addr; ip route; ip -o link"]);
  return `${name} (endpoint ${ep.out.slice(0, 12)}): ${ip}:80 ${direct ? "ok" : "not answering"}${hostPort ? `, 127.0.0.1:${hostPort} ${published ? "ok" : "not answering"}` : ""}; inside: ${inside.out.replace(/\s+/g, " ")}`;
}
const httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];

async function removeAll(names: string[]) {
  for (const n of names) await docker(["rm", "-f", n], { timeoutMs: 120_000 });
}

/** What every phase reports; finishPhase fills the end-of-phase figures. */
interface PhaseFigures {
  unexpectedFailures: string[];
  leaks: Leaks;
  seconds: number;
  connectivityFailures?: string[];
  notBack?: string[];
  gcRemoved?: number;
  forcedTeardowns?: number;
  recovered?: number;
  /** Joins done in the container's own namespace (Docker 28+), and hand-outs a Join fell back to. */
  inSandboxJoins?: number;
  inSandboxFallbacks?: number;
}
interface CyclesFigures extends PhaseFigures {
  teardown: string;
  cycles: number;
  dockerCommands: number;
  kills: number;
  killsInFlightRun: number;
  killsDuringTeardown: number;
  expectedFailures: number;
  connectivityChecks: number;
  connectivityFailures: string[];
  stoppedAtTimeLimit?: boolean;
}
type KillKind = "killsInFlightRun" | "killsDuringTeardown";
/** Containers that must come back with networking. */
interface BackFigures {
  back: number;
  notBack: string[];
}
interface DockerdFigures extends PhaseFigures, BackFigures {
  back: number;
  notBack: string[];
  dockerdKills: number;
  containers: number;
  freshRunOk: number;
}
type RebootFigures = Omit<DockerdFigures, "dockerdKills"> & { dockerdKills?: undefined };
interface DockerdFirstFigures extends PhaseFigures, BackFigures {
  back: number;
  notBack: string[];
  rounds: number;
  containers: number;
  tried: number;
  failedWhileDown: number;
  errorsSeen: string[];
  notTriedByDocker: string[];
  secondsToBack: number[];
  startedByPlugin: number;
  userStoppedStayedStopped: number;
  freshRunOk: number;
}
type FuzzFigures = { exitCode: number | undefined } & Record<string, unknown>;
interface Container {
  name: string;
  port: number;
}

/**
 * End of every phase, also after a failure: containers and network removed as a user would, the
 * user's gc, then the leak snapshot against the one taken before the phase.
 */
async function finishPhase(plugin: Plugin, fig: PhaseFigures, names: string[], net: string, before: Snapshot, started: number) {
  await dockerdUp().catch(() => undefined); // a phase that failed half-way may have left it down
  await removeAll(names);
  await plugin.settle().catch((e) => fig.unexpectedFailures.push(`settle: ${errText(e)}`));
  const rmNet = await docker(["network", "rm", net]);
  if (!rmNet.ok) fig.unexpectedFailures.push(`network rm: ${rmNet.err}`);
  const gc = await plugin.gc();
  if (!gc.ok) fig.unexpectedFailures.push(`gc: ${gc.err}`);
  fig.gcRemoved = gc.removed;
  await removeNetworkLeftovers(networkNames.get(net) ?? {});
  fig.leaks = leaked(before, await snapshot(plugin));
  fig.forcedTeardowns = plugin.warnings.forced;
  fig.recovered = plugin.warnings.recovered;
  fig.inSandboxJoins = plugin.attach.inSandboxJoins;
  fig.inSandboxFallbacks = plugin.attach.fallbacks;
  fig.seconds = Math.round((Date.now() - started) / 1000);
  await plugin.dispose(!!(fig.unexpectedFailures.length || fig.connectivityFailures?.length || fig.notBack?.length || Object.keys(fig.leaks).length));
}

// ---- phase: cycles with kill -9 of the plugin ------------------------------------------------

async function cyclesPhase(teardown: string, cycles: number, minKills: number): Promise<CyclesFigures> {
  const plugin = new Plugin(teardown);
  await plugin.init();
  await plugin.start();
  const before = await snapshot(plugin);
  const net = `soak-${teardown}-${rand()}`;
  const fig: CyclesFigures = { teardown, cycles: 0, dockerCommands: 0, kills: 0, killsInFlightRun: 0, killsDuringTeardown: 0, expectedFailures: 0, unexpectedFailures: [], connectivityChecks: 0, connectivityFailures: [], forcedTeardowns: 0, recovered: 0, leaks: {}, seconds: 0 };
  const started = Date.now();
  const alive = new Map<string, number>(); // name -> published host port (or 0)
  const all = new Set<string>();
  let killAt = 0; // time of the last kill: commands overlapping it may fail
  const killWindows: [number, number][] = [];
  const overlapsKill = (t0: number, t1: number) => killWindows.some(([k0, k1]) => k0 <= t1 && t0 <= k1);
  const killAndRestart = async (kind: KillKind | undefined) => {
    const k0 = Date.now();
    await plugin.kill9();
    fig.kills++;
    if (kind) fig[kind]++;
    await plugin.start();
    killAt = Date.now();
    killWindows.push([k0, killAt]);
  };
  const cmd = async (args: string[], what: string) => {
    const t0 = Date.now();
    const r = await docker(args, { timeoutMs: 120_000 });
    fig.dockerCommands++;
    if (!r.ok) {
      if (overlapsKill(t0, Date.now())) fig.expectedFailures++;
      else fig.unexpectedFailures.push(`${what}: ${r.err.slice(0, 400)}`);
    }
    return r;
  };
  try {
    await createNetwork(plugin, net);
    // Spread the kills over the run so each kind happens; more come at random.
    const killEvery = Math.max(1, Math.floor(cycles / Math.max(1, minKills)));
    let port = 20000 + pick(20000);
    for (let i = 0; i < cycles; i++) {
      // Out of time: stop cycling (the figures so far stand, marked), then clean up and check.
      if (Date.now() > deadline) {
        fig.stoppedAtTimeLimit = true;
        break;
      }
      fig.cycles++;
      const name = `soak-${rand()}`;
      all.add(name);
      const publish = pick(3);
      const hostPort = publish === 1 ? ++port : 0;
      const args = ["run", "-d", "--name", name, "--network", net, ...(publish === 1 ? ["-p", `${hostPort}:80`] : publish === 2 ? ["-p", "80"] : []), IMAGE, ...httpd];
      const scheduled = i % killEvery === killEvery - 1 || random() < 0.03;
      const kind = scheduled ? (["killsInFlightRun", "killsDuringTeardown", undefined] as const)[pick(3)] : undefined;
      let run: ShResult;
      if (kind === "killsInFlightRun") {
        const p = cmd(args, `run ${name}`);
        await sleep(30 + pick(400));
        await killAndRestart(kind);
        run = await p;
      } else {
        run = await cmd(args, `run ${name}`);
        if (scheduled && kind === undefined) await killAndRestart(undefined);
      }
      if (run.ok && (await running(name))) {
        let p = hostPort;
        if (publish === 2) {
          const r = await docker(["port", name, "80/tcp"]);
          p = r.ok ? Number(r.out.split("\n")[0]?.split(":").pop()) : 0;
        }
        alive.set(name, p);
      } else {
        await docker(["rm", "-f", name], { timeoutMs: 120_000 });
      }
      // Remove one or two at random; sometimes kill the plugin while their teardown runs.
      if (alive.size > 4 || (alive.size && random() < 0.4)) {
        const victims = [...alive.keys()].sort(() => random() - 0.5).slice(0, 1 + pick(2));
        const rms = victims.map((v) => cmd(["rm", "-f", v], `rm ${v}`));
        for (const v of victims) alive.delete(v);
        if (kind === "killsDuringTeardown") {
          await sleep(pick(150));
          await killAndRestart(kind);
        }
        await Promise.all(rms);
      } else if (kind === "killsDuringTeardown") {
        await killAndRestart(kind);
      }
      // Every running container must answer, directly and on its published port.
      for (const [c, p] of alive) {
        if (!(await running(c))) {
          fig.connectivityFailures.push(`${c}: not running any more`);
          alive.delete(c);
          continue;
        }
        fig.connectivityChecks++;
        const bad = await reachable(c, net, p);
        if (bad) fig.connectivityFailures.push(bad);
      }
    }
    while (fig.kills < minKills && !fig.stoppedAtTimeLimit) await killAndRestart(undefined);
  } finally {
    await finishPhase(plugin, fig, [...all], net, before, started);
  }
  return fig;
}

// ---- phases: dockerd crash, reboot ---------------------------------------------------------

async function dockerdUp() {
  const r = await sh("bash", [HARNESS, "up", ENGINE], { timeoutMs: 180_000 });
  if (!r.ok) throw new Error(`Docker ${ENGINE} did not come back: ${r.err}`);
}
async function killDockerd({ alsoContainerd }: { alsoContainerd: boolean }) {
  const r = await sh("bash", [HARNESS, "kill", ENGINE, ...(alsoContainerd ? ["--containerd"] : [])], { timeoutMs: 60_000 });
  if (!r.ok) throw new Error(`kill of Docker ${ENGINE}'s dockerd failed: ${r.err}`);
}

async function restartSet(net: string): Promise<Container[]> {
  const names = [`soak-rs-a-${rand()}`, `soak-rs-b-${rand()}`, `soak-rs-c-${rand()}`];
  const ports = [30000 + pick(10000), 0, 0];
  for (const [i, n] of names.entries()) {
    await must(DOCKER, ["run", "-d", "--restart", "always", "--name", n, "--network", net, ...(ports[i] ? ["-p", `${ports[i]}:80`] : []), IMAGE, ...httpd]);
  }
  return names.map((n, i) => ({ name: n, port: ports[i] ?? 0 }));
}

async function allBack(set: Container[], net: string, fig: BackFigures, what: string) {
  const until = Date.now() + 120_000;
  for (const c of set) {
    while (!(await running(c.name)) && Date.now() < until) await sleep(500);
    if (!(await running(c.name))) {
      const log = await docker(["inspect", c.name, "--format", "{{.State.Error}}"]);
      fig.notBack.push(`${what}: ${c.name} not running (${log.out})`);
      continue;
    }
    const bad = await reachable(c.name, net, c.port);
    if (bad) fig.notBack.push(`${what}: ${bad}`);
    else fig.back++;
  }
}

async function dockerdPhase(kills: number): Promise<DockerdFigures> {
  const plugin = new Plugin("background");
  await plugin.init();
  await plugin.start();
  const before = await snapshot(plugin);
  const net = `soak-dk-${rand()}`;
  const fig: DockerdFigures = { dockerdKills: 0, containers: 3, back: 0, notBack: [], freshRunOk: 0, unexpectedFailures: [], leaks: {}, seconds: 0 };
  const started = Date.now();
  let set: Container[] = [];
  const extra: string[] = [];
  try {
    await createNetwork(plugin, net);
    set = await restartSet(net);
    await allBack(set, net, fig, "before");
    fig.back = 0;
    for (let i = 0; i < kills; i++) {
      checkTime(`dockerd kill ${i}`);
      await killDockerd({ alsoContainerd: false });
      fig.dockerdKills++;
      await dockerdUp();
      await allBack(set, net, fig, `after dockerd kill ${i + 1}`);
      const n = `soak-dk-fresh-${rand()}`;
      extra.push(n);
      const r = await docker(["run", "-d", "--name", n, "--network", net, IMAGE, ...httpd]);
      if (r.ok && !(await reachable(n, net, 0))) fig.freshRunOk++;
      else fig.unexpectedFailures.push(`fresh run after dockerd kill ${i + 1}: ${r.err || "not reachable"}`);
      await docker(["rm", "-f", n]);
    }
  } finally {
    await finishPhase(plugin, fig, [...set.map((c) => c.name), ...extra], net, before, started);
  }
  return fig;
}

// ---- phase: plugin and dockerd both killed, dockerd back first ---------------------------------

/** State.Running and State.Error of a container. */
async function stateOf(name: string): Promise<{ Running: boolean; Error: string }> {
  const r = await docker(["inspect", name, "--format", "{{json .State}}"]);
  if (!r.ok) return { Running: false, Error: `inspect failed: ${r.err}` };
  return JSON.parse(r.out) as { Running: boolean; Error: string };
}

async function dockerdFirstPhase(rounds: number): Promise<DockerdFirstFigures> {
  const plugin = new Plugin("background");
  await plugin.init();
  await plugin.start();
  const before = await snapshot(plugin);
  const net = `soak-df-${rand()}`;
  const fig: DockerdFirstFigures = { rounds: 0, containers: 0, tried: 0, failedWhileDown: 0, errorsSeen: [], notTriedByDocker: [], back: 0, notBack: [], secondsToBack: [], startedByPlugin: 0, userStoppedStayedStopped: 0, freshRunOk: 0, unexpectedFailures: [], leaks: {}, seconds: 0 };
  const started = Date.now();
  let set: Container[] = [];
  const extra: string[] = [];
  let pluginDown = false;
  try {
    await createNetwork(plugin, net);
    set = await restartSet(net); // three --restart always, one with a published port
    for (const policy of ["unless-stopped", "on-failure"]) {
      const name = `soak-df-${policy}-${rand()}`;
      await must(DOCKER, ["run", "-d", "--restart", policy, "--name", name, "--network", net, IMAGE, ...httpd]);
      set.push({ name, port: 0 });
    }
    // An unless-stopped container the user stopped: it must stay stopped.
    const stopped = `soak-df-user-stopped-${rand()}`;
    extra.push(stopped);
    await must(DOCKER, ["run", "-d", "--restart", "unless-stopped", "--name", stopped, "--network", net, IMAGE, ...httpd]);
    await must(DOCKER, ["stop", "-t", "1", stopped]);
    fig.containers = set.length;
    await allBack(set, net, fig, "before");
    fig.back = 0;
    for (let i = 0; i < rounds; i++) {
      checkTime(`dockerd-first round ${i}`);
      fig.rounds++;
      // Odd rounds kill the plugin (its socket file stays: "connection refused"), even ones stop
      // it cleanly (serve removes its socket: "plugin not found").
      if (i % 2 === 0) await plugin.kill9();
      else await plugin.stop();
      pluginDown = true;
      await killDockerd({ alsoContainerd: false });
      await dockerdUp();
      // Wait until Docker has tried each restart-policy container (running, or failed with the
      // plugin unreachable), then start the plugin 3 s later. Docker 20.10 retries each attempt
      // for 15 s, one container after the other, and answers its API only once its restore has
      // tried them all; an engine that answers earlier gets 45 s more.
      // Docker 20.10's restore stops containers it finds alive (without live-restore) through its
      // kill path, which marks them stopped by hand: it restarts `always` and `on-failure` ones,
      // not `unless-stopped` ones. Those it does not try must stay as Docker left them.
      const until = Date.now() + 45_000;
      const tried: Container[] = [];
      const untried: string[] = [];
      for (const c of set) {
        let st = await stateOf(c.name);
        while (!st.Running && !st.Error && Date.now() < until) {
          await sleep(500);
          st = await stateOf(c.name);
        }
        if (!st.Running && st.Error) {
          fig.failedWhileDown++;
          if (!fig.errorsSeen.includes(st.Error)) fig.errorsSeen.push(st.Error);
        }
        if (st.Running || st.Error) tried.push(c);
        else untried.push(c.name);
      }
      fig.notTriedByDocker.push(...untried);
      fig.tried += tried.length;
      await sleep(3_000);
      const t0 = Date.now();
      await plugin.start();
      pluginDown = false;
      await allBack(tried, net, fig, `after round ${i + 1}`);
      fig.secondsToBack.push(Math.round((Date.now() - t0) / 100) / 10);
      await sleep(2_000); // the plugin's recovery has run: the user's stop must still hold
      if (await running(stopped)) fig.notBack.push(`round ${i + 1}: ${stopped} (unless-stopped, stopped by the user) was started`);
      else fig.userStoppedStayedStopped++;
      for (const n of untried) if (await running(n)) fig.notBack.push(`round ${i + 1}: ${n} was started although Docker did not try it`);
      // Docker's own restore (plugin up) starts the untried ones no more than we do: bring them
      // back by hand for the next round.
      for (const n of untried) await docker(["start", n]);
      if (untried.length) await allBack(set.filter((c) => untried.includes(c.name)), net, { notBack: fig.unexpectedFailures, back: 0 }, `started by hand after round ${i + 1}`);
      const n = `soak-df-fresh-${rand()}`;
      extra.push(n);
      const r = await docker(["run", "-d", "--name", n, "--network", net, IMAGE, ...httpd]);
      if (r.ok && !(await reachable(n, net, 0))) fig.freshRunOk++;
      else fig.unexpectedFailures.push(`fresh run after round ${i + 1}: ${r.err || "not reachable"}`);
      await docker(["rm", "-f", n]);
    }
    fig.startedByPlugin = plugin.warnings.restarted;
  } finally {
    // Removing the network needs the plugin: a network rm it cannot answer leaves the network
    // half-deleted in dockerd, whose pool then collides with the next network's at its restart.
    if (pluginDown) await plugin.start().catch((e) => fig.unexpectedFailures.push(`plugin restart for cleanup: ${errText(e)}`));
    await finishPhase(plugin, fig, [...set.map((c) => c.name), ...extra], net, before, started);
  }
  return fig;
}

/** What a reboot takes with it, for this network only: kernel state and /run. */
async function wipeLikeReboot(plugin: Plugin, netId: string, sandboxKeys: string[], names: NetworkNames) {
  const cniName = names.cniName ?? `cni-shim-${netId}`;
  const bridge = names.bridge ?? `cs-${netId}`;
  // Sandboxes (/run/docker/netns) and our staging namespaces (/run/netns).
  for (const key of sandboxKeys) {
    await sh("umount", ["-l", key]);
    await rm(key, { force: true });
  }
  for (const f of await readdir(join(plugin.stateDir, "endpoints")).catch(() => [])) {
    const rec = JSON.parse(await readFile(join(plugin.stateDir, "endpoints", f), "utf8")) as { stagingNetns: string; tmpName: string };
    await sh("ip", ["netns", "del", rec.stagingNetns]);
    await sh("ip", ["link", "del", rec.tmpName]);
  }
  for (const port of ifnames((await sh("ip", ["-j", "link", "show", "master", bridge])).out)) await sh("ip", ["link", "del", port]);
  await sh("ip", ["link", "del", bridge]);
  // Every iptables rule that names the network, and the per-attachment chains they jump to.
  for (const tool of ["iptables", "ip6tables"]) {
    const saved = (await sh(`${tool}-save`, [])).out;
    const script: string[] = [];
    let table = "";
    let lines: string[] = [];
    const chains = new Set<string>();
    const flush = () => {
      if (table && (lines.length || chains.size)) script.push(`*${table}`, ...lines, ...[...chains].map((c) => `-F ${c}`), ...[...chains].map((c) => `-X ${c}`), "COMMIT");
    };
    for (const l of saved.split("\n")) {
      if (l.startsWith("*")) {
        flush();
        table = l.slice(1);
        lines = [];
        chains.clear();
      } else if (l.startsWith("-A") && l.includes(`"${cniName}"`)) {
        lines.push(`-D${l.slice(2)}`);
        const jump = / -j (CNI-(?:DN-)?[0-9a-f]+)/.exec(l);
        if (jump?.[1]) chains.add(jump[1]);
      }
    }
    flush();
    if (script.length) await must(`${tool}-restore`, ["-w", "5", "--noflush"], { input: script.join("\n") + "\n" });
  }
}

async function rebootPhase(): Promise<RebootFigures> {
  const plugin = new Plugin("background");
  await plugin.init();
  plugin.bootId = `soak-boot-1-${rand()}`;
  await plugin.start();
  const before = await snapshot(plugin);
  const net = `soak-rb-${rand()}`;
  const fig: RebootFigures = { containers: 3, back: 0, notBack: [], freshRunOk: 0, unexpectedFailures: [], leaks: {}, seconds: 0 };
  const started = Date.now();
  let set: Container[] = [];
  const extra: string[] = [];
  try {
    await createNetwork(plugin, net);
    set = await restartSet(net);
    await allBack(set, net, fig, "before");
    fig.back = 0;
    const pids: string[] = [];
    const sandboxKeys: string[] = [];
    for (const c of set) {
      pids.push(await must(DOCKER, ["inspect", c.name, "--format", "{{.State.Pid}}"]));
      sandboxKeys.push(await must(DOCKER, ["inspect", c.name, "--format", "{{.NetworkSettings.SandboxKey}}"]));
    }
    const netId = (await must(DOCKER, ["network", "inspect", net, "--format", "{{.Id}}"])).slice(0, 12);
    // Power off: nothing gets to clean up.
    await plugin.kill9();
    await killDockerd({ alsoContainerd: true });
    await sh("kill", ["-9", ...pids]);
    await wipeLikeReboot(plugin, netId, sandboxKeys, networkNames.get(net) ?? {});
    // Power on: the plugin (its unit starts before docker.service), then dockerd.
    plugin.bootId = `soak-boot-2-${rand()}`;
    await plugin.start();
    await dockerdUp();
    await allBack(set, net, fig, "after reboot");
    const n = `soak-rb-fresh-${rand()}`;
    extra.push(n);
    const r = await docker(["run", "-d", "--name", n, "--network", net, IMAGE, ...httpd]);
    if (r.ok && !(await reachable(n, net, 0))) fig.freshRunOk++;
    else fig.unexpectedFailures.push(`fresh run after reboot: ${r.err || "not reachable"}`);
  } finally {
    await finishPhase(plugin, fig, [...set.map((c) => c.name), ...extra], net, before, started);
  }
  return fig;
}

async function fuzzPhase(n: number): Promise<FuzzFigures> {
  const r = await execa("node", [join(ROOT, "dist/scripts/soak/fuzz.js"), "--requests", String(n)], { reject: false, all: true, timeout: 600_000 });
  process.stdout.write(r.all + "\n");
  const line = String(r.all).split("\n").find((l) => l.startsWith("FUZZ_RESULT "));
  return { exitCode: r.exitCode, ...(line ? (JSON.parse(line.slice("FUZZ_RESULT ".length)) as Record<string, unknown>) : { error: "no FUZZ_RESULT line" }) };
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  if (process.getuid?.() !== 0) throw new Error("soak: must run as root");
  await access(CLI).catch(() => {
    throw new Error(`${CLI} missing: run make build`);
  });
  await dockerdUp();
  if (!(await docker(["image", "inspect", IMAGE])).ok) throw new Error(`image ${IMAGE} missing: run scripts/test-image.sh`);
  say(`seed ${seedUsed} (replay with --seed ${seedUsed})`);
  const results: Record<string, CyclesFigures | DockerdFigures | DockerdFirstFigures | RebootFigures | FuzzFigures> = {};
  let failed = false;
  if (phases.has("cycles")) {
    const modes = opt.teardown === "both" ? ["background", "sync"] : [opt.teardown];
    for (const mode of modes) {
      say(`cycles: ${opt.cycles} cycles, at least ${opt.kills} kills, teardown ${mode}`);
      const f = await cyclesPhase(mode, Number(opt.cycles), Number(opt.kills));
      results[`cycles-${mode}`] = f;
      say(JSON.stringify(f));
      if (f.unexpectedFailures.length || f.connectivityFailures.length || Object.keys(f.leaks).length || (f.kills < Number(opt.kills) && !f.stoppedAtTimeLimit)) failed = true;
    }
  }
  if (phases.has("dockerd") && Number(opt["dockerd-kills"]) > 0) {
    say(`dockerd: ${opt["dockerd-kills"]} kill -9s with --restart always containers`);
    const f = await dockerdPhase(Number(opt["dockerd-kills"]));
    results.dockerd = f;
    say(JSON.stringify(f));
    if (f.notBack.length || f.unexpectedFailures.length || Object.keys(f.leaks).length) failed = true;
  }
  if (phases.has("dockerd-first") && Number(opt["dockerd-first"]) > 0) {
    say(`dockerd-first: ${opt["dockerd-first"]} round(s) of plugin (kill -9, then a clean stop) and dockerd kill -9, dockerd back 3 s before the plugin`);
    const f = await dockerdFirstPhase(Number(opt["dockerd-first"]));
    results["dockerd-first"] = f;
    say(JSON.stringify(f));
    if (f.notBack.length || f.unexpectedFailures.length || Object.keys(f.leaks).length) failed = true;
  }
  if (phases.has("reboot") && Number(opt.reboot) > 0) {
    say("reboot: simulated power cycle with --restart always containers");
    const f = await rebootPhase();
    results.reboot = f;
    say(JSON.stringify(f));
    if (f.notBack.length || f.unexpectedFailures.length || Object.keys(f.leaks).length) failed = true;
  }
  if (phases.has("fuzz") && Number(opt.fuzz) > 0) {
    say(`fuzz: ${opt.fuzz} hostile requests`);
    const f = await fuzzPhase(Number(opt.fuzz));
    results.fuzz = f;
    if (f.exitCode !== 0) failed = true;
  }
  console.log("\nSOAK SUMMARY");
  for (const [k, figures] of Object.entries(results)) {
    if (k.startsWith("cycles")) {
      const f = figures as CyclesFigures;
      console.log(
        `  ${k.padEnd(18)} cycles ${f.cycles}, docker cmds ${f.dockerCommands}, kill -9 ${f.kills} (in-flight run ${f.killsInFlightRun}, during teardown ${f.killsDuringTeardown}), expected failures ${f.expectedFailures}, unexpected ${f.unexpectedFailures.length}, connectivity checks ${f.connectivityChecks} / failures ${f.connectivityFailures.length}, forced teardowns ${f.forcedTeardowns}, joins in the container's namespace ${f.inSandboxJoins ?? 0} (hand-out fall-backs ${f.inSandboxFallbacks ?? 0}), leaks ${Object.keys(f.leaks).length}, ${f.seconds} s${f.stoppedAtTimeLimit ? " (stopped at the time limit)" : ""}`,
      );
    } else if (k === "dockerd-first") {
      const f = figures as DockerdFirstFigures;
      console.log(
        `  ${k.padEnd(18)} rounds ${f.rounds}, failed at restore while the plugin was down ${f.failedWhileDown}, not tried by Docker (left stopped) ${f.notTriedByDocker.length}, back with networking ${f.back}/${f.tried} (started by the plugin ${f.startedByPlugin}; s to back ${f.secondsToBack.join(", ")}), user-stopped stayed stopped ${f.userStoppedStayedStopped}/${f.rounds}, fresh runs ok ${f.freshRunOk}, unexpected ${f.unexpectedFailures.length}, leaks ${Object.keys(f.leaks).length}, ${f.seconds} s`,
      );
    } else if (k === "fuzz") {
      const f = figures as FuzzFigures;
      console.log(`  ${k.padEnd(18)} exit ${f.exitCode}: ${JSON.stringify(f)}`);
    } else {
      const f = figures as DockerdFigures | RebootFigures;
      console.log(`  ${k.padEnd(18)} ${f.dockerdKills !== undefined ? `dockerd kill -9 ${f.dockerdKills}, ` : ""}containers back with networking ${f.back}/${f.containers * (f.dockerdKills ?? 1)}, fresh runs ok ${f.freshRunOk}, unexpected ${f.unexpectedFailures.length}, leaks ${Object.keys(f.leaks).length}, ${f.seconds} s`);
    }
  }
  if (slow.length) console.log(`  slow docker commands (> 3 s): ${slow.length}; first: ${slow.slice(0, 5).join("; ")}`);
  console.log(`SOAK_RESULT ${JSON.stringify({ ok: !failed, seed: seedUsed, results })}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
