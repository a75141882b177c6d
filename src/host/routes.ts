// The routes a CNI chain left on an interface in a namespace, read with `ip -j route` (the
// iproute2 JSON format is the wire type here). A namespace move drops them with the addresses,
// so the driver reads them before the hand-out and has Docker install them again at Join.
import { z } from "zod";

export const KernelRoute = z.object({
  /** A CIDR (readRoutes writes "default" as 0.0.0.0/0 or ::/0); a host route has no /len. */
  dst: z.string(),
  gateway: z.string().optional(),
  dev: z.string().optional(),
  /** Absent for unicast. */
  type: z.string().optional(),
  /** Absent for the main table. */
  table: z.string().optional(),
  protocol: z.string().optional(),
  scope: z.string().optional(),
  prefsrc: z.string().optional(),
  metric: z.number().optional(),
});
export type KernelRoute = z.infer<typeof KernelRoute>;

/**
 * The unicast routes through `ifName` in `ip -j route show table all` output (both families,
 * every table but `local`, the kernel's own; sbr moves a chain's routes to a table of their own).
 */
export function routesOf(ipJson: string, ifName: string): KernelRoute[] {
  const parsed = z.array(KernelRoute.passthrough()).safeParse(JSON.parse(ipJson || "[]"));
  if (!parsed.success) throw new Error(`could not read the routes of ${ifName}: unexpected "ip -j route" output`);
  const out: KernelRoute[] = [];
  for (const r of parsed.data) {
    if (r.dev !== ifName || (r.type && r.type !== "unicast") || r.table === "local") continue;
    // The listing mixes families and says "default" for both: the kernel gives every IPv6
    // route a preference ("pref"), and IPv6 addresses have colons.
    const v6 = r.dst.includes(":") || !!r.gateway?.includes(":") || "pref" in r;
    out.push(KernelRoute.parse({ ...r, dst: r.dst === "default" ? (v6 ? "::/0" : "0.0.0.0/0") : r.dst }));
  }
  return out;
}
