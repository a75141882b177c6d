// Fake CNI plugins for unit tests: tiny #!/bin/sh scripts written into a temp dir.
//
// Each script
//  - records every call as one file in <root>/calls/: the CNI_* env it saw, its stdin, its pid and
//    start/end times (ms), so tests can check order, arguments and overlap;
//  - answers VERSION with the supportedVersions it was created with;
//  - for ADD/DEL/CHECK/GC (and no CNI_COMMAND at all, recorded as "NONE") replies with what the
//    test configured: stdout text, stderr text, exit code, and an optional sleep done by a child
//    process (like a real plugin running iptables), whose pid is recorded too.
// Replies are read from files at run time, so setReply() changes behaviour without rewriting the
// executable (the runtime caches VERSION answers per binary path and mtime).
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, chmod } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type FakeCommand = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "NONE";

export interface Reply {
  /** Printed on stdout; objects are JSON-encoded. */
  stdout?: string | object;
  /** Printed on stderr; objects are JSON-encoded. */
  stderr?: string | object;
  /** Exit status (default 0). */
  exit?: number;
  /** Sleep this long (in a child process) before replying. */
  sleepSeconds?: number;
}

export interface FakePluginOptions {
  /** supportedVersions answered to VERSION. */
  versions?: string[];
  replies?: Partial<Record<FakeCommand, Reply>>;
}

/** What a plugin read on stdin, as the tests look at it: one plugin's config with the list's name and version. */
interface PluginStdin {
  cniVersion?: string;
  name?: string;
  type?: string;
  capabilities?: Record<string, boolean>;
  runtimeConfig?: Record<string, unknown>;
  prevResult?: unknown;
  [key: string]: unknown;
}

export interface PluginCall {
  plugin: string;
  command: string;
  /** Only the CNI_* variables that were set. */
  env: Record<string, string>;
  /** Parsed stdin ({} if it was not JSON: stdinText has it as sent). */
  stdin: PluginStdin;
  stdinText: string;
  pid: number;
  /** Milliseconds since the epoch. */
  start: number;
  end: number;
}

const DEFAULT_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];
const RECORDED_ENV = ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

