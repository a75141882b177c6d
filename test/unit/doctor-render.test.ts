// The pure output of cni-shim doctor (src/doctor/render.ts).
import { describe, expect, it } from "vitest";
import { buildReport, renderJson, renderTable, type DoctorReport } from "../../src/doctor/render.js";
import type { CheckResult } from "../../src/doctor/checks.js";
import { forwardDropProblem } from "../../src/doctor/cni-shim-checks.js";
import type { ConfList } from "../../src/cni/schemas.js";
import { VERSION } from "../../src/version.js";

const checks: CheckResult[] = [
  { id: "root", group: "cni-shim", status: "pass", summary: "running as root" },
  { id: "ip-forward", group: "cni-shim", status: "fail", summary: "net.ipv4.ip_forward = 0: published ports do not work", fix: "sysctl -w net.ipv4.ip_forward=1" },
  { id: "product-uuid", group: "node", status: "warn", summary: "cannot read product_uuid", fix: "give each VM its own UUID" },
  { id: "port-10250", group: "ports", status: "pass", summary: "TCP 10250 is free (kubelet)", details: { port: 10250, inUse: false } },
];

describe("doctor report", () => {
  it("counts statuses; ok only without failures", () => {
    const report = buildReport("worker", checks);
    expect(report.counts).toEqual({ pass: 2, warn: 1, fail: 1 });
    expect(report.ok).toBe(false);
    expect(buildReport("worker", checks.filter((c) => c.status !== "fail")).ok).toBe(true);
  });

  it("renders JSON with every field", () => {
    const parsed = JSON.parse(renderJson(buildReport("control-plane", checks))) as DoctorReport;
    expect(parsed.role).toBe("control-plane");
    expect(parsed.version).toBe(VERSION);
    expect(parsed.checks[3]).toEqual(checks[3]);
    expect(parsed.checks[1]!.fix).toBe("sysctl -w net.ipv4.ip_forward=1");
  });

  it("renders a grouped table with a fix line under warnings and failures only", () => {
    const text = renderTable(buildReport("worker", checks), 100);
    const lines = text.split("\n");
    expect(lines[0]).toBe(`cni-shim doctor ${VERSION} (role: worker)`);
    expect(lines).toContain("cni-shim:");
    expect(lines).toContain("cluster node:");
    expect(lines).toContain("ports:");
    const failRow = lines.findIndex((l) => l.startsWith("fail  ip-forward"));
    expect(failRow).toBeGreaterThan(0);
    expect(lines[failRow + 1]!.trim()).toBe("fix: sysctl -w net.ipv4.ip_forward=1");
    expect(lines.find((l) => l.startsWith("warn  product-uuid"))).toBeDefined();
    expect(text.match(/fix:/g)).toHaveLength(2);
    expect(lines.at(-2)).toBe("2 passed, 1 warning, 1 failed");
  });

  it("wraps long summaries under the summary column", () => {
    const long: CheckResult = { id: "x", group: "node", status: "warn", summary: "word ".repeat(40).trim(), fix: "do ".repeat(30).trim() };
    const lines = renderTable(buildReport("worker", [long]), 60).split("\n").filter((l) => l.includes("word") || l.includes("do"));
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(60);
  });
});

describe("doctor: a chain whose containers dockerd's FORWARD policy would cut off", () => {
  const list = (types: string[]) => ({ cniVersion: "1.0.0", name: "n", plugins: types.map((type) => ({ type })) }) as ConfList;

  it("warns only for a chain without firewall on a host whose FORWARD policy is DROP", () => {
    expect(forwardDropProblem(list(["ptp", "portmap"]), "DROP")).toMatch(/no firewall plugin .* FORWARD policy is DROP/);
    expect(forwardDropProblem(list(["ptp", "portmap", "firewall"]), "DROP")).toBeUndefined();
    expect(forwardDropProblem(list(["ptp", "portmap"]), "ACCEPT")).toBeUndefined();
    expect(forwardDropProblem(list(["ptp"]), undefined)).toBeUndefined();
  });
});
