// Every host-local reservation on this host, with the CNI container id that holds it, for the
// leak checks of the soak and the e2e tests (src/cni/host-local.ts knows the store's format).
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { isBookkeeping, parseReservation } from "../../src/cni/host-local.js";

/** host-local's default store, and the kind profile's (its conflist sets dataDir). */
export const HOST_LOCAL_STORES = ["/var/lib/cni/networks", "/run/cni-ipam-state"];

const list = (dir: string) => readdir(dir).catch(() => [] as string[]);

/** Reservations as "network/address" (other stores than the default: "/store/network/address"). */
export async function hostReservations(stores = HOST_LOCAL_STORES): Promise<Array<{ item: string; owner: string }>> {
  const out: Array<{ item: string; owner: string }> = [];
  for (const store of stores) {
    for (const net of await list(store)) {
      for (const f of await list(join(store, net))) {
        if (isBookkeeping(f)) continue;
        const owner = parseReservation(await readFile(join(store, net, f), "utf8").catch(() => "")).containerId;
        out.push({ item: store === HOST_LOCAL_STORES[0] ? `${net}/${f}` : `${store}/${net}/${f}`, owner });
      }
    }
  }
  return out;
}
