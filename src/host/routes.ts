// The routes a CNI chain left on an interface in a namespace, read with `ip -j route` (its
// JSON, KernelRoute, is checked in ip-json.ts). A namespace move drops them with the addresses,
// so the driver reads them before the hand-out and has Docker install them again at Join.
import { parseToolJson } from "../util/zod.js";
import { IpRoutes, KernelRoute } from "./ip-json.js";

// Defined with iproute2's other JSON; the driver's records and compare know it from here.
export { KernelRoute };

/**
 * The unicast routes through `ifName` in `ip -j route show table all` output (both families,
 * every table but `local`, the kernel's own; sbr moves a chain's routes to a table of their own).
 */
export function routesOf(ipJson: string, ifName: string): KernelRoute[] {
  const out: KernelRoute[] = [];
  for (const r of parseToolJson(`ip -j route show table all (the routes of ${ifName})`, IpRoutes, ipJson)) {
    if (r.dev !== ifName || (r.type && r.type !== "unicast") || r.table === "local") continue;
    // The listing mixes families and says "default" for both: the kernel gives every IPv6
    // route a preference ("pref"), and IPv6 addresses have colons.
    const v6 = r.dst.includes(":") || !!r.gateway?.includes(":") || r.pref !== undefined;
    out.push(KernelRoute.parse({ ...r, dst: r.dst === "default" ? (v6 ? "::/0" : "0.0.0.0/0") : r.dst }));
  }
  return out;
}
