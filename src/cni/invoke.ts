// Executing one plugin binary (libcni pkg/invoke): env + stdin in, result or error out.
import { execa } from "execa";
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

function buildEnv(req: ExecRequest): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  // Plugins exec iptables/ip; make sure a sane PATH is there even under a minimal service env.
  env.PATH = env.PATH || "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
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
      // The plugin runs in its own process group and the timeout kills the whole group: killing
      // only the plugin would leave its children (iptables, a shell plugin's commands) holding
      // stdout open, and we would wait for them long past the timeout.
      const child = execa(req.pluginPath, [], {
        env,
        extendEnv: false,
        input,
        detached: true,
        reject: false,
        stripFinalNewline: false,
        maxBuffer: 16 * 1024 * 1024,
      });
      let timedOut = false;
      const timer = setTimeout(() => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, "SIGKILL");
          timedOut = true;
        } catch {
          /* the whole group already exited */
        }
      }, req.timeoutMs);
      const res = await child.finally(() => clearTimeout(timer));
      const stdout = String(res.stdout ?? "");
      const stderr = String(res.stderr ?? "");
      if (timedOut) {
        throw new CniRuntimeError(`CNI plugin "${plugin}" ${req.command} did not finish within ${req.timeoutMs} ms and was killed`);
      }
      const spawnCode = (res as { code?: string }).code;
      const signal = (res as { signal?: string }).signal;
      if (res.exitCode === undefined && signal) {
        throw new CniPluginError(plugin, req.command, undefined, `was killed by ${signal}`, undefined, clip(stderr));
      }
      if (res.exitCode === undefined) {
        // The binary never ran; ETXTBSY happens when it is still being written (e.g. an upgrade).
        if (spawnCode === "ETXTBSY" && attempt < TEXT_FILE_BUSY_RETRIES) {
          await sleep(50 * 2 ** attempt);
          continue;
        }
        throw new CniRuntimeError(`cannot execute CNI plugin ${req.pluginPath}: ${(res as { shortMessage?: string }).shortMessage ?? spawnCode ?? "unknown error"}`);
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
