import { describe, expect, it } from "vitest";
import { nextIfName, parseLook } from "../../src/host/sandbox.js";

// `ip -j -batch -` with LOOK_BATCH (route show default; link show; route show default table all),
// as iproute2 6.1 printed it in a namespace with a veth pair (d0, d1), IPv4 and IPv6 default
// routes in main, both again in table 100 and an unreachable default in table 200.
const FULL = [
  '[{"dst":"default","gateway":"10.9.9.1","dev":"d0","flags":[]}]',
  '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"]},{"ifindex":2,"link":"d0","ifname":"d1","flags":[]},{"ifindex":3,"link":"d1","ifname":"d0","flags":[]}]',
  '[{"dst":"default","gateway":"10.9.9.1","dev":"d0","table":"100","flags":[]},{"type":"unreachable","dst":"default","table":"200","flags":[]},{"dst":"default","gateway":"10.9.9.1","dev":"d0","flags":[]},{"dst":"default","gateway":"fd00::1","dev":"d0","table":"100","metric":1024,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00::1","dev":"d0","metric":1024,"flags":[],"pref":"medium"}]',
  "",
].join("\n");

describe("lookInside's parse of ip -j -batch", () => {
  it("finds the links and the main table's default routes of both families", () => {
    expect(parseLook(FULL)).toEqual({ links: ["lo", "d1", "d0"], defaultRoutes: [4, 6] });
  });

  it("a fresh namespace: lo only, no default route", () => {
    const out = '[]\n[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"]}]\n[]\n';
    expect(parseLook(out)).toEqual({ links: ["lo"], defaultRoutes: [] });
    expect(nextIfName(parseLook(out).links)).toBe("eth0");
  });

  it("default routes of other tables (sbr, vrf) are not the main table's", () => {
    const out = '[]\n[{"ifname":"lo"},{"ifname":"eth0"}]\n[{"dst":"default","gateway":"10.1.0.1","dev":"eth0","table":"100"},{"dst":"default","gateway":"fd00::1","dev":"eth0","table":"100","pref":"medium"}]\n';
    expect(parseLook(out)).toEqual({ links: ["lo", "eth0"], defaultRoutes: [] });
    expect(nextIfName(parseLook(out).links)).toBe("eth1");
  });

  it("an IPv6 default route only", () => {
    const out = '[]\n[{"ifname":"lo"},{"ifname":"eth0"}]\n[{"dst":"default","gateway":"fd00::1","dev":"eth0","metric":1024,"pref":"medium"}]\n';
    expect(parseLook(out).defaultRoutes).toEqual([6]);
  });

  it("output that is not three JSON lists is an error, not an empty namespace", () => {
    expect(() => parseLook("")).toThrow(/not 3/);
    expect(() => parseLook("1: lo: <LOOPBACK>")).toThrow(/no JSON/);
    // Each list is checked, and the error says which one and which field.
    expect(() => parseLook('[]\n[{"ifname":7}]\n[]\n')).toThrow(/^ip -j -batch, list 2: unexpected output: 0\.ifname: /);
    expect(() => parseLook('[]\n{"ifname":"lo"}\n[]\n')).toThrow(/^ip -j -batch, list 2: unexpected output: \(top level\): .*expected array/);
  });
});
