// compare's rows: which differ, which are parity rows, when parity is broken, and why (pure).
import { describe, expect, it } from "vitest";
import { buildRows, finishRow, inspectMatches, notesOf, parityOf } from "../../src/compare/rows.js";
import { realFacts } from "../helpers/compare-fixtures.js";

const row = (rows: ReturnType<typeof buildRows>, key: string) => {
  const r = rows.find((x) => x.key === key);
  if (!r) throw new Error(`no row ${key}`);
  return r;
};

describe("compare rows", () => {
  it("marks a row as differing when any column differs, and checks parity on columns 2 and 3 only", () => {
    expect(finishRow({ key: "k", section: "inside", label: "k", parity: true, values: ["a", "a", "a"] })).toMatchObject({ differs: false, parityOk: true });
    expect(finishRow({ key: "k", section: "inside", label: "k", parity: true, values: ["x", "a", "a"] })).toMatchObject({ differs: true, parityOk: true });
    expect(finishRow({ key: "k", section: "inside", label: "k", parity: true, values: ["a", "a", "b"] })).toMatchObject({ differs: true, parityOk: false });
    expect(finishRow({ key: "k", section: "inside", label: "k", parity: false, values: ["a", "a", "b"] })).toMatchObject({ differs: true, parityOk: true });
    expect(finishRow({ key: "k", section: "inside", label: "k", parity: true, values: [null, "a", "a"] })).toMatchObject({ differs: true, parityOk: true });
  });

  it("on a real run: every parity row agrees, and what differs by design is marked and explained", () => {
    const rows = buildRows(realFacts());
    const parity = parityOf(rows);
    expect(parity.ok).toBe(true);
    expect(parity.checked).toBeGreaterThan(15);
    for (const key of ["inside.eth0.mtu", "inside.eth0.subnet", "inside.route.default", "inside.routes", "host.bridge", "host.hairpin", "host.nat.masquerade", "host.nat.publish", "host.filter", "host.served", "reach.peerPing", "reach.hostHttp", "host.cni"]) {
      expect(row(rows, key).parity, key).toBe(true);
    }
    expect(row(rows, "inside.eth0.addrs")).toMatchObject({ parity: false, differs: true });
    expect(row(rows, "inside.eth0.mtu")).toMatchObject({ differs: false, values: ["1500", "1500", "1500"] });
    expect(row(rows, "host.hairpin")).toMatchObject({ differs: true, parityOk: true, values: ["off", "on", "on"] });
    expect(row(rows, "docker.ports").values[0]).toContain("80/tcp -> 0.0.0.0:");
    expect(row(rows, "docker.ports").values.slice(1)).toEqual(["(none)", "(none)"]);
    expect(row(rows, "docker.ports").note).toMatch(/docker port/);
    expect(row(rows, "host.served").values[0]).toContain("docker-proxy");
    expect(row(rows, "host.served").note).toMatch(/docker-proxy/);
    expect(row(rows, "docker.ip").note).toMatch(/--network none/);
    expect(row(rows, "docker.matches").values).toEqual(["yes", "yes", "n/a: Docker records no address"]);
    const notes = notesOf(rows);
    expect(notes.some((n) => n.startsWith("Ports (docker port):"))).toBe(true);
    expect(notes.some((n) => n.startsWith("NAT: masquerade:"))).toBe(true);
    expect(notes.some((n) => /^eth0 addresses/.test(n))).toBe(true);
  });

  it("reports a parity failure when the attach column's network differs from cni-shim's", () => {
    const cols = realFacts();
    cols[2].inside.links.find((l) => l.name === "eth0")!.mtu = 1400;
    cols[2].host.veth!.hairpin = false;
    cols[2].reach.hostHttp = { ok: false, detail: "GET http://127.0.0.1:1/: ECONNREFUSED" };
    const rows = buildRows(cols);
    const parity = parityOf(rows);
    expect(parity.ok).toBe(false);
    expect(parity.failures.map((f) => f.key).sort()).toEqual(["host.hairpin", "inside.eth0.mtu", "reach.hostHttp"]);
    expect(parity.failures.find((f) => f.key === "inside.eth0.mtu")).toMatchObject({ cnishim: "1500", attach: "1400" });
    expect(row(rows, "inside.eth0.mtu").note).toMatch(/^PARITY/);
    expect(row(rows, "reach.hostHttp").note).toContain("ECONNREFUSED");
  });

  it("says when docker inspect does not match the namespace", () => {
    const cols = realFacts();
    expect(inspectMatches(cols[1])).toBe("yes");
    cols[1].docker.mac = "02:00:00:00:00:01";
    cols[1].docker.ip = "10.9.9.9";
    expect(inspectMatches(cols[1])).toMatch(/^no: address 10\.9\.9\.9\/24 not on eth0; MAC 02:00:00:00:00:01 vs /);
  });
});
