// The report as an aligned text table, a markdown document and a standalone HTML page. Pure
// functions of the report: the same data in three shapes.
import { SECTIONS, SECTION_TITLES, type Cell, type Report, type Row } from "./model.js";

const EMPTY = "-";
const cellLines = (c: Cell): string[] => (c === null ? [EMPTY] : c.split("\n"));

/** Marker column: P = parity row, * = the columns differ, ! = parity broken. */
export function marker(r: Row): string {
  return `${r.parity ? "P" : " "}${!r.parityOk ? "!" : r.differs ? "*" : " "}`;
}

function heading(report: Report): string[] {
  const c = report.conflist;
  return [
    `cni-shim compare: image ${report.image}`,
    `CNI network list: ${c.name} (${c.mode === "named" ? `named, from ${c.source}` : "embedded default as cni-shim instantiates it"}), ${c.subnet} gateway ${c.gateway}${c.bridge ? `, bridge ${c.bridge}` : ""}`,
    `cni-shim driver: ${report.driver.name}${report.driver.inProcess ? " (served by this compare run)" : ""}${report.driver.attach ? `, attach path: ${report.driver.attach}` : ""}`,
  ];
}

function parityLine(report: Report): string {
  const p = report.parity;
  if (p.ok) return `Parity: OK, cni-shim and attach agree on all ${p.checked} parity rows.`;
  return `PARITY FAILED: cni-shim and attach disagree on ${p.failures.length} of ${p.checked} parity rows: ${p.failures.map((f) => f.label).join(", ")}.`;
}

/** Break a line into pieces of at most `width` characters, at spaces where possible. */
export function wrap(line: string, width: number): string[] {
  if (width <= 0 || line.length <= width) return [line];
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    let cut = rest.lastIndexOf(" ", width);
    if (cut < width / 3) cut = width;
    out.push(rest.slice(0, cut).trimEnd());
    rest = "  " + rest.slice(cut).trimStart();
  }
  out.push(rest);
  return out;
}

export interface TextOptions {
  /** Total width to fit the table into (cells wrap); 0 = never wrap. */
  width?: number;
}

export function renderText(report: Report, opts: TextOptions = {}): string {
  const titles = report.columns.map((c) => c.title);
  const labelWidth = Math.max("ROW".length, ...report.rows.map((r) => r.label.length));
  const natural = [0, 1, 2].map((i) => Math.max(titles[i]!.length, ...report.rows.flatMap((r) => cellLines(r.values[i]!).map((l) => l.length))));
  const total = opts.width ?? 0;
  const fixed = 2 + 2 + labelWidth + 3 * 3;
  const cap = total > 0 ? Math.max(20, Math.floor((total - fixed) / 3)) : Infinity;
  const widths = natural.map((w) => Math.min(w, cap));
  const sep = " | ";
  const fmt = (mark: string, label: string, cells: string[][]) => {
    const wrapped = cells.map((c, i) => c.flatMap((l) => wrap(l, widths[i]!)));
    const height = Math.max(1, ...wrapped.map((c) => c.length));
    const out: string[] = [];
    for (let k = 0; k < height; k++) {
      const parts = [k === 0 ? mark : "  ", (k === 0 ? label : "").padEnd(labelWidth), ...wrapped.map((c, i) => (c[k] ?? "").padEnd(widths[i]!))];
      out.push(`${parts[0]} ${parts.slice(1).join(sep)}`.trimEnd());
    }
    return out;
  };
  const rule = `${"-".repeat(2)}-${["-".repeat(labelWidth), ...widths.map((w) => "-".repeat(w))].join("-+-")}`;
  const out = [...heading(report), ""];
  out.push(...fmt("  ", "ROW", titles.map((t) => [t])), rule);
  for (const section of SECTIONS) {
    const rows = report.rows.filter((r) => r.section === section);
    if (!rows.length) continue;
    out.push(`== ${SECTION_TITLES[section]}`);
    for (const r of rows) out.push(...fmt(marker(r), r.label, r.values.map(cellLines)));
  }
  out.push(rule, "P parity row (cni-shim and attach must agree)   * columns differ   ! parity broken", "");
  if (report.notes.length) {
    out.push("Why they differ:");
    for (const n of report.notes) out.push(`  - ${n}`);
    out.push("");
  }
  out.push(parityLine(report));
  return out.join("\n") + "\n";
}

// ---- markdown ----------------------------------------------------------------------------------

