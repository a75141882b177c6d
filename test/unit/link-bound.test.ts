// Which chains keep their interface where they made it on the in-sandbox path (a move would drop
// what they set on it), and which can hand it to Docker.
import { describe, expect, it } from "vitest";
import { linkBoundReason } from "../../src/driver/link-bound.js";

const list = (...plugins: Array<Record<string, unknown>>) => ({ cniVersion: "1.0.0", name: "n", plugins: plugins.map((p) => ({ type: "bridge", ...p })) });
const hostLocal = (ranges: string[][]) => ({ type: "host-local", ranges: ranges.map((set) => set.map((subnet) => ({ subnet }))) });

describe("linkBoundReason", () => {
  it("hands over the usual chains: bridge, portmap, firewall, tuning's mac, link properties and namespace-wide sysctls, dual-stack", () => {
    expect(linkBoundReason(list({ ipam: hostLocal([["10.1.0.0/24"], ["fd00::/64"]]) }, { type: "portmap" }, { type: "firewall" }, { type: "tuning", capabilities: { mac: true } }))).toBeUndefined();
    expect(linkBoundReason(list({ type: "tuning", mtu: 1300, promisc: true, sysctl: { "net.core.somaxconn": "1234", "net.ipv4.conf.all.forwarding": "1", "net.ipv6.conf.default.accept_ra": "0" } }))).toBeUndefined();
    expect(linkBoundReason(list({ ipam: hostLocal([["10.1.0.0/24", "10.2.0.0/24"]]) }))).toBeUndefined(); // one set: one address
  });

  it("keeps sbr, vrf, an interface's own sysctls and a second address of one family", () => {
    expect(linkBoundReason(list({}, { type: "sbr" }))).toMatch(/sbr/);
    expect(linkBoundReason(list({}, { type: "vrf", vrfname: "blue" }))).toMatch(/vrf/);
    expect(linkBoundReason(list({ type: "tuning", sysctl: { "net.core.somaxconn": "1", "net.ipv4.conf.eth0.route_localnet": "1" } }))).toMatch(/net\.ipv4\.conf\.eth0\.route_localnet/);
    expect(linkBoundReason(list({ type: "ptp", ipam: hostLocal([["10.1.0.0/24"], ["10.2.0.0/24"]]) }))).toMatch(/second address/);
  });
});
