// A managed plugin on the engine under test, with host paths of its own: the bench's
// managed-plugin column (CNI_SHIM_BENCH_MANAGED, opt-in: it needs the plugin's rootfs) and
// test/e2e/managed-plugin-sandbox.test.ts. The source is "1" (built as `make plugin` does:
// scripts/build-plugin.sh on the base CNI_SHIM_PLUGIN_BASE, default cni-shim-base:local, made by
// scripts/plugin-base.sh when missing) or a plugin dir `make plugin PLUGIN_DIR=DIR` left
// (config.json, rootfs/). Its host paths are the caller's: the engine's API socket, and a state,
// cache and conf dir in the caller's temp dir, which the plugin makes (its CNI_SHIM_HOST_* Env
// settings, set with `docker plugin set` before the enable). Its log is what
// dockerd logs of it (a plugin's stdout), read from dockerd's output file, which the engines of
// scripts/engine.sh and scripts/ensure-dockerd.sh have (not a dockerd logging to the journal).
import { execa } from "execa";
import { open, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { socketAnswers } from "../src/util/http.js";

interface ManagedOptions {
  /** The bench's temp dir. */
  dir: string;
  name: string;
  docker: (args: string[], opts?: { timeoutMs?: number; reject?: boolean }) => Promise<{ stdout: string }>;
  dockerCli: string;
  /** The engine's API socket, as the plugin is to reach it. */
  dockerSocket: string;
  /** The pid of the engine's dockerd (its output file is the plugin's log). */
  dockerdPid: number;
  repo: (path: string) => string;
  defer: (what: string, fn: () => Promise<unknown>) => void;
  progress: (msg: string) => void;
}

export interface Managed {
  driver: string;
  id: string;
  /** The state dir the plugin mounts (its records, attach-seen.json), and its CNI cache (host-local's reservations). */
  stateDir: string;
  cacheDir: string;
  socket: string;
  pid: number;
  confDir: string;
  /** Its JSON log lines so far, one per line (appended as dockerd logs them). */
  logs: () => string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function sh(file: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const res = await execa(file, args, { env, reject: false, all: true, timeout: 900_000 });
  if (res.failed) throw new Error(`${file} ${args.join(" ")} failed: ${String(res.all).slice(-2000)}`);
  return String(res.stdout);
}

/**
 * The base image on the engine's Docker. An engine of scripts/engine.sh has no route to the Debian
 * mirror (debootstrap), so it gets the system Docker's copy (make test builds it there first); the
 * system's own Docker builds it when missing.
 */
async function ensureBase(o: ManagedOptions, base: string, env: Record<string, string>): Promise<void> {
  const systemEnv = { ...env, DOCKER: "/usr/bin/docker", DOCKER_HOST: "unix:///var/run/docker.sock" };
  if (o.dockerSocket === "/var/run/docker.sock") return void (await sh("bash", [o.repo("scripts/plugin-base.sh"), base], systemEnv));
  const has = await execa(o.dockerCli, ["image", "inspect", base], { env: { DOCKER_HOST: `unix://${o.dockerSocket}` }, reject: false });
  if (!has.failed) return;
  const onSystem = await execa("/usr/bin/docker", ["image", "inspect", base], { env: systemEnv, reject: false });
  if (onSystem.failed) throw new Error(`${base} is on neither this engine's Docker nor the system's: run make plugin-base first (make test builds it on the system's Docker)`);
  await sh("bash", ["-o", "pipefail", "-c", `DOCKER_HOST=unix:///var/run/docker.sock /usr/bin/docker save ${base} | DOCKER_HOST=unix://${o.dockerSocket} ${o.dockerCli} load -q`], env);
}

/** A plugin dir built as `make plugin` does (the base made from the host's mirror: debootstrap runs in the host's network namespace). */
async function build(o: ManagedOptions): Promise<string> {
  const out = join(o.dir, "managed-build");
  const base = process.env.CNI_SHIM_PLUGIN_BASE ?? "cni-shim-base:local";
  const env = { DOCKER: o.dockerCli, PLUGIN_DIR: out, PLUGIN_NAME: `${o.name}-build`, BASE: base, INSTALL_PACKAGES: "0" };
  o.progress(`managed plugin: building its rootfs on ${base} (minutes)`);
  await ensureBase(o, base, env);
  o.defer(`docker image rm cni-shim-rootfs:${o.name}-build`, () => o.docker(["image", "rm", `cni-shim-rootfs:${o.name}-build`], { reject: false }));
  await sh("bash", [o.repo("scripts/build-plugin.sh")], env);
  await o.docker(["plugin", "rm", "-f", `${o.name}-build`]);
  return out;
}

/** The plugin's host paths: a state, cache and conf dir under the bench's dir (made by the plugin), and the engine's socket. */
function hostPaths(o: ManagedOptions): { settings: string[]; confDir: string; stateDir: string; cacheDir: string } {
  const [stateDir, cacheDir, confDir] = ["state", "cache", "net.d"].map((d) => join(o.dir, "managed", d)) as [string, string, string];
  const settings = [`CNI_SHIM_HOST_STATE_DIR=${stateDir}`, `CNI_SHIM_HOST_CACHE_DIR=${cacheDir}`, `CNI_SHIM_HOST_CONF_DIR=${confDir}`, `CNI_SHIM_HOST_DOCKER_SOCKET=${o.dockerSocket}`];
  return { settings, confDir, stateDir, cacheDir };
}

/** The serve process of the plugin whose id is `id`: its / is the plugin's rootfs (mountinfo's root field; readlink says "/"). */
async function servePid(id: string): Promise<number | undefined> {
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (!cmd.includes("/opt/cni-shim/dist/cli/main.js\0serve")) continue;
    const mounts = await readFile(`/proc/${name}/mountinfo`, "utf8").catch(() => "");
    if (mounts.split("\n").some((l) => l.split(" ")[4] === "/" && l.split(" ")[3]?.includes(id))) return Number(name);
  }
  return undefined;
}

/** The plugin's own lines in dockerd's output, unquoted: `... msg="<its line, Go-quoted>" plugin=<id>`. */
function followLog(file: string, id: string): { text: () => string; stop: () => void } {
  let text = "";
  let offset = 0;
  let partial = "";
  let stopped = false;
  const poll = async () => {
    const fh = await open(file, "r");
    try {
      for (;;) {
        const { bytesRead, buffer } = await fh.read(Buffer.alloc(1 << 16), 0, 1 << 16, offset);
        if (!bytesRead) break;
        offset += bytesRead;
        const lines = (partial + buffer.subarray(0, bytesRead).toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) {
          const m = l.endsWith(`plugin=${id}`) ? /msg="((?:[^"\\]|\\.)*)"/.exec(l) : null;
          if (m) text += `${JSON.parse(`"${m[1]}"`) as string}\n`;
        }
      }
    } finally {
      await fh.close();
    }
  };
  void (async () => {
    while (!stopped) {
      await poll().catch(() => undefined);
      await sleep(100);
    }
  })();
  return { text: () => text, stop: () => (stopped = true) };
}