const mdEscape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\|/g, "\\|").replace(/([*_`\\[\]])/g, "\\$1");
const mdCell = (c: Cell) => (c === null ? EMPTY : c.split("\n").map(mdEscape).join("<br>"));
const mdMarker = (r: Row) => [r.parity ? "P" : "", !r.parityOk ? "✗" : r.differs ? "≠" : ""].join(" ").trim();

export function renderMarkdown(report: Report): string {
  const out = [`# cni-shim compare`, "", ...heading(report).slice(1).map((l) => `- ${mdEscape(l)}`), `- image: ${mdEscape(report.image)}`, `- created: ${report.createdAt}`, ""];
  out.push("| | Row | " + report.columns.map((c) => mdEscape(c.title)).join(" | ") + " |");
  out.push("|---|---|---|---|---|");
  for (const section of SECTIONS) {
    const rows = report.rows.filter((r) => r.section === section);
    if (!rows.length) continue;
    out.push(`| | **${mdEscape(SECTION_TITLES[section])}** | | | |`);
    for (const r of rows) out.push(`| ${mdMarker(r)} | ${mdEscape(r.label)} | ${r.values.map(mdCell).join(" | ")} |`);
  }
  out.push("", "P: parity row (cni-shim and attach must agree); ≠: columns differ; ✗: parity broken.", "");
  out.push("## Columns", "");
  for (const c of report.columns) out.push(`- **${mdEscape(c.title)}**: ${mdEscape(c.how)}`);
  if (report.notes.length) {
    out.push("", "## Why they differ", "");
    for (const n of report.notes) out.push(`- ${mdEscape(n)}`);
  }
  out.push("", "## Parity", "", mdEscape(parityLine(report)), "");
  return out.join("\n");
}

// ---- HTML --------------------------------------------------------------------------------------

const h = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export function renderHtml(report: Report): string {
  const head = heading(report);
  const rows: string[] = [];
  for (const section of SECTIONS) {
    const list = report.rows.filter((r) => r.section === section);
    if (!list.length) continue;
    rows.push(`<tr class="section"><th colspan="5">${h(SECTION_TITLES[section])}</th></tr>`);
    for (const r of list) {
      const cls = ["row", r.parity ? "parity" : "", r.differs ? "differs" : "", r.parityOk ? "" : "parity-fail"].filter(Boolean).join(" ");
      const cells = r.values.map((v) => (v === null ? `<td class="na">${EMPTY}</td>` : `<td>${h(v)}</td>`)).join("");
      const title = r.note ? ` title="${h(r.note)}"` : "";
      rows.push(`<tr class="${cls}" data-key="${h(r.key)}"${title}><td class="mark">${h(mdMarker(r))}</td><th scope="row">${h(r.label)}</th>${cells}</tr>`);
    }
  }
  const notes = report.notes.length ? `<h2>Why they differ</h2>\n<ul class="notes">\n${report.notes.map((n) => `<li>${h(n)}</li>`).join("\n")}\n</ul>` : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cni-shim compare: ${h(report.conflist.name)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; text-align: left; }
td { font-family: ui-monospace, monospace; white-space: pre-wrap; }
tr.section th { background: #eef; font-size: 14px; }
tr.differs td:not(.mark) { background: #fff7e0; }
tr.parity-fail td, tr.parity-fail th { background: #fdd; }
td.mark { text-align: center; font-family: system-ui, sans-serif; white-space: nowrap; }
td.na { color: #999; }
.ok { color: #070; } .fail { color: #b00; font-weight: bold; }
</style>
</head>
<body>
<h1>cni-shim compare</h1>
<ul class="meta">
${[...head.slice(1), `image: ${report.image}`, `created: ${report.createdAt}`].map((l) => `<li>${h(l)}</li>`).join("\n")}
</ul>
<p id="parity" class="${report.parity.ok ? "ok" : "fail"}">${h(parityLine(report))}</p>
<table id="compare">
<thead><tr><th></th><th>Row</th>${report.columns.map((c) => `<th title="${h(c.how)}">${h(c.title)}</th>`).join("")}</tr></thead>
<tbody>
${rows.join("\n")}
</tbody>
</table>
<p>P: parity row (cni-shim and attach must agree); ≠: columns differ; ✗: parity broken. Hover a row for its note.</p>
${notes}
<h2>Columns</h2>
<ul>
${report.columns.map((c) => `<li><b>${h(c.title)}</b>: ${h(c.how)}</li>`).join("\n")}
</ul>
</body>
</html>
`;
}
