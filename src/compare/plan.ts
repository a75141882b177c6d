// Deciding what compare runs on: which CNI network list and subnet, which host ports. The
// choices are pure functions; the few look-ups of the host they need are at the bottom.
import { createHash } from "node:crypto";
import type Docker from "dockerode";
import type { LoadedConfList } from "../cni/config.js";
import type { ConfList } from "../cni/schemas.js";
import { hostLocalRanges } from "../cni/host-local.js";
import { IpRoutes } from "../host/ip-json.js";
import { firstHost, isRealSubnet, parseCidr, subnetOf } from "../util/ip.js";
import { run } from "../util/command.js";
import { parseToolJson } from "../util/zod.js";
import { canBind } from "../driver/ports.js";

export interface NetworkPlan {
  mode: "embedded-default" | "named";
  /** The conflist name (named mode); in default mode it is known once cni-shim instantiated it. */
  name?: string;
  source: string;
  subnet: string;
  gateway: string;
  /** The list's IPv6 range (named mode): the cni-shim network then gets IPv6 from Docker too. */
  ipv6?: { subnet: string; gateway: string };
  bridge?: string;
}

/** Do two IPv4 CIDRs share any address? */
export function overlaps(a: string, b: string): boolean {
  const ca = parseCidr(a);
  const cb = parseCidr(b);
  if (!ca || !cb || ca.family !== cb.family) return false;
  const p = Math.min(ca.prefix, cb.prefix);
  return subnetOf(`${ca.address}/${p}`) === subnetOf(`${cb.address}/${p}`);
}

/** A /24 in 10.233.0.0/16 that overlaps nothing in `used`, searching from `start` (0-255). */
export function pickFreeSubnet(used: string[], start: number): string {
  for (let i = 0; i < 256; i++) {
    const candidate = `10.233.${(start + i) % 256}.0/24`;
    if (!used.some((u) => overlaps(u, candidate))) return candidate;
  }
  throw new Error("no free /24 left in 10.233.0.0/16 for compare's network: remove some networks or pass --conflist");
}

/** Subnet, gateway and bridge of a named conflist: host-local IPAM is needed to match Docker's IPAM. */
export function namedPlan(found: LoadedConfList): NetworkPlan {
  const list = found.conflist;
  const v4 = hostLocalRanges(list)?.find((r) => parseCidr(r.subnet)?.family === 4);
  if (!v4) {
    throw new Error(`CNI network "${list.name}" (${found.source}) has no IPv4 host-local range: compare needs one so that Docker's IPAM can hand out the same subnet to the cni-shim network`);
  }
  const v6 = hostLocalRanges(list)?.find((r) => parseCidr(r.subnet)?.family === 6);
  return { mode: "named", name: list.name, source: found.source, subnet: v4.subnet, gateway: v4.gateway, ...(v6 ? { ipv6: v6 } : {}), bridge: bridgeOf(list) };
}

export function defaultPlan(subnet: string, templateSource: string): NetworkPlan {
  return { mode: "embedded-default", source: templateSource, subnet, gateway: firstHost(subnet)! };
}

/** The bridge a list's bridge plugin uses (the plugin's default is cni0). */
export function bridgeOf(list: ConfList): string | undefined {
  const bridge = list.plugins.find((p) => p.type === "bridge");
  return bridge ? ((bridge.bridge as string | undefined) ?? "cni0") : undefined;
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Same content, same fingerprint, whatever the key order or whitespace of the file. */
export function listFingerprint(list: unknown): string {
  return createHash("sha256").update(canonicalJson(list)).digest("hex").slice(0, 12);
}

/** Host ports for the three columns: first, first+1, first+2. */
export function columnPorts(first: number): [number, number, number] {
  return [first, first + 1, first + 2];
}

// ---- host look-ups ---------------------------------------------------------------------------

/**
 * The subnets that compare's /24 must not overlap: route destinations and Docker networks' pools,
 * without the default route and the whole-family pools of null-IPAM networks (0.0.0.0/0, ::/0),
 * which would overlap every candidate. A null-IPAM network's real subnet shows in the host's
 * routes once its chain has run.
 */
export function subnetsInUse(routeDsts: string[], networks: Array<{ IPAM?: { Config?: Array<{ Subnet?: string }> } }>): string[] {
  const pools = networks.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet));
  return [...routeDsts, ...pools].filter((d): d is string => d !== "default" && isRealSubnet(d));
}

/** IPv4 subnets already in use: host routes (all tables) and Docker networks' pools. */
export async function usedSubnets(docker: Docker): Promise<string[]> {
  const routes = parseToolJson("ip -j -4 route show table all", IpRoutes, await run("ip", ["-j", "-4", "route", "show", "table", "all"]));
  return subnetsInUse(
    routes.map((r) => r.dst),
    await docker.listNetworks(),
  );
}

/** Is a host port free: nothing listens on it and no NAT rule (e.g. portmap's) catches it? */
async function portsFree(ports: number[], iptablesSave: string): Promise<boolean> {
  for (const p of ports) {
    if (p < 1 || p > 65535) return false;
    if (new RegExp(`--dports? (\\S*,)?${p}(?=[,:\\s]|$)`).test(iptablesSave)) return false;
    if ((await canBind("tcp", p)) === undefined) return false;
  }
  return true;
}

/** Three consecutive free host ports starting at `first`, or found from a random start. */
export async function choosePorts(first: number | undefined): Promise<[number, number, number]> {
  const rules = await run("iptables-save", ["-t", "nat"], { timeoutMs: 20_000 });
  if (first) {
    const ports = columnPorts(first);
    if (!(await portsFree(ports, rules))) throw new Error(`host ports ${ports.join(", ")} are not all free: compare publishes the probe on --publish HOST and the two next ports; choose another HOST`);
    return ports;
  }
  for (let i = 0; i < 50; i++) {
    const ports = columnPorts(30000 + Math.floor(Math.random() * 2700) * 3);
    if (await portsFree(ports, rules)) return ports;
  }
  throw new Error("found no three consecutive free host ports in 30000-38100: pass --publish HOST:CONTAINER");
}

