// Pure: a route table as the function it is — where each destination goes — so that two tables
// that route alike compare equal however they are written. Docker <= 27 always leaves the
// kernel's connected route and cannot set source hints, so cni-shim can match a chain's
// forwarding (ptp's "subnet via gateway" as two halves) but not the table's text.
import { bigIntToAddress, cidrRange, familyBits } from "../util/ip.js";
import type { Route } from "./model.js";

interface Span {
  first: bigint;
  last: bigint;
  prefix: number;
  action: string;
  metric: number;
}

const isLinkLocalOrMulticast6 = (dst: string) => dst.startsWith("fe80::/") || dst.startsWith("ff00::/");

function spans(routes: Route[], family: 4 | 6): Span[] {
  const out: Span[] = [];
  for (const r of routes) {
    if (family === 6 && isLinkLocalOrMulticast6(r.dst)) continue;
    const range = cidrRange(r.dst, family);
    if (!range || range.family !== family) continue;
    const dev = r.dev?.replace(/^eth\d+$/, "eth0");
    const action = r.gateway ? `via ${r.gateway}${dev ? ` dev ${dev}` : ""}` : `dev ${dev ?? "?"} (on-link)`;
    out.push({ first: range.first, last: range.last, prefix: range.prefix, action, metric: r.metric ?? 0 });
  }
  return out;
}

/** Every address where some table's answer may change: route starts and one past route ends. */
export function boundaries(tables: Route[][], family: 4 | 6): bigint[] {
  const max = (1n << BigInt(familyBits(family))) - 1n;
  const set = new Set<bigint>([0n]);
  for (const s of tables.flatMap((t) => spans(t, family))) {
    set.add(s.first);
    if (s.last < max) set.add(s.last + 1n);
  }
  return [...set].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function lookup(table: Span[], addr: bigint): string {
  let best: Span | undefined;
  for (const s of table) {
    if (addr < s.first || addr > s.last) continue;
    if (!best || s.prefix > best.prefix || (s.prefix === best.prefix && s.metric < best.metric)) best = s;
  }
  return best?.action ?? "unreachable";
}

function rangeText(first: bigint, last: bigint, family: 4 | 6): string {
  const size = last - first + 1n;
  const bits = familyBits(family);
  // A CIDR block: a power-of-two size, aligned to it.
  if ((size & (size - 1n)) === 0n && first % size === 0n) {
    const prefix = bits - (size.toString(2).length - 1);
    return `${bigIntToAddress(first, family)}/${prefix}`;
  }
  return `${bigIntToAddress(first, family)} - ${bigIntToAddress(last, family)}`;
}

/**
 * Where each destination goes, as address ranges with the next hop (adjacent ranges that go the
 * same way merged). `tables` are looked up in order, as policy rules order them (the first
 * with a matching route answers). `points` are the boundaries of every table compared, so that
 * tables written differently are cut at the same places (see boundaries()).
 */
export function forwarding(tables: Route[][], family: 4 | 6, points: bigint[]): string[] {
  const spanTables = tables.map((t) => spans(t, family)).filter((t) => t.length);
  if (!spanTables.length) return [];
  const max = (1n << BigInt(familyBits(family))) - 1n;
  const out: Array<{ first: bigint; last: bigint; action: string }> = [];
  points.forEach((p, i) => {
    const last = i + 1 < points.length ? points[i + 1]! - 1n : max;
    const action = spanTables.map((t) => lookup(t, p)).find((a) => a !== "unreachable") ?? "unreachable";
    const prev = out[out.length - 1];
    if (prev && prev.action === action) prev.last = last;
    else out.push({ first: p, last, action });
  });
  return out.map((s) => `${rangeText(s.first, s.last, family)} ${s.action}`);
}
