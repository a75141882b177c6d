import { spawn } from "node:child_process";

const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

export class CommandError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | undefined,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

/**
 * Runs a host tool (ip, iptables, nsenter) without a shell, with a hard timeout (SIGKILL); resolves
 * with its stdout (one final newline stripped). Node's spawn, not execa: under serve's --jitless,
 * execa's own JavaScript cost about 2 ms per exec, and a Join on the in-sandbox path waits on one.
 */
export function run(file: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const cmd = [file, ...args].join(" ");
  return new Promise((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const child = spawn(file, args, { stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout?.on("data", (d: Buffer) => stdout.push(d));
    child.stderr?.on("data", (d: Buffer) => stderr.push(d));
    // The command could not be run at all (missing, not executable).
    child.on("error", (err) => settle(() => reject(new CommandError(`"${cmd}" failed: ${err.message}`, cmd, "", undefined))));
    child.on("close", (code, signal) =>
      settle(() => {
        const err = Buffer.concat(stderr).toString("utf8");
        if (timedOut) return reject(new CommandError(`"${cmd}" timed out after ${timeoutMs} ms`, cmd, err, undefined));
        if (code !== 0) {
          const why = err.trim() || (signal ? `killed by ${signal}` : `exit code ${code}`);
          return reject(new CommandError(`"${cmd}" failed: ${why}`, cmd, err.trim(), code ?? undefined));
        }
        resolve(Buffer.concat(stdout).toString("utf8").replace(/\r?\n$/, ""));
      }),
    );
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => undefined); // a command that exits without reading its input
      child.stdin.end(opts.input);
    }
  });
}
