// The report of a compare run from the facts of its three columns: pure, so the unit tests build
// reports from recorded facts exactly the way a run does.
import { COLUMN_IDS, Report } from "./model.js";
import { buildRows, COLUMN_TITLES, notesOf, parityOf, type Columns } from "./rows.js";

export interface ReportInput {
  createdAt: string;
  image: string;
  conflist: Report["conflist"];
  driver: Report["driver"];
  facts: Columns;
}

export function buildReport(input: ReportInput): Report {
  const rows = buildRows(input.facts, { inSandbox: input.driver.attach === "in-sandbox" });
  return Report.parse({
    tool: "cni-shim compare",
    formatVersion: 1,
    createdAt: input.createdAt,
    image: input.image,
    conflist: input.conflist,
    driver: input.driver,
    columns: COLUMN_IDS.map((id, i) => ({ id, ...COLUMN_TITLES[id], facts: input.facts[i] })),
    rows,
    parity: parityOf(rows),
    notes: notesOf(rows),
  });
}
