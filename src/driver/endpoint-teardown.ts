// The end of an endpoint: a full CNI DEL wherever its interface is now, then its record goes.
// Every path that removes an endpoint comes here: DeleteEndpoint (at once or in the background),
// DeleteNetwork, a rollback, the reclaims of CreateEndpoint and reconciliation.
import { hostLocalAddresses } from "../cni/host-local.js";
import { CniRuntime } from "../cni/runtime.js";
import { Result } from "../cni/schemas.js";
import type { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import { sameIP } from "../util/ip.js";
import type { AttachStrategy } from "./attach-strategy.js";
import { networkConfList } from "./network-conf.js";
import type { CniOps, Teardown } from "./seams.js";
import type { EndpointRecord, NetworkRecord, StateStore } from "./state.js";

export interface EndpointTeardownDeps {
  state: StateStore;
  /** The driver's per-endpoint lock. */
  locks: KeyedMutex;
  cache: CniOps["cache"];
  teardown: Teardown;
  strategyOf(rec: EndpointRecord): AttachStrategy;
}

export class EndpointTeardown {
  constructor(private readonly deps: EndpointTeardownDeps) {}

  /**
   * Full CNI DEL for an endpoint, then its record goes. `net`: its network's record when the
   * caller has it at hand (looked up otherwise); without one the CNI cache's copy of the list
   * is used.
   */
  async remove(rec: EndpointRecord, net?: NetworkRecord): Promise<void> {
    const { state, cache } = this.deps;
    const started = performance.now();
    net ??= await state.getNetwork(rec.networkId);
    const cached = await cache.read(net ? net.conflist.name : "", rec.cniContainerId, rec.ifName).catch(() => undefined);
    const list = net ? networkConfList(net) : cached ? CniRuntime.confListOf(cached) : undefined;
    const result = rec.result ?? (cached ? Result.safeParse(cached.result).data : undefined);
    let intendedAddresses = [rec.address, rec.addressIPv6].filter((a): a is string => !!a);
    // An ADD cut short on a null-IPAM network: no result, and no address of Docker's. host-local's
    // reservations still say which addresses the chain got (its firewall rules name them).
    if (!result && !intendedAddresses.length && list) intendedAddresses = await hostLocalAddresses(list.conflist, rec.cniContainerId, rec.ifName).catch(() => []);
    await this.deps.teardown({
      list,
      attachment: { containerId: rec.cniContainerId, ifName: rec.ifName, args: rec.cniArgs, capabilityArgs: rec.capabilityArgs },
      result,
      intendedAddresses,
      ...(await this.deps.strategyOf(rec).placeOf(rec)),
      addressInUse: async () => {
        const others = (await state.listEndpoints()).filter((e) => e.id !== rec.id);
        return (ip) => others.some((e) => sameIP(ip, e.address) || sameIP(ip, e.addressIPv6));
      },
      label: { endpoint: rec.id.slice(0, 12), phase: rec.phase },
    });
    await state.deleteEndpoint(rec.id);
    log.info("endpoint removed", { endpoint: rec.id.slice(0, 12), address: rec.address, ms: Math.round(performance.now() - started) });
  }

  /**
   * Remove endpoint `id` under its lock, as its record reads once the lock is held (another
   * call may have changed or removed it meanwhile: then there is nothing left to do).
   */
  async removeUnderLock(id: string, net?: NetworkRecord): Promise<void> {
    await this.deps.locks.run(id, async () => {
      const fresh = await this.deps.state.getEndpoint(id);
      if (fresh) await this.remove(fresh, net);
    });
  }
}
