// compare's renderers: aligned text, a valid markdown table, an HTML page with the table (pure).
import { describe, expect, it } from "vitest";
import { marker, renderHtml, renderMarkdown, renderText, wrap } from "../../src/compare/render.js";
import { realFacts, reportOf } from "../helpers/compare-fixtures.js";

describe("compare renderers", () => {
  const report = reportOf(realFacts());

  it("prints an aligned table: every separator at the same column, rows marked", () => {
    for (const width of [0, 120, 200]) {
      const text = renderText(report, { width });
      const table = text.split("\n").filter((l) => / \|( |$)/.test(l));
      expect(table.length).toBeGreaterThan(report.rows.length);
      const positions = (l: string) => [...l.matchAll(/\|/g)].map((m) => m.index);
      const first = positions(table[0]!);
      expect(first).toHaveLength(3);
      for (const l of table) expect(positions(l).slice(0, 3), l).toEqual(first);
      if (width) for (const l of text.split("\n").filter((x) => / \| /.test(x))) expect(l.length).toBeLessThanOrEqual(width);
    }
    const text = renderText(report);
    expect(text).toMatch(/^P\* hairpin on bridge port +\| off +\| on +\| on$/m);
    expect(text).toMatch(/^ \* eth0 MAC /m);
    expect(text).toMatch(/^P {2}eth0 MTU +\| 1500 +\| 1500 +\| 1500$/m);
    expect(text).toContain("Parity: OK, cni-shim and attach agree on all");
    expect(text).toContain("Why they differ:");
  });

  it("marks broken parity", () => {
    const cols = realFacts();
    cols[2].inside.links.find((l) => l.name === "eth0")!.mtu = 1400;
    const bad = reportOf(cols);
    const text = renderText(bad);
    expect(text).toMatch(/^P! eth0 MTU +\| 1500 +\| 1500 +\| 1400$/m);
    expect(text).toContain("PARITY FAILED: cni-shim and attach disagree on 1 of");
    expect(marker(bad.rows.find((r) => r.key === "inside.eth0.mtu")!)).toBe("P!");
    expect(renderHtml(bad)).toMatch(/<tr class="row parity differs parity-fail" data-key="inside.eth0.mtu"/);
  });

  it("wraps long cells at spaces", () => {
    expect(wrap("aaa bbb ccc", 7)).toEqual(["aaa bbb", "  ccc"]);
    expect(wrap("short", 10)).toEqual(["short"]);
    expect(wrap("x".repeat(25), 10).every((l) => l.length <= 10)).toBe(true);
  });

  it("writes a markdown table with five cells per row and escaped values", () => {
    const md = renderMarkdown(report);
    const rows = md.split("\n").filter((l) => l.startsWith("|"));
    expect(rows[1]).toBe("|---|---|---|---|---|");
    for (const l of rows) expect(l.replace(/\\\|/g, "").split("|").length, l).toBe(7);
    expect(rows.length).toBe(report.rows.length + 2 + 4); // header, rule, 4 section rows
    expect(md).toContain("&lt;ip&gt;/32");
    expect(md).not.toMatch(/[^`]<ip>/);
    expect(md).toMatch(/\| P ≠ \| hairpin on bridge port \| off \| on \| on \|/);
  });

  it("writes a standalone HTML page holding the table", () => {
    const html = renderHtml(report);
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain('<table id="compare">');
    expect((html.match(/<tr class="row/g) ?? []).length).toBe(report.rows.length);
    expect(html).toContain("&lt;ip&gt;");
    expect(html).not.toMatch(/<ip>|<subnet>/);
    expect(html).toContain('id="parity" class="ok"');
  });
});
