// Pure output of `cni-shim doctor`: a table for people, JSON for scripts.
import type { CheckResult, Group, Role, Status } from "./checks.js";
import { VERSION } from "../version.js";

export interface DoctorReport {
  /** cni-shim's own version (package.json), the managed plugin's tag. */
  version: string;
  role: Role;
  ok: boolean;
  counts: Record<Status, number>;
  checks: CheckResult[];
}

const GROUP_TITLES: Record<Group, string> = {
  "cni-shim": "cni-shim",
  node: "cluster node",
  ports: "ports",
};

export function buildReport(role: Role, checks: CheckResult[]): DoctorReport {
  const counts: Record<Status, number> = { pass: 0, warn: 0, fail: 0 };
  for (const c of checks) counts[c.status]++;
  return { version: VERSION, role, ok: counts.fail === 0, counts, checks };
}

export function renderJson(report: DoctorReport): string {
  return JSON.stringify(report, null, 2) + "\n";
}

function wrap(text: string, width: number): string[] {
  if (width < 20) return [text];
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines.length ? lines : [""];
}

/** The table: one row per check, grouped, with "fix:" lines under warnings and failures. */
export function renderTable(report: DoctorReport, width = 100): string {
  const idWidth = Math.max(5, ...report.checks.map((c) => c.id.length));
  const indent = 4 + 2 + idWidth + 2;
  const textWidth = Math.max(40, width - indent);
  const out: string[] = [`cni-shim doctor ${report.version} (role: ${report.role})`];
  const groups = [...new Set(report.checks.map((c) => c.group))];
  for (const group of groups) {
    out.push("", `${GROUP_TITLES[group]}:`);
    for (const c of report.checks.filter((x) => x.group === group)) {
      const [first, ...rest] = wrap(c.summary, textWidth);
      out.push(`${c.status.padEnd(4)}  ${c.id.padEnd(idWidth)}  ${first}`);
      for (const l of rest) out.push(`${"".padEnd(indent)}${l}`);
      if (c.fix && c.status !== "pass") {
        const [f1, ...fr] = wrap(c.fix, textWidth - 5);
        out.push(`${"".padEnd(indent)}fix: ${f1}`);
        for (const l of fr) out.push(`${"".padEnd(indent + 5)}${l}`);
      }
    }
  }
  const { pass, warn, fail } = report.counts;
  out.push("", `${pass} passed, ${warn} warning${warn === 1 ? "" : "s"}, ${fail} failed`);
  return out.join("\n") + "\n";
}
