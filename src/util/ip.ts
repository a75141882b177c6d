// Small address helpers: normalising CIDRs so "10.1.0.0/24" and "10.1.0.5/24" compare as the
// same subnet, for both families. node:net validates; we only need canonical forms.
import { isIP } from "node:net";

function v4ToBigInt(addr: string): bigint {
  return addr.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}
function bigIntToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
}
function v6ToBigInt(addr: string): bigint {
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const expand = (groups: string[]) =>
    groups.flatMap((g) => (g.includes(".") ? (() => { const n = v4ToBigInt(g); return [(n >> 16n).toString(16), (n & 0xffffn).toString(16)]; })() : [g]));
  const hg = expand(h);
  const tg = expand(t);
  const zeros = tail !== undefined ? new Array<string>(8 - hg.length - tg.length).fill("0") : [];
  return [...hg, ...zeros, ...tg].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || "0", 16)), 0n);
}
function bigIntToV6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt((7 - i) * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 does.
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

export interface Cidr {
  family: 4 | 6;
  address: string; // canonical address part
  prefix: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, ...rest] = text.trim().split("/");
  if (!addr || rest.length) return undefined;
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  const address = family === 4 ? bigIntToV4(v4ToBigInt(addr)) : bigIntToV6(v6ToBigInt(addr));
  return { family, address, prefix };
}

/** The canonical address of an IP, with or without a /prefix. */
export function canonicalIP(text: string): string | undefined {
  return parseCidr(text.split("/")[0] ?? "")?.address;
}

/** The subnet a CIDR lies in, canonical: "10.1.0.5/24" -> "10.1.0.0/24". */
export function subnetOf(text: string): string | undefined {
  const c = parseCidr(text);
  if (!c) return undefined;
  const bits = c.family === 4 ? 32 : 128;
  const n = c.family === 4 ? v4ToBigInt(c.address) : v6ToBigInt(c.address);
  const mask = ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - c.prefix)) - 1n);
  const net = n & mask;
  return `${c.family === 4 ? bigIntToV4(net) : bigIntToV6(net)}/${c.prefix}`;
}

/** The first host address of a subnet (host-local's default gateway). */
export function firstHost(subnet: string): string | undefined {
  const s = subnetOf(subnet);
  const c = s ? parseCidr(s) : undefined;
  if (!c) return undefined;
  const n = (c.family === 4 ? v4ToBigInt(c.address) : v6ToBigInt(c.address)) + 1n;
  return c.family === 4 ? bigIntToV4(n) : bigIntToV6(n);
}

export function sameIP(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  return canonicalIP(a) === canonicalIP(b);
}

/** An address as a number (either family), for interval arithmetic on routes. */
function addressToBigInt(addr: string): bigint {
  return addr.includes(":") ? v6ToBigInt(addr) : v4ToBigInt(addr);
}

export function bigIntToAddress(n: bigint, family: 4 | 6): string {
  return family === 4 ? bigIntToV4(n) : bigIntToV6(n);
}

export const familyBits = (family: 4 | 6) => (family === 4 ? 32 : 128);

/**
 * Is a CIDR a whole address family (0.0.0.0/0, ::/0)? Docker's null IPAM driver sends and records
 * those as a network's pools: they say nothing about which addresses the network uses.
 */
export function isWholeFamily(text: string | undefined): boolean {
  const c = text ? parseCidr(text) : undefined;
  return !!c && c.prefix === 0;
}

/** Does a CIDR name a real subnet (parsable, and not a whole family)? */
export function isRealSubnet(text: string | undefined): boolean {
  return !!text && !!parseCidr(text) && !isWholeFamily(text);
}

/** First and last address of a CIDR ("default" counts as the family's /0). */
export function cidrRange(text: string, family?: 4 | 6): { family: 4 | 6; first: bigint; last: bigint; prefix: number } | undefined {
  const c = text === "default" && family ? parseCidr(family === 4 ? "0.0.0.0/0" : "::/0") : parseCidr(text);
  if (!c) return undefined;
  const bits = BigInt(familyBits(c.family));
  const size = 1n << (bits - BigInt(c.prefix));
  const first = (addressToBigInt(c.address) / size) * size;
  return { family: c.family, first, last: first + size - 1n, prefix: c.prefix };
}

/** The two halves of a subnet, one bit longer ("10.0.0.0/24" -> /25 and /25); none for a host address. */
export function halves(subnet: string): [string, string] | undefined {
  const r = cidrRange(subnet);
  if (!r || r.prefix >= familyBits(r.family)) return undefined;
  const mid = r.first + (r.last - r.first + 1n) / 2n;
  const p = r.prefix + 1;
  return [`${bigIntToAddress(r.first, r.family)}/${p}`, `${bigIntToAddress(mid, r.family)}/${p}`];
}
