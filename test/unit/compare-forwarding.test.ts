// compare's forwarding rows: route tables compared as what they do, not how they are written.
import { describe, expect, it } from "vitest";
import { boundaries, forwarding } from "../../src/compare/forwarding.js";
import type { Route } from "../../src/compare/model.js";
import { buildRows } from "../../src/compare/rows.js";
import { realFacts } from "../helpers/compare-fixtures.js";

// ptp applied by libcni (kubelet way) and the same chain through cni-shim on Docker 20.10.
const libcniPtp: Route[] = [
  { dst: "default", gateway: "10.244.7.1", dev: "eth0" },
  { dst: "10.244.7.0/24", gateway: "10.244.7.1", dev: "eth0", prefsrc: "10.244.7.5" },
  { dst: "10.244.7.1", dev: "eth0", scope: "link", prefsrc: "10.244.7.5" },
];
const shimPtp: Route[] = [
  { dst: "default", gateway: "10.244.7.1", dev: "eth0" },
  { dst: "10.244.7.0/25", gateway: "10.244.7.1", dev: "eth0" },
  { dst: "10.244.7.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "10.244.7.6" },
  { dst: "10.244.7.1", dev: "eth0", scope: "link" },
  { dst: "10.244.7.128/25", gateway: "10.244.7.1", dev: "eth0" },
];
// What cni-shim gave before Join replayed the routes: peers on-link on a point-to-point link.
const shimPtpBefore: Route[] = [
  { dst: "default", gateway: "10.244.7.1", dev: "eth0" },
  { dst: "10.244.7.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "10.244.7.6" },
];

describe("forwarding", () => {
  it("ptp: libcni's table and cni-shim's (connected route + two halves) forward alike", () => {
    const points = boundaries([libcniPtp, shimPtp], 4);
    const a = forwarding([libcniPtp], 4, points);
    expect(a).toEqual(["0.0.0.0 - 10.244.7.0 via 10.244.7.1 dev eth0", "10.244.7.1/32 dev eth0 (on-link)", "10.244.7.2 - 255.255.255.255 via 10.244.7.1 dev eth0"]);
    expect(forwarding([shimPtp], 4, points)).toEqual(a);
  });

  it("tells the old on-link peers apart", () => {
    const points = boundaries([libcniPtp, shimPtpBefore], 4);
    expect(forwarding([shimPtpBefore], 4, points)).not.toEqual(forwarding([libcniPtp], 4, points));
    expect(forwarding([shimPtpBefore], 4, points)).toContain("10.244.7.0/24 dev eth0 (on-link)");
  });

  it("tables are consulted in rule order; a miss falls through to the next", () => {
    const sbrTable: Route[] = [{ dst: "default", gateway: "10.3.0.1", dev: "eth0" }, { dst: "10.3.0.0/24", dev: "eth0", scope: "link" }];
    const points = boundaries([sbrTable, []], 4);
    expect(forwarding([sbrTable, []], 4, points)).toEqual(forwarding([[], sbrTable], 4, points));
    expect(forwarding([[], []], 4, points)).toEqual([]);
  });

  it("no route: unreachable ranges are shown", () => {
    const t: Route[] = [{ dst: "10.0.0.0/8", dev: "eth0", scope: "link" }];
    expect(forwarding([t], 4, boundaries([t], 4))).toEqual(["0.0.0.0 - 9.255.255.255 unreachable", "10.0.0.0/8 dev eth0 (on-link)", "11.0.0.0 - 255.255.255.255 unreachable"]);
  });

  it("IPv6: link-local and multicast do not count; a lower metric wins a tie", () => {
    const t: Route[] = [
      { dst: "fe80::/64", dev: "eth0", metric: 256 },
      { dst: "fd00:9::/64", dev: "eth0", metric: 256 },
      { dst: "default", gateway: "fd00:9::1", dev: "eth0", metric: 1024 },
      { dst: "default", gateway: "fd00:9::2", dev: "eth0", metric: 100 },
    ];
    expect(forwarding([t], 6, boundaries([t], 6))).toEqual([
      ":: - fd00:8:ffff:ffff:ffff:ffff:ffff:ffff via fd00:9::2 dev eth0",
      "fd00:9::/64 dev eth0 (on-link)",
      "fd00:9:0:1:: - ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff via fd00:9::2 dev eth0",
    ]);
  });
});

describe("forwarding rows in the report", () => {
  it("a ptp-style table in the cni-shim column keeps parity on forwarding and explains the text", () => {
    const cols = realFacts();
    cols[1].inside.routes4 = shimPtp;
    cols[2].inside.routes4 = libcniPtp;
    const rows = buildRows(cols);
    expect(rows.find((r) => r.key === "inside.routes")).toMatchObject({ parity: true, parityOk: true });
    const text = rows.find((r) => r.key === "inside.routes.table")!;
    expect(text).toMatchObject({ parity: false, differs: true });
    expect(text.note).toMatch(/connected route .* two halves/);
  });

  it("the old on-link ptp table breaks parity", () => {
    const cols = realFacts();
    cols[1].inside.routes4 = shimPtpBefore;
    cols[2].inside.routes4 = libcniPtp;
    expect(buildRows(cols).find((r) => r.key === "inside.routes")).toMatchObject({ parity: true, parityOk: false });
  });
});
