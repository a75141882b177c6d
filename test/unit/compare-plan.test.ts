// compare's choices: a free subnet, the named conflist's range and bridge, list fingerprints.
import { describe, expect, it } from "vitest";
import { confListFromObject } from "../../src/cni/config.js";
import { bridgeOf, columnPorts, listFingerprint, namedPlan, overlaps, pickFreeSubnet, subnetsInUse } from "../../src/compare/plan.js";

const list = (ipam: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  confListFromObject({ cniVersion: "1.0.0", name: "k8s-pod-network", plugins: [{ type: "bridge", ...extra, ipam: { type: "host-local", ...ipam } }, { type: "portmap" }] }, "/etc/cni/net.d/10-k8s.conflist");

describe("compare plan", () => {
  it("detects overlapping subnets", () => {
    expect(overlaps("10.233.0.0/16", "10.233.5.0/24")).toBe(true);
    expect(overlaps("10.233.5.0/24", "10.233.5.128/25")).toBe(true);
    expect(overlaps("10.233.5.0/24", "10.233.6.0/24")).toBe(false);
    expect(overlaps("10.233.5.7", "10.233.5.0/24")).toBe(true);
    expect(overlaps("fd00::/64", "10.233.5.0/24")).toBe(false);
  });

  it("picks a /24 of 10.233.0.0/16 that no route or network uses", () => {
    expect(pickFreeSubnet([], 7)).toBe("10.233.7.0/24");
    expect(pickFreeSubnet(["10.233.7.0/24", "10.233.8.0/23"], 7)).toBe("10.233.10.0/24");
    expect(pickFreeSubnet(["10.233.255.0/24"], 255)).toBe("10.233.0.0/24");
    expect(() => pickFreeSubnet(["10.0.0.0/8"], 0)).toThrow(/no free \/24/);
  });

  it("counts no null-IPAM network's whole-family pool as used (it would overlap every /24)", () => {
    // As docker network ls reports them: a null-IPAM network (the quick start's kindnet), a
    // network with no IPAM config, a Docker-IPAM network and the default route.
    const networks = [
      { IPAM: { Driver: "null", Config: [{ Subnet: "0.0.0.0/0" }, { Subnet: "::/0" }] } },
      { IPAM: { Driver: "default", Config: [] } },
      { IPAM: { Driver: "default", Config: [{ Subnet: "" }] } },
      {},
      { IPAM: { Driver: "default", Config: [{ Subnet: "10.233.7.0/24", Gateway: "10.233.7.1" }] } },
    ];
    const used = subnetsInUse(["default", "10.244.0.2", "172.17.0.0/16"], networks);
    expect(used).toEqual(["10.244.0.2", "172.17.0.0/16", "10.233.7.0/24"]);
    expect(pickFreeSubnet(used, 7)).toBe("10.233.8.0/24");
    // Without the filter the null-IPAM pool leaves nothing free: the bug this guards.
    expect(() => pickFreeSubnet([...used, "0.0.0.0/0"], 7)).toThrow(/no free \/24/);
  });

  it("takes a named list's host-local range, gateway and bridge", () => {
    expect(namedPlan(list({ ranges: [[{ subnet: "10.244.1.0/24" }]] }, { bridge: "cni0" }))).toEqual({
      mode: "named",
      name: "k8s-pod-network",
      source: "/etc/cni/net.d/10-k8s.conflist",
      subnet: "10.244.1.0/24",
      gateway: "10.244.1.1",
      bridge: "cni0",
    });
    expect(namedPlan(list({ subnet: "10.5.0.0/16", gateway: "10.5.0.254" })).gateway).toBe("10.5.0.254");
    expect(() => namedPlan(list({ ranges: [[{ subnet: "fd00::/64" }]] }))).toThrow(/no IPv4 host-local range/);
    expect(bridgeOf(list({}).conflist)).toBe("cni0");
  });

  it("fingerprints a list by content, not by key order", () => {
    expect(listFingerprint({ a: 1, b: [{ c: 2, d: 3 }] })).toBe(listFingerprint({ b: [{ d: 3, c: 2 }], a: 1 }));
    expect(listFingerprint({ a: 1 })).not.toBe(listFingerprint({ a: 2 }));
  });

  it("publishes the columns on three consecutive host ports", () => {
    expect(columnPorts(18080)).toEqual([18080, 18081, 18082]);
  });
});
