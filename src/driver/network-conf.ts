// The CNI network list a network record froze at CreateNetwork, parsed for the runtime.
import { confListFromObject, type LoadedConfList } from "../cni/config.js";
import type { NetworkRecord } from "./state.js";

export const networkConfList = (net: NetworkRecord): LoadedConfList => confListFromObject(net.conflist, `network ${net.id.slice(0, 12)} (${net.source})`);
