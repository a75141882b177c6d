// What the bridge plugin leaves after the last container of a network is gone: the bridge
// itself (the plugin never deletes it). Removed only when nothing uses it. host-local's store
// is the other leftover: see cni/host-local.ts.
import * as netns from "./netns.js";

/** Delete the bridge when it exists and no port is left on it. */
export async function removeBridgeIfUnused(bridge: string): Promise<void> {
  if ((await netns.linkExists(bridge)) && (await netns.bridgePorts(bridge)).length === 0) await netns.deleteLinkIfExists(bridge);
}
