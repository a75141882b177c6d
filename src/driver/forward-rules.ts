// Which forwarding cni-shim accepts for which network (pure). dockerd sets the FORWARD policy to
// DROP; Docker's bridge driver accepts its own networks' traffic, and on a cluster node flannel,
// kube-proxy or the firewall plugin do. A chain without the firewall plugin (kindnet's ptp +
// host-local + portmap) has nothing that does here, so cni-shim accepts its subnets the way
// Docker does for its networks (host/forward-chain-plan.ts has the chain).
import { ipamPlugin } from "../cni/host-local.js";
import { isWholeFamily, parseCidr, subnetOf } from "../util/ip.js";
import type { AcceptRule } from "../host/forward-chain-plan.js";
import type { NetworkRecord } from "./state.js";
import { hostLocalRanges } from "../cni/host-local.js";

export type ForwardNeed =
  /** Accept forwarding from and to these subnets (internal: only within each). */
  | { kind: "accept"; subnets: string[]; internal: boolean; because: string }
  /** The chain accepts its own traffic. */
  | { kind: "none"; why: string }
  /** It would need it, but no subnet can be known. */
  | { kind: "unknown"; why: string };

/**
 * The subnets of a network: Docker's IPAM pools where they are real; on a null-IPAM network (the
 * chain's IPAM picks the addresses, and the record keeps no pool, or only the null IPAM's
 * 0.0.0.0/0 and ::/0), the chain's host-local range subnets of each family without a real pool.
 */
export function networkSubnets(net: NetworkRecord): string[] {
  const nullIpam = net.addresses === "cni" || isWholeFamily(net.ipv4?.pool) || isWholeFamily(net.ipv6?.pool);
  const out: string[] = [];
  for (const family of [4, 6] as const) {
    const pool = (family === 4 ? net.ipv4 : net.ipv6)?.pool;
    if (pool && !isWholeFamily(pool)) {
      const s = subnetOf(pool);
      if (s) out.push(s);
    } else if (nullIpam) {
      for (const r of hostLocalRanges(net.conflist) ?? []) if (parseCidr(r.subnet)?.family === family && !out.includes(r.subnet)) out.push(r.subnet);
    }
  }
  return out;
}

export function forwardNeed(net: NetworkRecord): ForwardNeed {
  if (net.conflist.plugins.some((p) => p.type === "firewall")) return { kind: "none", why: "its chain has the firewall plugin, which accepts its containers' forwarding" };
  const subnets = networkSubnets(net);
  if (!subnets.length) {
    const ipam = ipamPlugin(net.conflist)?.ipam?.type ?? "none";
    return { kind: "unknown", why: `its subnet cannot be known: Docker's IPAM gave no pool and the chain's IPAM (${ipam}) has no host-local range to read it from; accept its forwarding yourself (iptables -I DOCKER-USER -s SUBNET -j ACCEPT, and -d)` };
  }
  return { kind: "accept", subnets, internal: net.internal, because: "its chain has no firewall plugin, so nothing else accepts its containers' forwarding under dockerd's FORWARD policy DROP" };
}

/** The ACCEPT rules of one network, per family. */
export function acceptRules(networkId: string, need: ForwardNeed): Record<4 | 6, AcceptRule[]> {
  const out: Record<4 | 6, AcceptRule[]> = { 4: [], 6: [] };
  if (need.kind !== "accept") return out;
  for (const subnet of need.subnets) {
    const family = parseCidr(subnet)?.family;
    if (!family) continue;
    if (need.internal) out[family].push({ network: networkId, source: subnet, destination: subnet });
    else out[family].push({ network: networkId, source: subnet }, { network: networkId, destination: subnet });
  }
  return out;
}
