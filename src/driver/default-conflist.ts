// The embedded default conflist made concrete for one Docker network (pure).
import type { ConfList } from "../cni/schemas.js";
import { ipamPlugin } from "../cni/host-local.js";
import type * as api from "../libnetwork/schemas.js";
import { canonicalIP, subnetOf } from "../util/ip.js";
import { defaultBridgeName, defaultNetworkName } from "./names-from-ids.js";
import type { NetworkOptions } from "./network-options.js";
import { TranslationError } from "./translation-error.js";

/**
 * The embedded template made concrete for one Docker network: Docker's pools and gateways as
 * host-local ranges, a bridge name of its own (two networks never share a bridge).
 */
export function instantiateDefault(template: ConfList, req: api.CreateNetworkRequest, opts: NetworkOptions): ConfList {
  const list = structuredClone(template);
  list.name = defaultNetworkName(req.NetworkID);
  const bridge = list.plugins.find((p) => p.type === "bridge");
  const ipamHolder = ipamPlugin(list);
  if (!bridge || !ipamHolder?.ipam || ipamHolder.ipam.type !== "host-local") {
    throw new TranslationError(`the embedded default config ${template.name} must have a bridge plugin with host-local IPAM`);
  }
  bridge.bridge = opts.bridge ?? defaultBridgeName(req.NetworkID);
  if (opts.mtu) bridge.mtu = opts.mtu;
  if (opts.internal) bridge.ipMasq = false;
  const rangeSets: unknown[] = [];
  const routes: Array<{ dst: string }> = [];
  for (const [data, defaultRoute] of [[req.IPv4Data, "0.0.0.0/0"], [req.IPv6Data, "::/0"]] as const) {
    const first = data[0];
    if (!first) continue;
    rangeSets.push(
      data.map((d) => {
        const range: Record<string, string> = { subnet: subnetOf(d.Pool) ?? d.Pool };
        if (d.Gateway) range.gateway = canonicalIP(d.Gateway)!;
        return range;
      }),
    );
    // Docker's bridge driver gives internal networks no default route; do the same.
    if (!opts.internal) routes.push({ dst: defaultRoute });
  }
  if (!rangeSets.length) throw new TranslationError("Docker sent no IPv4 or IPv6 pool for this network");
  ipamHolder.ipam = { ...ipamHolder.ipam, ranges: rangeSets, routes };
  return list;
}