/** Creates and enables the managed plugin (undone through `defer`). */
export async function managedPlugin(o: ManagedOptions, source: string): Promise<Managed> {
  const from = source === "1" ? await build(o) : source;
  const { settings, confDir, stateDir, cacheDir } = hostPaths(o);
  const logFile = await readlink(`/proc/${o.dockerdPid}/fd/1`);
  if (!logFile.startsWith("/")) throw new Error(`dockerd's output is ${logFile}, not a file: the managed-plugin column reads the plugin's log there (an engine of scripts/engine.sh)`);
  await o.docker(["plugin", "create", o.name, from], { timeoutMs: 300_000 });
  o.defer(`docker plugin rm ${o.name}`, () => o.docker(["plugin", "rm", "-f", o.name], { reject: false }));
  await o.docker(["plugin", "set", o.name, ...settings]);
  const id = (await o.docker(["plugin", "inspect", o.name, "--format", "{{.Id}}"])).stdout.trim();
  const log = followLog(logFile, id);
  await o.docker(["plugin", "enable", o.name], { timeoutMs: 120_000 });
  o.defer(`docker plugin disable ${o.name}`, async () => {
    log.stop();
    return o.docker(["plugin", "disable", "-f", o.name], { reject: false, timeoutMs: 120_000 });
  });
  let pid: number | undefined;
  for (let i = 0; i < 100 && !(pid = await servePid(id)); i++) await sleep(100);
  const socket = `/proc/${pid}/root/run/docker/plugins/cni-shim.sock`;
  for (let i = 0; i < 100 && pid && !(await socketAnswers(socket)); i++) await sleep(100);
  if (!pid || !(await socketAnswers(socket))) throw new Error(`the managed plugin ${o.name} did not answer within 20 s:\n${log.text().slice(-2000)}`);
  return { driver: `${o.name}:latest`, id, stateDir, cacheDir, socket, pid, confDir, logs: log.text };
}
