// iproute2's JSON output (`ip -j`, `tc -j`, `bridge -j`) as zod schemas: the fields cni-shim
// reads, checked; the many others iproute2 prints are dropped, not refused (and a field not
// listed here does not type-check). Parse with parseToolJson (util/zod.ts), which names the
// command and the field when an iproute2 prints something else.
import { z } from "zod";

/** One link of `ip -j [-d] link show` / `ip -j [-d] addr show` (addr_info with addr, linkinfo with -d). */
export const IpLink = z.object({
  ifindex: z.number(),
  ifname: z.string(),
  flags: z.array(z.string()).optional(),
  mtu: z.number(),
  /** The MAC; absent for links without one (tun, wireguard). */
  address: z.string().optional(),
  operstate: z.string().optional(),
  /** The peer's ifindex (veth, macvlan's parent), possibly in another namespace. */
  link_index: z.number().optional(),
  /** The bridge a port is enslaved to. */
  master: z.string().optional(),
  linkinfo: z
    .object({
      info_kind: z.string().optional(),
      info_data: z.object({ vlan_filtering: z.number().optional() }).optional(),
      info_slave_data: z.object({ hairpin: z.boolean().optional() }).optional(),
    })
    .optional(),
  addr_info: z.array(z.object({ family: z.string(), local: z.string(), prefixlen: z.number(), scope: z.string().optional() })).optional(),
});
export type IpLink = z.infer<typeof IpLink>;
export const IpLinks = z.array(IpLink);

/** One route of `ip -j route`, as the endpoint records keep it too (driver/state.ts). */
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

/** `ip -j route show ...`, with "pref": the kernel gives every IPv6 route one (routes.ts tells the families apart by it). */
export const IpRoutes = z.array(KernelRoute.extend({ pref: z.string().optional() }));

/** `ip -j rule show`. */
export const IpRules = z.array(z.object({ priority: z.number(), src: z.string().optional(), srclen: z.number().optional(), table: z.string() }));

/** `tc -j qdisc show`. */
export const TcQdiscs = z.array(z.object({ kind: z.string(), root: z.boolean().optional(), parent: z.string().optional(), options: z.record(z.string(), z.unknown()).optional() }));

/** `bridge -j vlan show` (iproute2 5.x and later: one entry per port). */
export const BridgeVlans = z.array(
  z.object({ vlans: z.array(z.object({ vlan: z.number(), vlanEnd: z.number().optional(), flags: z.array(z.string()).optional() })).optional() }),
);

/** One list of an `ip -j -batch` run (sandbox.ts's look: routes and links, read only for a name or a table). */
export const IpBatchEntries = z.array(z.object({ ifname: z.string().optional(), table: z.string().optional() }));
