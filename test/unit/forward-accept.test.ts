import { afterEach, describe, expect, it, vi } from "vitest";
import { planForwardChain, ruleSpec, type AcceptRule } from "../../src/host/forward-chain-plan.js";
import { acceptRules, forwardNeed, networkSubnets } from "../../src/driver/forward-rules.js";
import { ForwardAccept, forwardOwner, type ApplyForwardChain } from "../../src/driver/forward-accept.js";
import type { NetworkRecord } from "../../src/driver/state.js";

const DOCKER_26 = `-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-ISOLATION-STAGE-1
-N DOCKER-USER
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-USER -j RETURN`;

const OWNER = "0123456789ab";
const NET = "a".repeat(64);
const rules = (network: string, subnet: string): AcceptRule[] => [
  { network, source: subnet },
  { network, destination: subnet },
];
const commentOf = (network: string, owner = OWNER) => `"cni-shim network ${network} owner ${owner}"`;
const lines = (script?: string) => (script ?? "").split("\n").filter((l) => l.startsWith("-"));

describe("forward chain plan (iptables -S in, iptables-restore out)", () => {
  it("makes the chain, its rules and the jump, in DOCKER-USER before Docker's RETURN", () => {
    const plan = planForwardChain(DOCKER_26, OWNER, rules(NET, "10.244.0.0/24"));
    expect(lines(plan.script)).toEqual([
      "-N CNI-SHIM-FORWARD",
      `-A CNI-SHIM-FORWARD -s 10.244.0.0/24 -m comment --comment ${commentOf(NET)} -j ACCEPT`,
      `-A CNI-SHIM-FORWARD -d 10.244.0.0/24 -m comment --comment ${commentOf(NET)} -j ACCEPT`,
      "-I DOCKER-USER 1 -j CNI-SHIM-FORWARD",
    ]);
    expect(plan.script).toMatch(/^\*filter\n[\s\S]*\nCOMMIT\n$/);
    expect([...plan.added]).toEqual([NET]);
    expect(plan.policy).toBe("DROP");
  });

  it("jumps from FORWARD when there is no DOCKER-USER, and appends to a DOCKER-USER without RETURN (after the user's rules)", () => {
    expect(lines(planForwardChain("-P FORWARD DROP", OWNER, rules(NET, "10.1.0.0/24")).script)).toContain("-A FORWARD -j CNI-SHIM-FORWARD");
    const user = "-P FORWARD DROP\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -s 192.0.2.0/24 -j DROP";
    expect(lines(planForwardChain(user, OWNER, rules(NET, "10.1.0.0/24")).script)).toContain("-A DOCKER-USER -j CNI-SHIM-FORWARD");
  });

  const listed = (extra: string[]) => [DOCKER_26.replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j CNI-SHIM-FORWARD\n-A DOCKER-USER -j RETURN"), "-N CNI-SHIM-FORWARD", ...extra].join("\n");
  const ruleLine = (network: string, subnet: string, owner = OWNER) => rules(network, subnet).map((r) => `-A CNI-SHIM-FORWARD ${ruleSpec(owner, r)}`);

  it("does nothing when the table is as wanted (idempotent)", () => {
    const plan = planForwardChain(listed(ruleLine(NET, "10.244.0.0/24")), OWNER, rules(NET, "10.244.0.0/24"));
    expect(plan.script).toBeUndefined();
    expect(plan.added.size + plan.removed.size).toBe(0);
  });

  it("puts back a jump lost to a flushed DOCKER-USER, and moves one left in FORWARD there", () => {
    const flushed = listed(ruleLine(NET, "10.244.0.0/24")).replace("-A DOCKER-USER -j CNI-SHIM-FORWARD\n", "");
    expect(lines(planForwardChain(flushed, OWNER, rules(NET, "10.244.0.0/24")).script)).toEqual(["-I DOCKER-USER 1 -j CNI-SHIM-FORWARD"]);
    const inForward = flushed + "\n-A FORWARD -j CNI-SHIM-FORWARD";
    expect(lines(planForwardChain(inForward, OWNER, rules(NET, "10.244.0.0/24")).script)).toEqual(["-D FORWARD -j CNI-SHIM-FORWARD", "-I DOCKER-USER 1 -j CNI-SHIM-FORWARD"]);
  });

  it("removes its own rules of networks it no longer has and keeps other owners' (and the chain for them)", () => {
    const other = "b".repeat(64);
    const gone = "c".repeat(64);
    const table = listed([...ruleLine(NET, "10.244.0.0/24"), ...ruleLine(gone, "10.9.0.0/24"), ...ruleLine(other, "10.8.0.0/24", "ffffffffffff")]);
    const plan = planForwardChain(table, OWNER, rules(NET, "10.244.0.0/24"));
    expect(lines(plan.script)).toEqual(ruleLine(gone, "10.9.0.0/24").map((l) => l.replace("-A ", "-D ")));
    expect([...plan.removed]).toEqual([gone]);
    const none = planForwardChain(table, OWNER, []);
    expect(lines(none.script)).toHaveLength(4);
    expect(none.script).not.toContain("-X");
  });

  it("removes the chain and every jump to it when no rule is left", () => {
    const plan = planForwardChain(listed(ruleLine(NET, "10.244.0.0/24")) + "\n-A FORWARD -i eth9 -j CNI-SHIM-FORWARD", OWNER, []);
    expect(lines(plan.script)).toEqual([...ruleLine(NET, "10.244.0.0/24").map((l) => l.replace("-A ", "-D ")), "-D DOCKER-USER -j CNI-SHIM-FORWARD", "-D FORWARD -i eth9 -j CNI-SHIM-FORWARD", "-X CNI-SHIM-FORWARD"]);
    expect(planForwardChain(DOCKER_26, OWNER, []).script).toBeUndefined();
  });

  it("removes a duplicate of a wanted rule", () => {
    const plan = planForwardChain(listed([...ruleLine(NET, "10.244.0.0/24"), ruleLine(NET, "10.244.0.0/24")[0]!]), OWNER, rules(NET, "10.244.0.0/24"));
    expect(lines(plan.script)).toEqual([ruleLine(NET, "10.244.0.0/24")[0]!.replace("-A ", "-D ")]);
  });
});

const record = (over: Partial<NetworkRecord> & { plugins?: unknown[] }): NetworkRecord => {
  const { plugins, ...rest } = over;
  return {
    id: NET,
    mode: "named",
    conflist: { cniVersion: "1.0.0", name: "kindnet", plugins: (plugins ?? [{ type: "ptp", ipam: { type: "host-local", ranges: [[{ subnet: "10.244.0.0/24" }], [{ subnet: "fd00:10:244::/64" }]] } }, { type: "portmap" }]) as NetworkRecord["conflist"]["plugins"] },
    source: "/etc/cni/net.d/10-kindnet.conflist",
    ipv4: { pool: "10.244.0.0/24", gateway: "10.244.0.1" },
    internal: false,
    createdAt: "2024-01-01T00:00:00Z",
    ...rest,
  };
};

describe("which forwarding a network needs", () => {
  it("Docker's pools when real", () => {
    expect(networkSubnets(record({}))).toEqual(["10.244.0.0/24"]);
    expect(networkSubnets(record({ ipv6: { pool: "fd00:10:244:0::/64" } }))).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
  });

  it("the chain's host-local ranges with Docker's null IPAM (pool 0.0.0.0/0)", () => {
    expect(networkSubnets(record({ ipv4: { pool: "0.0.0.0/0" } }))).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    // As CreateNetwork records a null-IPAM network: no pool at all, the chain picks.
    expect(networkSubnets(record({ ipv4: undefined, addresses: "cni" }))).toEqual(["10.244.0.0/24", "fd00:10:244::/64"]);
    expect(networkSubnets(record({ ipv4: undefined, addresses: "docker" }))).toEqual([]);
  });

  it("none for a chain with the firewall plugin; unknown, saying why, when no subnet can be known (dhcp)", () => {
    expect(forwardNeed(record({ plugins: [{ type: "ptp" }, { type: "firewall" }] }))).toMatchObject({ kind: "none" });
    const dhcp = forwardNeed(record({ ipv4: undefined, addresses: "cni", plugins: [{ type: "macvlan", ipam: { type: "dhcp" } }] }));
    expect(dhcp).toMatchObject({ kind: "unknown" });
    expect(dhcp.kind === "unknown" && dhcp.why).toContain("(dhcp)");
  });

  it("from and to each subnet per family; within it only for an internal network", () => {
    const r = acceptRules(NET, forwardNeed(record({ ipv6: { pool: "fd00:10:244::/64" } })));
    expect(r[4]).toEqual(rules(NET, "10.244.0.0/24"));
    expect(r[6]).toEqual(rules(NET, "fd00:10:244::/64"));
    expect(acceptRules(NET, forwardNeed(record({ internal: true })))[4]).toEqual([{ network: NET, source: "10.244.0.0/24", destination: "10.244.0.0/24" }]);
  });
});

describe("ForwardAccept", () => {
  afterEach(() => vi.restoreAllMocks());

  function harness(enabled: boolean, networks: NetworkRecord[]) {
    const calls: Array<{ family: 4 | 6; wanted: AcceptRule[] }> = [];
    const apply: ApplyForwardChain = (family, _owner, wanted) => {
      calls.push({ family, wanted });
      return Promise.resolve({ added: new Set(family === 4 ? wanted.map((r) => r.network) : []), removed: new Set<string>(), policy: "DROP" });
    };
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const fa = new ForwardAccept({ enabled, owner: OWNER, networks: () => Promise.resolve(networks), apply });
    const logged = () => stderr.mock.calls.map((c) => String(c[0]));
    return { fa, calls, logged };
  }

  it("wants the rules of each network needing them, both families, and logs why it accepted", async () => {
    const h = harness(true, [record({}), record({ id: "f".repeat(64), plugins: [{ type: "bridge" }, { type: "firewall" }] })]);
    await h.fa.converge();
    expect(h.calls).toEqual([
      { family: 4, wanted: rules(NET, "10.244.0.0/24") },
      { family: 6, wanted: [] },
    ]);
    expect(h.logged().filter((l) => l.includes("forwarding accepted for 10.244.0.0/24 because its chain has no firewall plugin"))).toHaveLength(1);
  });

  it("wants nothing when off (so its earlier rules go), and says so once", async () => {
    const h = harness(false, [record({})]);
    await h.fa.converge();
    await h.fa.converge();
    expect(h.calls.every((c) => c.wanted.length === 0)).toBe(true);
    expect(h.logged().filter((l) => l.includes("--accept-forwarding false"))).toHaveLength(1);
  });

  it("logs a network whose subnet cannot be known once", async () => {
    const h = harness(true, [record({ ipv4: { pool: "0.0.0.0/0" }, plugins: [{ type: "macvlan", ipam: { type: "dhcp" } }] })]);
    await h.fa.converge();
    await h.fa.converge();
    expect(h.logged().filter((l) => l.includes("forwarding not accepted for network"))).toHaveLength(1);
  });

  it("tags each state dir's rules with an owner of its own", () => {
    expect(forwardOwner("/var/lib/cni-shim")).toMatch(/^[0-9a-f]{12}$/);
    expect(forwardOwner("/var/lib/cni-shim")).toBe(forwardOwner("/var/lib/cni-shim/"));
    expect(forwardOwner("/var/lib/cni-shim")).not.toBe(forwardOwner("/tmp/state"));
  });
});
