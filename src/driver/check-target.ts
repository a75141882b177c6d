// What CHECK of a joined endpoint is run with (pure): the attachment as the plugins see it now,
// in the container's namespace, and the cached ADD result placed there.
import type { Attachment } from "../cni/runtime.js";
import type { CacheEntry } from "../cni/schemas.js";
import type { EndpointRecord } from "./state.js";

export type CheckTarget =
  | { kind: "check"; attachment: Attachment; prevResult: Record<string, unknown> }
  /** Not checkable, and why (not a failure). */
  | { kind: "skip"; why: string }
  /** Drift found without asking the plugins. */
  | { kind: "fail"; why: string };

/**
 * The staging hand-out ran the chain in our namespace, and Docker moved the interface into the
 * container and gave it its MAC: the result's container interface is given the container's
 * namespace as its sandbox and the MAC it has there (bridge's CHECK compares both). Its name must still be the one of the ADD, which
 * host-local's CHECK looks its reservation up by and bridge's CHECK the link by.
 * `nameInContainer`: the link with the endpoint's MAC there, undefined when none has it.
 * `nsFile`: where this process opens the container's namespace (a managed plugin: in dockerd's
 * view of the files, host/sandbox-key.ts), which the plugins are given as CNI_NETNS and sandbox.
 */
export function checkTarget(rec: EndpointRecord, entry: CacheEntry | undefined, nameInContainer: string | undefined, nsFile = rec.sandboxKey): CheckTarget {
  if (rec.phase !== "joined" || !rec.sandboxKey) return { kind: "skip", why: `not in a container (${rec.phase})` };
  if (!entry) return { kind: "fail", why: `no cached CNI result for ${rec.cniContainerId.slice(0, 12)}/${rec.ifName}: the cache was removed` };
  if (!nameInContainer) return { kind: "fail", why: `no interface with MAC ${rec.macAddress ?? "(none recorded)"} in the container` };
  if (nameInContainer !== rec.ifName) {
    return { kind: "skip", why: `the interface is ${nameInContainer} in the container, and CHECK needs the name of the ADD (${rec.ifName}): host-local looks its reservation up by one, bridge the link by the other` };
  }
  const interfaces = (entry.result.interfaces as Array<Record<string, unknown>> | undefined)?.map((i) => (i.name === rec.ifName && i.sandbox ? { ...i, sandbox: nsFile, ...(rec.macAddress ? { mac: rec.macAddress } : {}) } : i));
  return {
    kind: "check",
    attachment: { containerId: rec.cniContainerId, netns: nsFile, ifName: rec.ifName, args: entry.cniArgs, capabilityArgs: entry.capabilityArgs },
    prevResult: interfaces ? { ...entry.result, interfaces } : entry.result,
  };
}
