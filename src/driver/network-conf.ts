// The CNI network list a network record froze at CreateNetwork, parsed for the runtime.
import { confListFromObject, type LoadedConfList } from "../cni/config.js";
import type { NetworkRecord } from "./state.js";

/**
 * Parsed lists by network (id and creation time: a record's list never changes, and a network
 * made again is another record), so that CreateEndpoint and Join do not parse and validate the
 * same list again at every start (~0.2 ms each under serve's --jitless). Bounded: the oldest goes.
 */
const parsed = new Map<string, LoadedConfList>();
const KEEP = 64;

/** Callers share the parsed list: it is read, never changed. */
export function networkConfList(net: NetworkRecord): LoadedConfList {
  const key = `${net.id}@${net.createdAt}`;
  const hit = parsed.get(key);
  if (hit) return hit;
  const list = confListFromObject(net.conflist, `network ${net.id.slice(0, 12)} (${net.source})`);
  parsed.set(key, list);
  if (parsed.size > KEEP) parsed.delete(parsed.keys().next().value as string);
  return list;
}
