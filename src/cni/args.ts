import { CniRuntimeError } from "./errors.js";

export type CniArg = [string, string];

/**
 * CNI_ARGS as "IgnoreUnknown=1;K=V;...". IgnoreUnknown comes first because plugins that parse
 * CNI_ARGS (host-local, bridge) reject keys they do not know otherwise. Values containing ';' or
 * '=' cannot be encoded unambiguously, so they are refused rather than passed through mangled.
 */
export function normaliseCniArgs(args: CniArg[] = []): CniArg[] {
  const out: CniArg[] = [["IgnoreUnknown", "1"]];
  for (const [key, value] of args) {
    if (!/^[A-Za-z0-9_.-]+$/.test(key)) throw new CniRuntimeError(`CNI_ARGS key "${key}" is invalid: use letters, digits, '_', '.', '-'`);
    if (/[;=]/.test(value)) throw new CniRuntimeError(`CNI_ARGS value for ${key} ("${value}") contains ';' or '=', which CNI_ARGS cannot carry`);
    if (key === "IgnoreUnknown") continue;
    out.push([key, value]);
  }
  return out;
}

export function formatCniArgs(args: CniArg[]): string {
  return args.map(([k, v]) => `${k}=${v}`).join(";");
}
