// Shared harness for end-to-end tests: a real cni-shim process, the real dockerd, the real CNI
// plugins. Missing prerequisites fail loudly: these tests never skip.
import { execa, type ResultPromise } from "execa";
import { mkdtemp, mkdir, readFile, rm, access, constants, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import { httpGet as getPage, socketAnswers, unixRequest } from "../../src/util/http.js";
import { CNI_PLUGINS, CNI_PLUGIN_DIR, CNI_PLUGIN_SET_PROBLEM, SPEAKS_1_1, onPluginSet } from "./cni-plugin-set.js";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CLI = join(ROOT, "dist/cli/main.js");
/** The node flags every launcher starts `serve` with (packaging/serve-node-flags): tests run what ships. */
export const SERVE_NODE_FLAGS = readFileSync(join(ROOT, "packaging/serve-node-flags"), "utf8").trim().split(/\s+/);
export const IMAGE = process.env.CNI_SHIM_TEST_IMAGE ?? "cni-shim-busybox:latest";

export const rand = (n = 4) => randomBytes(n).toString("hex");

export async function sh(file: string, args: string[], opts: { timeoutMs?: number; reject?: boolean } = {}) {
  const res = await execa(file, args, { reject: false, timeout: opts.timeoutMs ?? 60_000, killSignal: "SIGKILL" });
  if (opts.reject !== false && res.failed) {
    throw new Error(`${file} ${args.join(" ")} failed (${res.exitCode}): ${res.stderr || res.stdout || res.shortMessage}`);
  }
  return { stdout: String(res.stdout).trim(), stderr: String(res.stderr).trim(), exitCode: res.exitCode ?? -1, failed: res.failed };
}

/**
 * The engine under test (scripts/engine.sh): "20" is the system's dockerd; "26"/"28" run in a
 * network namespace of their own, and `engine.sh run` starts the tests inside it with DOCKER_HOST,
 * CNI_SHIM_DOCKER_SOCKET (which the plugins and CLI commands the tests start inherit) and the
 * engine's own client.
 */
export const ENGINE = process.env.CNI_SHIM_ENGINE ?? "20";
const HARNESS = process.env.CNI_SHIM_ENGINE_HARNESS ?? join(ROOT, "scripts/engine.sh");

// Each engine's own client; for the system's, Debian's (a newer client on PATH, API 1.44+,
// refuses some flags, e.g. --mac-address with --network, against a 1.41 daemon).
export const DOCKER_CLI = process.env.CNI_SHIM_DOCKER_CLI ?? (existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker");
export const docker = (args: string[], opts?: { timeoutMs?: number; reject?: boolean }) => sh(DOCKER_CLI, args, opts);

/** kill -9 of the engine's dockerd (and its containerd), as a crash would. */
export async function killDockerd(opts: { containerd?: boolean } = {}): Promise<void> {
  await sh("bash", [HARNESS, "kill", ENGINE, ...(opts.containerd ? ["--containerd"] : [])], { timeoutMs: 60_000 });
}

/** Starts the engine's dockerd (and containerd) when not running, and waits until it answers. */
export async function dockerdUp(): Promise<void> {
  await sh("bash", [HARNESS, "up", ENGINE], { timeoutMs: 180_000 });
}

/** Throws with what to do when the machine lacks something the e2e tests need. */
export async function requirePrerequisites(): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("must run as root (network namespaces, iptables)");
  try {
    await access(CLI, constants.R_OK);
  } catch {
    problems.push(`${CLI} is missing: run "make build" (make test does it)`);
  }
  if (CNI_PLUGIN_SET_PROBLEM) problems.push(CNI_PLUGIN_SET_PROBLEM);
  for (const plugin of ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback"]) {
    try {
      await access(`${CNI_PLUGIN_DIR}/${plugin}`, constants.X_OK);
    } catch {
      const fix = CNI_PLUGINS === "1.1" ? "apt-get install containernetworking-plugins" : `scripts/cni-plugins.sh fetch ${CNI_PLUGINS}`;
      problems.push(`CNI plugin ${CNI_PLUGIN_DIR}/${plugin} missing (plugin set ${CNI_PLUGINS}): ${fix}`);
    }
  }
  const info = await docker(["info", "--format", "{{.ServerVersion}}"], { reject: false, timeoutMs: 20_000 });
  if (info.failed) problems.push(`Docker ${ENGINE} is not answering (${info.stderr}): run scripts/engine.sh up ${ENGINE} (make test does it)`);
  else {
    const img = await docker(["image", "inspect", IMAGE], { reject: false });
    if (img.failed) problems.push(`test image ${IMAGE} missing on Docker ${ENGINE}: run scripts/engine.sh run ${ENGINE} -- scripts/test-image.sh (make test does it)`);
  }
  if (problems.length) throw new Error(`end-to-end prerequisites missing:\n - ${problems.join("\n - ")}`);
}

export interface PluginHandle {
  driver: string;
  /** Temp dir holding the state and cache dirs; removed by cleanup(). */
  base: string;
  socket: string;
  stateDir: string;
  cacheDir: string;
  confDir: string;
  logs(): string;
  /** Resolves with the exit code (undefined when killed by a signal or not running). */
  stop(signal?: NodeJS.Signals): Promise<number | undefined>;
  start(): Promise<void>;
}

/**
 * On a set that speaks 1.1.0, the embedded default list in its 1.1.0 form (cniVersions), put in
 * the plugin's own conf dir, which is searched before the embedded one.
 */
async function defaultListOnPluginSet(confDir: string): Promise<void> {
  if (!SPEAKS_1_1) return;
  const embedded = JSON.parse(await readFile(join(ROOT, "plugin-config/net.d/cni-shim-default.conflist"), "utf8")) as { cniVersion: string };
  await mkdir(confDir, { recursive: true });
  await writeFile(join(confDir, "cni-shim-default.conflist"), JSON.stringify(onPluginSet(embedded), null, 2));
}

/**
 * A cni-shim process serving a driver name of its own (so it never clashes with a real one),
 * on the plugin set under test (--cni-path).
 */
export async function startPlugin(opts: { confDir?: string; cniPath?: string; execTimeoutMs?: number; driver?: string; reconcileGraceS?: number; args?: string[]; startWaitMs?: number } = {}): Promise<PluginHandle> {
  const driver = opts.driver ?? `cnishim-e2e-${rand()}`;
  const base = await mkdtemp(join(tmpdir(), `${driver}-`));
  const socket = `/run/docker/plugins/${driver}.sock`;
  const stateDir = join(base, "state");
  const cacheDir = join(base, "cache");
  const confDir = opts.confDir ?? join(base, "net.d");
  if (!opts.confDir) await defaultListOnPluginSet(confDir);
  let child: ResultPromise | undefined;
  let output = "";
  const handle: PluginHandle = {
    driver,
    base,
    socket,
    stateDir,
    cacheDir,
    confDir,
    logs: () => output,
    async start() {
      const args = [CLI, "serve", "--socket", socket, "--state-dir", stateDir, "--cache-dir", cacheDir, "--conf-dir", confDir, "--reconcile-interval", "0", "--log-level", "debug"];
      args.push("--cni-path", opts.cniPath ?? CNI_PLUGIN_DIR);
      if (opts.execTimeoutMs) args.push("--exec-timeout-ms", String(opts.execTimeoutMs));
      if (opts.reconcileGraceS !== undefined) args.push("--reconcile-grace", String(opts.reconcileGraceS));
      if (opts.args) args.push(...opts.args);
      child = execa("node", [...SERVE_NODE_FLAGS, ...args], { reject: false, all: true, buffer: false });
      child.all?.on("data", (d: Buffer) => (output += d.toString()));
      for (let i = 0; i < (opts.startWaitMs ?? 10_000) / 100; i++) {
        // The serving line too: attachPathOf reads it, and it comes after the socket (the sandbox-key look).
        if (output.includes('"cni-shim serving"') && (await socketAnswers(socket))) return;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`cni-shim did not start on ${socket}:\n${output}`);
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!child || child.exitCode !== null) return undefined;
      child.kill(signal);
      const res = await child;
      child = undefined;
      return res.exitCode;
    },
  };
  await handle.start();
  return handle;
}

