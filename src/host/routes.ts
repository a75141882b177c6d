// The routes a CNI chain left on an interface in a namespace, read with `ip -j route` (the
// iproute2 JSON format is the wire type here). A namespace move drops them with the addresses,
// so the driver reads them before the hand-out and has Docker install them again at Join.
import { z } from "zod";
import { run } from "../util/command.js";

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
 * Unicast routes through `ifName` in the named namespace, from every table but `local` (the
 * kernel's own; sbr moves a chain's routes to a table of their own). Family 6 only when asked.
 */
export async function readRoutes(netns: string, ifName: string, families: Array<4 | 6>): Promise<KernelRoute[]> {
  const out: KernelRoute[] = [];
  for (const family of families) {
    const text = await run("ip", ["-j", `-${family}`, "-n", netns, "route", "show", "table", "all"]);
    const parsed = z.array(KernelRoute.passthrough()).safeParse(JSON.parse(text || "[]"));
    if (!parsed.success) throw new Error(`could not read the routes of ${ifName} in namespace ${netns}: unexpected "ip -j route" output`);
    for (const r of parsed.data) {
      if (r.dev !== ifName || (r.type && r.type !== "unicast") || r.table === "local") continue;
      // "default" says nothing of its family once stored: keep the CIDR.
      out.push(KernelRoute.parse({ ...r, dst: r.dst === "default" ? (family === 4 ? "0.0.0.0/0" : "::/0") : r.dst }));
    }
  }
  return out;
}
