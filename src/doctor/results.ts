// What a `cni-shim doctor` check is and what it says: pass, warn or fail, with what to do about a
// problem. Shared by the three kinds of checks (cni-shim-checks.ts, node-checks.ts,
// kubernetes-ports.ts); checks.ts runs them all.
import { readFile } from "node:fs/promises";
import type { Settings } from "../settings.js";

export type Status = "pass" | "warn" | "fail";
export type Group = "cni-shim" | "node" | "ports";
export type Role = "control-plane" | "worker";
export const ROLES: Role[] = ["control-plane", "worker"];
export const DEFAULT_ROLE: Role = "worker";

export interface CheckResult {
  id: string;
  group: Group;
  status: Status;
  summary: string;
  /** What to do; set for every warn and fail. */
  fix?: string;
  details?: Record<string, unknown>;
}

export interface DoctorContext {
  settings: Settings;
  role: Role;
  /** Roots of the kernel's views, replaceable in tests. */
  procRoot?: string;
  sysRoot?: string;
}

export type Check = (ctx: DoctorContext) => CheckResult | CheckResult[] | Promise<CheckResult | CheckResult[]>;

/** A check in the list checks.ts runs; group and id name it when it throws. */
export interface NamedCheck {
  group: Group;
  id: string;
  run: Check;
}

export const pass = (group: Group, id: string, summary: string, details?: Record<string, unknown>): CheckResult => ({ id, group, status: "pass", summary, ...(details ? { details } : {}) });

export const problem = (status: "warn" | "fail", group: Group, id: string, summary: string, fix: string, details?: Record<string, unknown>): CheckResult => ({
  id,
  group,
  status,
  summary,
  fix,
  ...(details ? { details } : {}),
});

/** A (proc or sys) file's trimmed text; undefined when it cannot be read. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return undefined;
  }
}