/**
 * The attach path a plugin said it takes for new endpoints ("cni-shim serving" log line):
 * "staging-handoff" or "in-sandbox".
 */
export function attachPathOf(plugin: PluginHandle): string | undefined {
  for (const line of plugin.logs().split("\n")) {
    if (!line.includes('"cni-shim serving"')) continue;
    try {
      return (JSON.parse(line) as { attach?: { kind?: string } }).attach?.kind;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The page a published port serves. */
export async function httpGet(port: number, host = "127.0.0.1", timeoutMs = 5_000): Promise<string> {
  return (await getPage(host, port, timeoutMs)).body;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Best-effort removal of everything a test created, in the order that leaks least. */
export async function cleanup(containers: string[], networks: string[], plugin?: PluginHandle, dirs: string[] = []): Promise<void> {
  if (containers.length) await docker(["rm", "-f", ...containers], { reject: false });
  for (const n of networks) await docker(["network", "rm", n], { reject: false });
  if (plugin) {
    await plugin.stop();
    // Whatever a failed test left (endpoints Docker no longer knows): the real gc removes it.
    const gc = await sh("node", [CLI, "gc", "--socket", `${plugin.socket}.none`, "--state-dir", plugin.stateDir, "--cache-dir", plugin.cacheDir, "--conf-dir", plugin.confDir, "--reconcile-grace", "0", "--log-level", "error"], { reject: false });
    if (gc.failed) console.error(`cleanup gc of ${plugin.driver} reported: ${gc.stdout} ${gc.stderr}`);
    await rm(plugin.base, { recursive: true, force: true });
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

/** `ip` inside a running container (busybox has no -j, so parse the plain output). */
export async function containerNet(name: string): Promise<{ addr: string; routes: string[]; links: string }> {
  const addr = (await docker(["exec", name, "ip", "-o", "addr"])).stdout;
  const routes = (await docker(["exec", name, "ip", "route"])).stdout.split("\n").map((l) => l.trim()).filter(Boolean);
  const links = (await docker(["exec", name, "ip", "-o", "link"])).stdout;
  return { addr, routes, links };
}

/** POST to the plugin socket the way Docker does (no Content-Type). */
export function pluginCall(socketPath: string, path: string, body = ""): Promise<{ status: number; body: string }> {
  return unixRequest(socketPath, "POST", path, 30_000, body);
}
