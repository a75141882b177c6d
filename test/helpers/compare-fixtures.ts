// Facts of a real `cni-shim compare` run (embedded default, Docker 20.10, Debian CNI plugins
// 1.1.1), for the pure parts of compare: rows, rules, renderers.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ColumnFacts, type Report } from "../../src/compare/model.js";
import { buildRows, COLUMN_TITLES, notesOf, parityOf, type Columns } from "../../src/compare/rows.js";
import { COLUMN_IDS } from "../../src/compare/model.js";

const FILE = fileURLToPath(new URL("../fixtures/compare/facts-embedded-default.json", import.meta.url));

/** A fresh deep copy each call, so tests may change it. */
export function realFacts(): [ColumnFacts, ColumnFacts, ColumnFacts] {
  const raw = JSON.parse(readFileSync(FILE, "utf8")) as unknown[];
  return raw.map((f) => ColumnFacts.parse(f)) as [ColumnFacts, ColumnFacts, ColumnFacts];
}

export function reportOf(cols: Columns): Report {
  const rows = buildRows(cols);
  return {
    tool: "cni-shim compare",
    formatVersion: 1,
    createdAt: "2025-01-01T00:00:00.000Z",
    image: "cni-shim-busybox:latest",
    conflist: { name: cols[1].network.name, source: "embedded default", mode: "embedded-default", subnet: cols[1].network.subnet, gateway: cols[1].network.gateway, bridge: cols[1].network.bridge },
    driver: { name: "cni-shim-compare-test", inProcess: true },
    columns: COLUMN_IDS.map((id, i) => ({ id, ...COLUMN_TITLES[id], facts: cols[i]! })) as Report["columns"],
    rows,
    parity: parityOf(rows),
    notes: notesOf(rows),
  };
}
