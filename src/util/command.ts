import { execa } from "execa";

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

/** Runs a host tool (ip, iptables, nsenter) without a shell, with a hard timeout. */
export async function run(file: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const result = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    killSignal: "SIGKILL",
    input: opts.input,
    stripFinalNewline: true,
  });
  const cmd = [file, ...args].join(" ");
  if (result.timedOut) throw new CommandError(`"${cmd}" timed out after ${opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS} ms`, cmd, String(result.stderr ?? ""), undefined);
  if (result.failed) {
    const stderr = String(result.stderr ?? "").trim();
    const why = stderr || (result as { shortMessage?: string }).shortMessage || `exit code ${result.exitCode}`;
    throw new CommandError(`"${cmd}" failed: ${why}`, cmd, stderr, result.exitCode);
  }
  return String(result.stdout ?? "");
}