function text(value: string | object | undefined): string {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function script(name: string, dataDir: string, callsDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
# Fake CNI plugin "${name}" (test/helpers/fake-plugin.ts).
DATA=${q(dataDir)}
CALLS=${q(callsDir)}
start=$(date +%s%N)
stdin=$(cat)
echo $$ > "$DATA/pid"
cmd="\${CNI_COMMAND:-NONE}"
R="$DATA/reply.$cmd"
if [ -s "$R.sleep" ]; then
  sleep "$(cat "$R.sleep")" &
  echo $! > "$DATA/childpid"
  wait $!
fi
end=$(date +%s%N)
esc() { printf '%s' "$1" | sed -e 's/\\\\/\\\\\\\\/g' -e 's/"/\\\\"/g'; }
envjson=""
for v in ${RECORDED_ENV.join(" ")}; do
  eval "isset=\\\${$v+x}; val=\\\${$v}"
  if [ -n "$isset" ]; then envjson="$envjson\${envjson:+,}\\"$v\\":\\"$(esc "$val")\\""; fi
done
rec="$CALLS/$start-$$"
printf '%s' "$stdin" > "$rec.stdin"
printf '{"plugin":"%s","command":"%s","pid":%s,"start":%s,"end":%s,"env":{%s}}\\n' \\
  ${q(name)} "$cmd" $$ "$((start / 1000000))" "$((end / 1000000))" "$envjson" > "$rec.tmp"
mv "$rec.tmp" "$rec.json"
if [ "$cmd" = VERSION ]; then cat "$DATA/versions"; exit 0; fi
[ -f "$R.stdout" ] && cat "$R.stdout"
[ -f "$R.stderr" ] && cat "$R.stderr" >&2
if [ -s "$R.exit" ]; then exit "$(cat "$R.exit")"; fi
exit 0
`;
}

export class FakePlugins {
  private constructor(
    /** Temp root holding bin/, data/ and calls/. */
    readonly root: string,
    /** Use as the runtime's cniPath. */
    readonly binDir: string,
    private readonly callsDir: string,
  ) {}

  static async create(): Promise<FakePlugins> {
    const root = await mkdtemp(join(tmpdir(), "cnishim-fake-"));
    const fp = new FakePlugins(root, join(root, "bin"), join(root, "calls"));
    await mkdir(fp.binDir);
    await mkdir(fp.callsDir);
    return fp;
  }

  private dataDir(name: string): string {
    return join(this.root, "data", name);
  }

  /**
   * Write plugin `name`. Unless told otherwise ADD prints a valid result naming the plugin
   * ({"cniVersion": <highest supported>, "interfaces":[{"name": "<name>"}]}), DEL/CHECK print
   * nothing and exit 0. Returns the executable's path.
   */
  async add(name: string, opts: FakePluginOptions = {}): Promise<string> {
    const versions = opts.versions ?? DEFAULT_VERSIONS;
    const data = this.dataDir(name);
    await mkdir(data, { recursive: true });
    await writeFile(join(data, "versions"), JSON.stringify({ cniVersion: versions.at(-1), supportedVersions: versions }));
    await this.setReply(name, "ADD", opts.replies?.ADD ?? { stdout: { cniVersion: versions.at(-1), interfaces: [{ name }] } });
    for (const [cmd, reply] of Object.entries(opts.replies ?? {})) {
      if (cmd !== "ADD") await this.setReply(name, cmd as FakeCommand, reply);
    }
    const path = join(this.binDir, name);
    await writeFile(path, script(name, data, this.callsDir));
    await chmod(path, 0o755);
    return path;
  }

  /** Change how plugin `name` answers `command` from now on. */
  async setReply(name: string, command: FakeCommand, reply: Reply): Promise<void> {
    const base = join(this.dataDir(name), `reply.${command}`);
    await writeFile(`${base}.stdout`, text(reply.stdout));
    await writeFile(`${base}.stderr`, text(reply.stderr));
    await writeFile(`${base}.exit`, String(reply.exit ?? 0));
    await writeFile(`${base}.sleep`, reply.sleepSeconds === undefined ? "" : String(reply.sleepSeconds));
  }

  /** Every recorded call, oldest first (VERSION probes included). */
  async calls(): Promise<PluginCall[]> {
    const out: PluginCall[] = [];
    for (const file of (await readdir(this.callsDir)).filter((f) => f.endsWith(".json"))) {
      const rec = JSON.parse(await readFile(join(this.callsDir, file), "utf8")) as Omit<PluginCall, "stdin" | "stdinText">;
      const stdinText = await readFile(join(this.callsDir, file.replace(/\.json$/, ".stdin")), "utf8");
      let stdin: PluginStdin;
      try {
        stdin = JSON.parse(stdinText) as PluginStdin;
      } catch {
        stdin = {};
      }
      out.push({ ...rec, stdin, stdinText });
    }
    // File names start with the start time in ns: sort on that for a precise order.
    const key = (c: PluginCall) => c.start * 1e6 + c.pid / 1e6;
    return out.sort((a, b) => key(a) - key(b));
  }

  /** Recorded calls without the VERSION probes. */
  async operations(): Promise<PluginCall[]> {
    return (await this.calls()).filter((c) => c.command !== "VERSION");
  }

  async clearCalls(): Promise<void> {
    await rm(this.callsDir, { recursive: true, force: true });
    await mkdir(this.callsDir);
  }

  /** PID of the last run of plugin `name`, and of the sleeping child it started (if any). */
  pids(name: string): { pid?: number; childPid?: number } {
    const read = (f: string) => (existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : undefined);
    return { pid: read(join(this.dataDir(name), "pid")), childPid: read(join(this.dataDir(name), "childpid")) };
  }

  async cleanup(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/**
 * True when `pid` is still running after up to `withinMs`: a SIGKILL is delivered at once but
 * the process is gone only when the kernel has torn it down, which on a loaded machine is not
 * the instant after kill() returns.
 */
export async function stillRunningAfter(pid: number, withinMs = 2000): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (processIsRunning(pid)) {
    if (Date.now() > until) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** True while `pid` is a live process (a zombie waiting to be reaped counts as dead). */
function processIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 3, after the parenthesised command name, is the state.
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
