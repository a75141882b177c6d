// Which runtime capabilities the chain's plugins take (pure).
import type { ConfList } from "../cni/schemas.js";

/** Does a plugin of the chain (tuning) set the interface's MAC from the `mac` capability? */
export const takesMacCapability = (list: ConfList) => list.plugins.some((p) => (p.capabilities as Record<string, unknown> | undefined)?.mac === true);

/** Does a plugin of the chain take requested addresses as the `ips` capability? */
export const takesIpsCapability = (list: ConfList) => list.plugins.some((p) => (p.capabilities as Record<string, unknown> | undefined)?.ips === true);
