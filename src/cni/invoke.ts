// Executing one plugin binary (libcni pkg/invoke): env + stdin in, result or error out.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorResult } from "./schemas.js";
import { CniPluginError, CniRuntimeError } from "./errors.js";
import { formatCniArgs, type CniArg } from "./args.js";

export type CniCommand = "ADD" | "DEL" | "CHECK" | "VERSION" | "GC" | "STATUS";

export interface ExecRequest {
  pluginPath: string;
  command: CniCommand;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: CniArg[];
  cniPath: string[];
  stdin: unknown;
  timeoutMs: number;
}

export interface ExecRecord {
  plugin: string;
  command: CniCommand;
  containerId?: string;
  ms: number;
  ok: boolean;
}
export type ExecObserver = (record: ExecRecord) => void;

const TEXT_FILE_BUSY_RETRIES = 5;

/**
 * This process's environment without CNI_*, taken once: reading process.env goes through a
 * getter per variable, and a start makes 4 or 5 execs (0.1-0.4 ms each on a slow machine).
 */
let baseEnv: Readonly<Record<string, string>> | undefined;
function inheritedEnv(): Readonly<Record<string, string>> {
  if (baseEnv) return baseEnv;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  // Plugins exec iptables/ip; make sure a sane PATH is there even under a minimal service env.
  env.PATH = env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return (baseEnv = env);
}

function buildEnv(req: ExecRequest): Record<string, string> {
  const env: Record<string, string> = { ...inheritedEnv() };
  env.CNI_COMMAND = req.command;
  env.CNI_PATH = req.cniPath.join(":");
  if (req.containerId !== undefined) env.CNI_CONTAINERID = req.containerId;
  if (req.netns !== undefined) env.CNI_NETNS = req.netns;
  if (req.ifName !== undefined) env.CNI_IFNAME = req.ifName;
  if (req.args !== undefined) env.CNI_ARGS = formatCniArgs(req.args);
  return env;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function clip(text: string, max = 2000): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

interface Exit {
  exitCode?: number;
  signal?: string;
  /** The binary never ran (ENOENT, EACCES, ETXTBSY, ...). */
  spawnError?: NodeJS.ErrnoException;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

/**
 * One run of the binary in a process group of its own, bounded: the timeout kills the whole
 * group (killing only the plugin would leave its children, iptables or a shell plugin's commands,
 * holding stdout open, and we would wait for them long past the timeout). Node's spawn, not
 * execa: a chain is 3 to 5 execs per start, and execa's own JavaScript cost about 0.5 ms each
 * under serve's --jitless (measured: 3.2 vs 2.7 ms per VERSION exec of portmap).
 */
function runOnce(req: ExecRequest, env: Record<string, string>, input: string): Promise<Exit> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let timedOut = false;
    let spawnError: NodeJS.ErrnoException | undefined;
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(req.pluginPath, [], { env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    } catch (e) {
      // Some failures (ETXTBSY) throw instead of emitting 'error'.
      return resolve({ spawnError: e as NodeJS.ErrnoException, stdout: "", stderr: "", timedOut: false });
    }
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        /* the whole group already exited */
      }
    };
    const timer = setTimeout(() => {
      timedOut = child.pid !== undefined;
      killGroup();
    }, req.timeoutMs);
    const collect = (into: Buffer[]) => (d: Buffer) => {
      size += d.length;
      if (size > MAX_OUTPUT) return killGroup(); // a runaway plugin: reported by its signal
      into.push(d);
    };
    child.stdout.on("data", collect(out));
    child.stderr.on("data", collect(err));
    let settled = false;
    const settle = (exit: Exit) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(exit);
    };
    // A binary that could not be started has no pid, and its 'close' may never come.
    child.on("error", (e) => {
      spawnError = e;
      if (child.pid === undefined) settle({ spawnError: e, stdout: "", stderr: "", timedOut: false });
    });
    child.on("close", (code, signal) => {
      settle({
        exitCode: spawnError ? undefined : (code ?? undefined),
        signal: signal ?? undefined,
        spawnError,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    });
    child.stdin.on("error", () => undefined); // a plugin that exits without reading its config
    child.stdin.end(input);
  });
}

/**
 * Run one plugin. Resolves with the parsed stdout JSON (undefined when a DEL/CHECK/GC printed
 * nothing); rejects with CniPluginError carrying code/msg/details/stderr, or CniRuntimeError
 * when the plugin could not be run or timed out (it is killed then).
 */
export async function execPlugin(req: ExecRequest, observe?: ExecObserver): Promise<unknown> {
  const plugin = basename(req.pluginPath);
  const env = buildEnv(req);
  const input = JSON.stringify(req.stdin);
  const started = performance.now();
  let ok = false;
  try {
    for (let attempt = 0; ; attempt++) {
      const res = await runOnce(req, env, input);
      const { stdout, stderr } = res;
      if (res.timedOut) {
        throw new CniRuntimeError(`CNI plugin "${plugin}" ${req.command} did not finish within ${req.timeoutMs} ms and was killed`);
      }
      if (res.spawnError) {
        // The binary never ran; ETXTBSY happens when it is still being written (e.g. an upgrade).
        if (res.spawnError.code === "ETXTBSY" && attempt < TEXT_FILE_BUSY_RETRIES) {
          await sleep(50 * 2 ** attempt);
          continue;
        }
        throw new CniRuntimeError(`cannot execute CNI plugin ${req.pluginPath}: ${res.spawnError.code ?? res.spawnError.message}`, { notExecuted: true });
      }
      if (res.exitCode === undefined) {
        throw new CniPluginError(plugin, req.command, undefined, `was killed by ${res.signal ?? "a signal"}`, undefined, clip(stderr));
      }
      if (res.exitCode === 0) {
        const text = stdout.trim();
        if (req.command === "ADD" || req.command === "VERSION") {
          const parsed = text ? parseJson(text) : undefined;
          if (parsed === undefined || typeof parsed !== "object" || parsed === null) {
            const why = text ? `printed something that is not a JSON result: ${clip(text, 300)}` : "printed no result";
            throw new CniPluginError(plugin, req.command, undefined, `exited 0 but ${why}`, undefined, clip(stderr));
          }
          ok = true;
          return parsed;
        }
        ok = true;
        return text ? parseJson(text) : undefined;
      }
      // Failure: the error object is on stdout; some plugins only write to stderr.
      const errText = stdout.trim() || stderr.trim();
      const parsed = ErrorResult.safeParse(parseJson(errText));
      if (parsed.success) {
        throw new CniPluginError(plugin, req.command, parsed.data.code, parsed.data.msg, parsed.data.details, clip(stderr));
      }
      const msg = errText ? clip(errText, 1000) : `exited with status ${res.exitCode} and printed nothing`;
      throw new CniPluginError(plugin, req.command, undefined, msg, undefined, clip(stderr));
    }
  } finally {
    observe?.({ plugin, command: req.command, containerId: req.containerId, ms: performance.now() - started, ok });
  }
}
