// iproute2's JSON as cni-shim reads it (src/host/ip-json.ts): real output passes with the fields
// kept, unexpected output is an error naming the command and the field.
import { describe, expect, it } from "vitest";
import { BridgeVlans, IpBatchEntries, IpLinks, IpRoutes, IpRules, TcQdiscs } from "../../src/host/ip-json.js";
import { parseToolJson } from "../../src/util/zod.js";

// `ip -j -d addr show` (iproute2 6.1) on a host with a bridge and one of its veth ports, cut
// down to a few of the fields it prints beyond those read.
const ADDR_SHOW = JSON.stringify([
  {
    ifindex: 6,
    ifname: "cs-1bd0be744269",
    flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
    mtu: 1500,
    qdisc: "noqueue",
    operstate: "UP",
    address: "c6:89:96:2b:6e:6e",
    linkinfo: { info_kind: "bridge", info_data: { forward_delay: 1500, stp_state: 0, vlan_filtering: 0, bridge_id: "8000.c6:89:96:2b:6e:6e" } },
    addr_info: [{ family: "inet", local: "172.18.0.1", prefixlen: 16, broadcast: "172.18.255.255", scope: "global", label: "cs-1bd0be744269", valid_life_time: 4294967295 }],
  },
  {
    ifindex: 7,
    link_index: 8,
    ifname: "veth8c6537d6",
    flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
    mtu: 1500,
    master: "cs-1bd0be744269",
    operstate: "UP",
    address: "66:37:af:b0:3c:df",
    link_netnsid: 1,
    linkinfo: { info_kind: "veth", info_slave_kind: "bridge", info_slave_data: { state: "forwarding", hairpin: true, learning: true } },
    addr_info: [{ family: "inet6", local: "fe80::6437:afff:feb0:3cdf", prefixlen: 64, scope: "link", valid_life_time: 4294967295 }],
  },
]);

