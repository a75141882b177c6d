// Chains whose IPAM is `dhcp`, on the staging hand-out. The dhcp daemon (containernetworking
// plugins, 1.1.1 and later alike) takes a lease inside the namespace it is given at ADD and keeps
// renewing it from a thread that stays in that namespace, through the interface it found there
// (1.1.1: by ifindex). It never opens the namespace's path again. The hand-out moves the
// interface out of the staging namespace, so every renewal fails ("no such device") and the
// server lets the lease expire while the container keeps the address.
//
// So once the container's namespace exists and holds the interface (Docker <= 27: just after
// Join; 28+: at Join), the lease moves there: the staging namespace's path is rebound to the
// container's namespace (same name, so every other part of cni-shim keeps reading the record as
// before), and the daemon is asked to release the lease (its DHCPRELEASE cannot leave the empty
// staging namespace, so the server keeps the binding) and to take it again in the container's
// namespace, where the interface has the CNI ifName (eth0). The server answers the same client
// (client id and MAC) with the same address. From then on renewals go out through eth0 in the
// container, and the teardown, which brings the interface back into the "staging" path (now the
// container's namespace, kept alive by the bind mount after Docker lets go of it), releases the
// lease there before the chain's DEL (convergent.ts).
import type { LoadedConfList } from "../cni/config.js";
import { usesDhcp } from "../cni/dhcp.js";
import type { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import { sameIP } from "../util/ip.js";
import type { DhcpOps, HostOps } from "./seams.js";
import type { EndpointRecord, StateStore } from "./state.js";

export interface DhcpLeasesDeps {
  dhcp: Pick<DhcpOps, "addIpam" | "delIpam">;
  host: Pick<HostOps, "netnsPath" | "deleteNetns" | "holdNetns" | "linkMacIn">;
  state: Pick<StateStore, "getEndpoint" | "putEndpoint">;
  locks: KeyedMutex;
  /** How long the container's namespace has to show the interface after Join (default 30 s). */
  waitMs?: number;
  pollMs?: number;
}

/** What to do with a joined endpoint's lease, given the MAC of the link named like its CNI interface in the container's namespace. */
export function leaseStep(rec: Pick<EndpointRecord, "phase" | "sandboxKey" | "dhcpLease" | "macAddress">, macInSandbox: string | undefined): "wait" | "move" | { skip: string } {
  if (rec.dhcpLease !== "staging") return { skip: "the lease is not in the staging namespace" };
  if (rec.phase !== "joined" || !rec.sandboxKey) return { skip: "the endpoint is not joined" };
  if (!macInSandbox) return "wait";
  if (rec.macAddress && macInSandbox.toLowerCase() !== rec.macAddress.toLowerCase()) {
    return { skip: "the container's interface of that name is another network's (the container's first network keeps its DHCP renewals; connect a dhcp network first)" };
  }
  return "move";
}

export class DhcpLeases {
  private readonly following = new Map<string, Promise<void>>();

  constructor(private readonly deps: DhcpLeasesDeps) {}

  /** After Join (and at startup, for joined endpoints whose lease never moved): move the lease into the container, in the background. */
  follow(rec: EndpointRecord, list: LoadedConfList): void {
    if (!usesDhcp(list.conflist) || rec.dhcpLease !== "staging" || this.following.has(rec.id)) return;
    const p = this.move(rec, list)
      .catch((err: Error) => log.warn("dhcp lease not moved into the container: its renewals will fail, and the server frees the address when the lease ends", { endpoint: rec.id.slice(0, 12), error: err.message }))
      .finally(() => this.following.delete(rec.id));
    this.following.set(rec.id, p);
  }

  /** Wait for the moves under way (shutdown, tests). */
  async settle(): Promise<void> {
    await Promise.all(this.following.values());
  }

  private async move(joined: EndpointRecord, list: LoadedConfList): Promise<void> {
    const { host, state, locks } = this.deps;
    const deadline = Date.now() + (this.deps.waitMs ?? 30_000);
    for (;;) {
      const mac = joined.sandboxKey ? await host.linkMacIn(joined.sandboxKey, joined.ifName) : undefined;
      const step = leaseStep(joined, mac);
      if (typeof step === "object") return void log.warn("dhcp lease stays in the staging namespace: its renewals will fail", { endpoint: joined.id.slice(0, 12), why: step.skip });
      if (step === "move") break;
      if (Date.now() > deadline) throw new Error(`the container's namespace ${joined.sandboxKey} showed no ${joined.ifName} within ${this.deps.waitMs ?? 30_000} ms`);
      await new Promise((r) => setTimeout(r, this.deps.pollMs ?? 100));
    }
    await locks.run(joined.id, async () => {
      const rec = await state.getEndpoint(joined.id);
      // Left, deleted or moved meanwhile: nothing to do.
      if (!rec || rec.sandboxKey !== joined.sandboxKey || leaseStep(rec, rec.macAddress ?? "x") !== "move") return;
      // The same name, so the record, the teardown, the pool's sweep and reconciliation need no
      // change: a crash between these two steps leaves the path absent, which the teardown
      // makes again (as after a reboot).
      await host.deleteNetns(rec.stagingNetns);
      await host.holdNetns(rec.sandboxKey!, rec.stagingNetns);
      const moved: EndpointRecord = { ...rec, dhcpLease: "container" };
      const att = { containerId: rec.cniContainerId, ifName: rec.ifName, args: rec.cniArgs, capabilityArgs: rec.capabilityArgs, netns: host.netnsPath(rec.stagingNetns) };
      await this.deps.dhcp.delIpam(list, att);
      const result = await this.deps.dhcp.addIpam(list, att);
      const address = result.ips?.find((ip) => !ip.address.includes(":"))?.address;
      await state.putEndpoint(moved);
      if (rec.address && address && !sameIP(address, rec.address)) {
        log.error("the DHCP server gave the moved lease another address: the container keeps the one Docker was told, which the server no longer reserves; restart the container", { endpoint: rec.id.slice(0, 12), address: rec.address, leased: address });
        return;
      }
      log.info("dhcp lease moved into the container's namespace", { endpoint: rec.id.slice(0, 12), address });
    });
  }
}
