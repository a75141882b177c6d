// Facts of a real `cni-shim compare` run (embedded default, Docker 20.10, Debian CNI plugins
// 1.1.1), for the pure parts of compare: rows, rules, renderers.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ColumnFacts, type Report } from "../../src/compare/model.js";
import type { Columns } from "../../src/compare/rows.js";
import { buildReport } from "../../src/compare/report.js";

const FILE = fileURLToPath(new URL("../fixtures/compare/facts-embedded-default.json", import.meta.url));

/** A fresh deep copy each call, so tests may change it. */
export function realFacts(): [ColumnFacts, ColumnFacts, ColumnFacts] {
  const raw = JSON.parse(readFileSync(FILE, "utf8")) as unknown[];
  return raw.map((f) => ColumnFacts.parse(f)) as [ColumnFacts, ColumnFacts, ColumnFacts];
}

export function reportOf(cols: Columns): Report {
  return buildReport({
    createdAt: "2025-01-01T00:00:00.000Z",
    image: "cni-shim-busybox:latest",
    conflist: { name: cols[1].network.name, source: "embedded default", mode: "embedded-default", subnet: cols[1].network.subnet, gateway: cols[1].network.gateway, bridge: cols[1].network.bridge },
    driver: { name: "cni-shim-compare-test", inProcess: true },
    facts: cols,
  });
}
