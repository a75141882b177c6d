// What CNI plugins leave after the last container of a network is gone: the bridge (the bridge
// plugin never deletes it) and host-local's store. Removed only when nothing uses them.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { ConfList } from "../cni/schemas.js";
import * as netns from "./netns.js";
import { readdirIfExists } from "../util/fs.js";

/** host-local's store for this list, or undefined for another IPAM. */
export function hostLocalDir(list: ConfList): string | undefined {
  const ipam = list.plugins.find((p) => p.ipam)?.ipam as { type: string; dataDir?: string } | undefined;
  return ipam?.type === "host-local" ? join(ipam.dataDir ?? "/var/lib/cni/networks", list.name) : undefined;
}

/** Delete the bridge when it exists and no port is left on it. */
export async function removeBridgeIfUnused(bridge: string): Promise<void> {
  if ((await netns.linkExists(bridge)) && (await netns.bridgePorts(bridge)).length === 0) await netns.deleteLinkIfExists(bridge);
}

/** Delete host-local's store when only its bookkeeping is left (no reservations). */
export async function removeHostLocalDirIfEmpty(dir: string): Promise<void> {
  const files = await readdirIfExists(dir);
  if (files.every((f) => f === "lock" || f.startsWith("last_reserved_ip"))) await rm(dir, { recursive: true, force: true });
}
