// Picking one container's iptables rules out of iptables-save and normalising them (compare).
import { describe, expect, it } from "vitest";
import { formatRule, groupRules, normaliseRule, parseIptablesSave, parseRuleLine, rulesFor, servedBy, type RuleContext } from "../../src/compare/rules.js";
import { realFacts } from "../helpers/compare-fixtures.js";

const [bridgeCol, shimCol, attachCol] = realFacts();

/** An iptables-save as the host had it: the three columns' rules, plus unrelated ones. */
function hostSave(): string {
  const byTable = new Map<string, string[]>();
  for (const line of [...bridgeCol.host.rules, ...shimCol.host.rules, ...attachCol.host.rules]) {
    const r = parseRuleLine(line)!;
    byTable.set(r.table, [...(byTable.get(r.table) ?? []), `-A ${r.chain} ${r.spec}`]);
  }
  byTable.get("nat")!.push(
    "-A POSTROUTING -s 10.233.124.21/32 -j CNI-0123456789abcdef01234567",
    "-A CNI-0123456789abcdef01234567 ! -d 224.0.0.0/4 -j MASQUERADE",
    "-A CNI-HOSTPORT-DNAT -p tcp -m multiport --dports 315580 -j CNI-DN-0123456789abcdef01234",
    "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
  );
  return [...byTable].map(([t, lines]) => `*${t}\n:FORWARD ACCEPT [0:0]\n${lines.join("\n")}\nCOMMIT`).join("\n");
}

const ctxOf = (f: typeof shimCol): RuleContext => ({
  ip: f.inside.links.find((l) => l.name === "eth0")!.addrs[0]!.cidr.split("/")[0]!,
  subnet: f.network.subnet,
  gateway: f.network.gateway,
  bridge: f.network.bridge,
  hostPort: f.publish.hostPort,
  cniContainerId: f.cniContainerId,
});

describe("iptables rules of one container", () => {
  const all = parseIptablesSave(hostSave());

  it("parses iptables-save into table, chain, spec and target", () => {
    const r = parseRuleLine('nat: -A POSTROUTING -s 10.0.0.2/32 -m comment --comment "a b" -j CNI-abc')!;
    expect(r).toEqual({ table: "nat", chain: "POSTROUTING", spec: '-s 10.0.0.2/32 -m comment --comment "a b" -j CNI-abc', target: "CNI-abc" });
    expect(formatRule(r)).toBe('nat: -A POSTROUTING -s 10.0.0.2/32 -m comment --comment "a b" -j CNI-abc');
  });

  it("finds each column's own rules, with its per-container chains, and nothing of the others", () => {
    for (const col of [shimCol, attachCol]) {
      const mine = rulesFor(all, ctxOf(col)).map(formatRule);
      expect(new Set(mine)).toEqual(new Set(col.host.rules));
    }
    const shim = rulesFor(all, ctxOf(shimCol)).map(formatRule).join("\n");
    expect(shim).not.toContain("10.233.124.21"); // a neighbour whose address starts the same
    expect(shim).not.toContain("315580");
    expect(shim).not.toContain("CNI-HOSTPORT-MASQ"); // shared chain, not the container's
  });

  it("normalises addresses, ports, ids and hashes so cni-shim and attach compare equal", () => {
    const g2 = groupRules(rulesFor(all, ctxOf(shimCol)), ctxOf(shimCol));
    const g3 = groupRules(rulesFor(all, ctxOf(attachCol)), ctxOf(attachCol));
    expect(g2).toEqual(g3);
    expect(g2.masquerade).toEqual(["nat CNI-<hash> ! -d 224.0.0.0/4 -j MASQUERADE", "nat CNI-<hash> -d <subnet> -j ACCEPT", "nat POSTROUTING -s <ip>/32 -j CNI-<hash>"]);
    expect(g2.publish).toContain("nat CNI-DN-<hash> -p tcp -m tcp --dport <hostPort> -j DNAT --to-destination <ip>:80");
    expect(g2.publish).toContain("nat CNI-HOSTPORT-DNAT -p tcp -m multiport --dports <hostPort> -j CNI-DN-<hash>");
    expect(g2.filter).toEqual(["filter CNI-FORWARD -d <ip>/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "filter CNI-FORWARD -s <ip>/32 -j ACCEPT"]);
  });

  it("keeps Docker's per-network rules for the bridge column", () => {
    const g1 = groupRules(rulesFor(all, ctxOf(bridgeCol)), ctxOf(bridgeCol));
    expect(g1.masquerade).toContain("nat POSTROUTING -s <subnet> ! -o <bridge> -j MASQUERADE");
    expect(g1.publish).toContain("nat DOCKER ! -i <bridge> -p tcp -m tcp --dport <hostPort> -j DNAT --to-destination <ip>:80");
    expect(g1.filter).toContain("filter FORWARD -o <bridge> -j DOCKER");
  });

  it("does not take a longer address or port for the container's", () => {
    const r = parseIptablesSave("*nat\n-A X -s 10.1.0.21/32 -j ACCEPT\n-A X -d 110.1.0.2/32 -j ACCEPT\n-A X -p tcp --dport 8080 -j DNAT --to-destination 10.1.0.3:80\n-A X -s 10.1.0.2/32 -j ACCEPT\nCOMMIT");
    const mine = rulesFor(r, { ip: "10.1.0.2", subnet: "10.1.0.0/24", gateway: "10.1.0.1", hostPort: 80 });
    expect(mine.map((x) => x.spec)).toEqual(["-s 10.1.0.2/32 -j ACCEPT"]);
    expect(normaliseRule(mine[0]!, { ip: "10.1.0.2", subnet: "10.1.0.0/24", gateway: "10.1.0.1", hostPort: 80 })).toBe("nat X -s <ip>/32 -j ACCEPT");
  });

  it("tells DNAT + docker-proxy from portmap's DNAT", () => {
    const rules = (f: typeof shimCol) => f.host.rules.map((l) => parseRuleLine(l)!);
    expect(servedBy(rules(bridgeCol), bridgeCol.host.listeners)).toBe("DNAT (DOCKER) + docker-proxy listening");
    expect(servedBy(rules(shimCol), [])).toBe("DNAT (CNI-DN-<hash>), no proxy process");
    expect(servedBy([], [])).toBe("no DNAT rule, no proxy process");
  });
});
