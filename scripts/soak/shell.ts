// The soak's commands: ones whose failure is a figure (sh, docker) and ones that must work (must).
import { execa } from "execa";
import { run } from "../../src/util/command.js";
import { DOCKER } from "./settings.js";

export interface ShOptions {
  timeoutMs?: number;
  input?: string;
}
export interface ShResult {
  ok: boolean;
  out: string;
  err: string;
  code: number | undefined;
}

/** A command whose failure is a figure, not an error. */
export async function sh(file: string, args: string[], { timeoutMs = 60_000, input }: ShOptions = {}): Promise<ShResult> {
  const r = await execa(file, args, { reject: false, timeout: timeoutMs, killSignal: "SIGKILL", input });
  return { ok: !r.failed, out: String(r.stdout ?? "").trim(), err: String(r.stderr ?? "").trim() || (r.shortMessage ?? ""), code: r.exitCode };
}

/** A command that must work (src's run: throws with its stderr), trimmed stdout. */
export async function must(file: string, args: string[], o: ShOptions = {}): Promise<string> {
  return (await run(file, args, { timeoutMs: 60_000, ...o })).trim();
}

/** docker commands that took over 3 s, for the summary. */
export const slow: string[] = [];

/** A docker command of the engine under test; its failure is a figure. */
export async function docker(args: string[], o?: ShOptions): Promise<ShResult> {
  const t0 = Date.now();
  const r = await sh(DOCKER, args, o);
  const ms = Date.now() - t0;
  if (ms > 3000) slow.push(`${ms} ms: docker ${args.slice(0, 3).join(" ")}`);
  return r;
}
