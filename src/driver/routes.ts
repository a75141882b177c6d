// Pure: the routes a chain left on the container interface (read in the staging namespace) as
// what Docker's Join can install: Gateway/GatewayIPv6 and StaticRoutes (via a next hop, or
// connected). Docker <= 27 adds the address with its prefix, so the kernel's connected route
// for the subnet always comes back; a chain that sends the subnet elsewhere (ptp: the subnet
// via the gateway) gets its two halves, one bit longer, which win by longest prefix match.
import type { KernelRoute } from "../host/routes.js";
import type { StaticRoute } from "../libnetwork/schemas.js";
import { canonicalIP, cidrRange, halves, parseCidr, subnetOf } from "../util/ip.js";

export interface JoinRoutes {
  gateway?: string;
  gatewayIPv6?: string;
  staticRoutes: StaticRoute[];
}

const isLinkLocal6 = (dst: string) => subnetOf(dst) === "fe80::/64";

export function joinRoutes(routes: KernelRoute[], addresses: string[]): JoinRoutes {
  const out: JoinRoutes = { staticRoutes: [] };
  const byDst = new Map<string, StaticRoute>();
  const add = (r: StaticRoute) => {
    if (!byDst.has(r.Destination)) byDst.set(r.Destination, r);
  };
  // The subnets Docker's address brings back as on-link routes (not for a host address).
  const connected = new Map<string, { handled: boolean }>();
  for (const a of addresses) {
    const c = parseCidr(a);
    if (c && c.prefix < (c.family === 4 ? 32 : 128)) connected.set(subnetOf(a)!, { handled: false });
  }
  const viaHalves = (subnet: string, gw: string) => {
    for (const half of halves(subnet) ?? []) add({ Destination: half, RouteType: 0, NextHop: gw });
  };
  // Docker disables IPv6 on an interface it gave no IPv6 address: no route of that family.
  const families = new Set(addresses.map((a) => parseCidr(a)?.family));
  // Main table first: a route sbr copied to a table of its own counts once.
  const ordered = [...routes].filter((r) => families.has(parseCidr(subnetOf(r.dst) ?? "")?.family)).sort((a, b) => Number(a.table !== undefined) - Number(b.table !== undefined));
  const pendingHalves: Array<[string, string]> = [];
  for (const r of ordered) {
    const dst = subnetOf(r.dst);
    if (!dst || isLinkLocal6(dst)) continue;
    const c = parseCidr(dst)!;
    const gw = r.gateway ? canonicalIP(r.gateway) : undefined;
    if (c.prefix === 0 && gw) {
      if (c.family === 6) out.gatewayIPv6 ??= gw;
      else out.gateway ??= gw;
      continue;
    }
    const conn = connected.get(dst);
    if (conn) {
      conn.handled = true;
      if (gw) pendingHalves.push([dst, gw]); // after the explicit routes, which win a tie
      continue; // on-link: Docker's address brings it back
    }
    add(gw ? { Destination: dst, RouteType: 0, NextHop: gw } : { Destination: dst, RouteType: 1 });
  }
  // A connected subnet the chain removed without a route of its own (ptp without the subnet
  // route, sbr): traffic to it followed the best shorter route in the namespace.
  for (const [subnet, state] of connected) {
    if (state.handled) continue;
    const s = cidrRange(subnet)!;
    const cover = ordered
      .map((r) => ({ r, range: cidrRange(r.dst) }))
      .filter(({ range }) => range && range.family === s.family && range.prefix < s.prefix && range.first <= s.first && s.last <= range.last)
      .sort((a, b) => b.range!.prefix - a.range!.prefix)[0];
    const gw = cover?.r.gateway ? canonicalIP(cover.r.gateway) : undefined;
    if (gw) pendingHalves.push([subnet, gw]);
  }
  for (const [subnet, gw] of pendingHalves) viaHalves(subnet, gw);
  out.staticRoutes = [...byDst.values()];
  return out;
}