describe("parseToolJson with iproute2's schemas", () => {
  it("reads `ip -j -d addr show`: the fields cni-shim uses, the rest dropped", () => {
    const [bridge, port] = parseToolJson("ip -j -d addr show", IpLinks, ADDR_SHOW);
    expect(bridge).toMatchObject({ ifname: "cs-1bd0be744269", mtu: 1500, linkinfo: { info_kind: "bridge", info_data: { vlan_filtering: 0 } } });
    expect(bridge!.addr_info).toEqual([{ family: "inet", local: "172.18.0.1", prefixlen: 16, scope: "global" }]);
    expect(port).toMatchObject({ ifindex: 7, link_index: 8, master: "cs-1bd0be744269", operstate: "UP", address: "66:37:af:b0:3c:df", linkinfo: { info_slave_data: { hairpin: true } } });
    expect(port).not.toHaveProperty("link_netnsid");
  });

  it("names the command and the field when the output is not what it reads", () => {
    const renamed = ADDR_SHOW.replace('"ifname":"veth8c6537d6"', '"name":"veth8c6537d6"');
    expect(() => parseToolJson("ip -j -d addr show", IpLinks, renamed)).toThrow(/^ip -j -d addr show: unexpected output: 1\.ifname: Invalid input: expected string, received undefined$/);
    const stringMtu = JSON.stringify([{ ifindex: 1, ifname: "lo", mtu: "65536" }]);
    expect(() => parseToolJson("ip -j link show dev", IpLinks, stringMtu)).toThrow(/^ip -j link show dev: unexpected output: 0\.mtu: .*expected number, received string$/);
    const badAddr = JSON.stringify([{ ifindex: 1, ifname: "lo", mtu: 65536, addr_info: [{ family: "inet", local: "127.0.0.1" }] }]);
    expect(() => parseToolJson("ip -j addr show", IpLinks, badAddr)).toThrow(/unexpected output: 0\.addr_info\.0\.prefixlen: /);
    // An object where a list belongs (older `bridge -j vlan show` printed one, keyed by port).
    expect(() => parseToolJson("bridge -j vlan show", BridgeVlans, '{"veth0":[{"vlan":1}]}')).toThrow(/^bridge -j vlan show: unexpected output: \(top level\): .*expected array/);
  });

  it("no output is an empty list; output that is not JSON says so", () => {
    expect(parseToolJson("ip -j link show master", IpLinks, "")).toEqual([]);
    expect(() => parseToolJson("ip -j link show master", IpLinks, "Device does not exist")).toThrow(/^ip -j link show master: printed no JSON \(.*\): Device does not exist$/);
  });

  it("reads `ip -j route show table all` of both families, with IPv6's pref kept", () => {
    const out = JSON.stringify([
      { dst: "default", gateway: "10.1.0.1", dev: "eth0", flags: [] },
      { dst: "10.1.0.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "10.1.0.5", flags: [] },
      { type: "local", dst: "10.1.0.5", table: "local", dev: "eth0", protocol: "kernel", scope: "host", prefsrc: "10.1.0.5", flags: [] },
      { dst: "fd00::/64", dev: "eth0", protocol: "kernel", metric: 256, flags: [], pref: "medium" },
    ]);
    const routes = parseToolJson("ip -j route show table all", IpRoutes, out);
    expect(routes.map((r) => [r.dst, r.table, r.type, r.pref])).toEqual([
      ["default", undefined, undefined, undefined],
      ["10.1.0.0/24", undefined, undefined, undefined],
      ["10.1.0.5", "local", "local", undefined],
      ["fd00::/64", undefined, undefined, "medium"],
    ]);
    expect(() => parseToolJson("ip -j route show table all", IpRoutes, '[{"dst":"default","metric":"high"}]')).toThrow(/^ip -j route show table all: unexpected output: 0\.metric: /);
  });

  it("reads `ip -j rule show`, `tc -j qdisc show`, `bridge -j vlan show` and the look's batch lists", () => {
    expect(parseToolJson("ip -j -4 rule show", IpRules, '[{"priority":0,"src":"all","table":"local"},{"priority":32765,"src":"10.1.0.5","srclen":32,"table":"100"}]')).toEqual([
      { priority: 0, src: "all", table: "local" },
      { priority: 32765, src: "10.1.0.5", srclen: 32, table: "100" },
    ]);
    expect(() => parseToolJson("ip -j -4 rule show", IpRules, '[{"priority":0,"src":"all","table":254}]')).toThrow(/^ip -j -4 rule show: unexpected output: 0\.table: /);
    expect(parseToolJson("tc -j qdisc show", TcQdiscs, '[{"kind":"tbf","handle":"1:","root":true,"refcnt":2,"options":{"rate":1000000,"burst":2500}}]')).toEqual([{ kind: "tbf", root: true, options: { rate: 1000000, burst: 2500 } }]);
    expect(() => parseToolJson("tc -j qdisc show", TcQdiscs, '[{"handle":"1:"}]')).toThrow(/^tc -j qdisc show: unexpected output: 0\.kind: /);
    expect(parseToolJson("bridge -j vlan show", BridgeVlans, '[{"ifname":"veth0","vlans":[{"vlan":1,"flags":["PVID","Egress Untagged"]},{"vlan":10,"vlanEnd":12}]}]')).toEqual([
      { vlans: [{ vlan: 1, flags: ["PVID", "Egress Untagged"] }, { vlan: 10, vlanEnd: 12 }] },
    ]);
    expect(() => parseToolJson("bridge -j vlan show", BridgeVlans, '[{"ifname":"veth0","vlans":[{"vlan":"1"}]}]')).toThrow(/^bridge -j vlan show: unexpected output: 0\.vlans\.0\.vlan: /);
    expect(parseToolJson("ip -j -batch", IpBatchEntries, '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"]},{"dst":"default","table":"100"}]')).toEqual([{ ifname: "lo" }, { table: "100" }]);
    expect(() => parseToolJson("ip -j -batch, list 2", IpBatchEntries, '[{"ifname":7}]')).toThrow(/^ip -j -batch, list 2: unexpected output: 0\.ifname: /);
  });
});
