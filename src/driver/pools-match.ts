// A named conflist against Docker's IPAM pools at CreateNetwork (pure).
import type { ConfList } from "../cni/schemas.js";
import { hostLocalRanges } from "../cni/host-local.js";
import type * as api from "../libnetwork/schemas.js";
import { canonicalIP, parseCidr, subnetOf } from "../util/ip.js";
import { TranslationError } from "./translation-error.js";

/**
 * A named conflist is used as is, so Docker's IPAM must hand out addresses from the same
 * subnet with the same gateway; otherwise say exactly which flags make them agree.
 */
export function checkPoolsMatch(list: ConfList, req: api.CreateNetworkRequest): void {
  const ranges = hostLocalRanges(list);
  if (!ranges) return; // other IPAM: each address is verified against the CNI result instead
  for (const [family, data] of [[4, req.IPv4Data], [6, req.IPv6Data]] as const) {
    const mine = ranges.filter((r) => parseCidr(r.subnet)?.family === family);
    if (!mine.length || !data.length) continue;
    const d = data[0]!;
    const pool = subnetOf(d.Pool);
    const gw = d.Gateway ? canonicalIP(d.Gateway) : undefined;
    const match = mine.find((r) => r.subnet === pool);
    if (!match || (gw && gw !== match.gateway)) {
      const want = match ?? mine[0]!;
      const flag = family === 6 ? "--ipv6 --subnet" : "--subnet";
      throw new TranslationError(
        `CNI network "${list.name}" hands out addresses from ${want.subnet} (gateway ${want.gateway}), but Docker's pool is ${d.Pool}${gw ? ` (gateway ${gw})` : ""}: ` +
          `create the network with ${flag} ${want.subnet} --gateway ${want.gateway}`,
      );
    }
  }
  if (req.IPv4Data.length && !ranges.some((r) => parseCidr(r.subnet)?.family === 4)) {
    throw new TranslationError(`CNI network "${list.name}" has no IPv4 range but Docker assigns IPv4 addresses: add an IPv4 range to the conflist`);
  }
}
