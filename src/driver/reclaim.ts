// Before CreateEndpoint adds anything: endpoints of ours that still hold what Docker just gave
// the new one (its address, a fixed host port) are stale, and are torn down first. Nothing
// here asks Docker: this runs inside Docker's own calls.
import type * as api from "../libnetwork/schemas.js";
import { fromEarlierBoot } from "../host/boot.js";
import type { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import { sameIP } from "../util/ip.js";
import type { AttachStrategy } from "./attach-strategy.js";
import type { EndpointTeardown } from "./endpoint-teardown.js";
import type { EndpointRecord, NetworkRecord, StateStore } from "./state.js";
import type { TeardownQueue } from "./teardown-queue.js";
import type { PortRequest } from "./port-requests.js";

export interface ReclaimDeps {
  locks: KeyedMutex;
  state: Pick<StateStore, "getEndpoint">;
  queue: Pick<TeardownQueue, "has">;
  endpoints: EndpointTeardown;
  strategyOf(rec: EndpointRecord): AttachStrategy;
}

/** Does the record publish exactly what `requests` asks (every request a port it holds, nothing else)? */
function samePorts(rec: EndpointRecord, requests: PortRequest[]): boolean {
  if (rec.portMappings.length !== requests.length) return false;
  return requests.every((r) =>
    rec.portMappings.some((m) => m.protocol === r.protocol && m.containerPort === r.containerPort && (r.hostPortStart === 0 || (r.hostPortStart <= m.hostPort && m.hostPort <= r.hostPortEnd)) && (m.hostIP ?? "") === (r.hostIP ?? "")),
  );
}

/** The message Docker's bridge gives for a host port in use, with the endpoint that holds it. */
export const portInUse = (hostIP: string | undefined, hostPort: number, holder: string) =>
  `Bind for ${hostIP ?? "0.0.0.0"}:${hostPort} failed: port is already allocated (endpoint ${holder.slice(0, 12)} publishes it): stop that container or publish another port`;

/** The addresses Docker assigned in this request. */
export const requestedAddresses = (req: api.CreateEndpointRequest) => [req.Interface?.Address, req.Interface?.AddressIPv6].filter((a): a is string => !!a);

/**
 * How long a fixed port's check waits for work in flight on the record holding it (a teardown,
 * most often): bounded, so that Docker's call never hangs behind it; after that the record is
 * judged as it stands.
 */
const IN_FLIGHT_WAIT_MS = 20_000;

export class Reclaimer {
  constructor(private readonly deps: ReclaimDeps) {}

  /**
   * Tear down the stale endpoints among `others` (the records of every other endpoint) that
   * stand in the way of `req`; returns their ids, and the live endpoint that already publishes
   * exactly these ports (the same container connected to another network, see `fixedPorts`).
   * Throws when another live endpoint holds a fixed port.
   */
  async clearWay(req: api.CreateEndpointRequest, net: NetworkRecord, portRequests: PortRequest[], others: EndpointRecord[]): Promise<{ reclaimed: Set<string>; portsHeldBy?: EndpointRecord }> {
    const reclaimed = await this.reassignedAddresses(req, net, others);
    const ports = await this.fixedPorts(req, portRequests, others.filter((e) => !reclaimed.has(e.id)));
    for (const id of ports.reclaimed) reclaimed.add(id);
    return { reclaimed, portsHeldBy: ports.heldBy };
  }

  /**
   * Docker's IPAM owns the addresses of its networks and never hands out one that is in use, so
   * an endpoint of ours on this network that still holds the address Docker just assigned is
   * stale (Docker dropped it, e.g. across a dockerd restart, without telling us). Tear it down
   * now, without asking Docker, or host-local would refuse the address.
   */
  private async reassignedAddresses(req: api.CreateEndpointRequest, net: NetworkRecord, others: EndpointRecord[]): Promise<Set<string>> {
    const wanted = requestedAddresses(req);
    const stale = others.filter((e) => e.networkId === req.NetworkID && wanted.some((w) => sameIP(w, e.address) || sameIP(w, e.addressIPv6)));
    for (const ep of stale) {
      log.warn("Docker reassigned the address of an endpoint it dropped: removing the stale endpoint", { stale: ep.id.slice(0, 12), address: ep.address, endpoint: req.EndpointID.slice(0, 12) });
      await this.deps.endpoints.removeUnderLock(ep.id, net);
    }
    return new Set(stale.map((e) => e.id));
  }

  /**
   * A fixed host port (-p 8080:80) that another record of ours holds: taken over when that
   * record is dead by the kernel's evidence (another boot, a teardown or an ADD that never
   * finished, its container's namespace gone), refused like Docker's bridge when it is live.
   */
  private async fixedPorts(req: api.CreateEndpointRequest, requests: PortRequest[], others: EndpointRecord[]): Promise<{ reclaimed: string[]; heldBy?: EndpointRecord }> {
    const fixed = requests.filter((r) => r.hostPortStart !== 0 && r.hostPortStart === r.hostPortEnd);
    const reclaimed: string[] = [];
    if (!fixed.length) return { reclaimed };
    let heldBy: EndpointRecord | undefined;
    const clashOf = (ep: EndpointRecord) => fixed.find((r) => ep.portMappings.some((m) => m.protocol === r.protocol && m.hostPort === r.hostPortStart && (!m.hostIP || !r.hostIP || sameIP(m.hostIP, r.hostIP))));
    for (const listed of others) {
      if (!clashOf(listed)) continue;
      const ep = await this.afterInFlight(listed);
      const clash = ep && clashOf(ep);
      if (!clash) continue;
      if (!(await this.isDead(ep))) {
        // Docker gives every endpoint of a container its published ports, also the one of a
        // network connected later; its bridge driver publishes them with the gateway endpoint
        // only. A joined endpoint with exactly these ports is, by all signs, this container on
        // its first network: the ports stay there (Join checks it is the same container).
        if (!heldBy && ep.phase === "joined" && samePorts(ep, requests)) {
          heldBy = ep;
          continue;
        }
        throw new Error(portInUse(clash.hostIP, clash.hostPortStart, ep.id));
      }
      log.warn("a dead endpoint held a host port: removing it", { stale: ep.id.slice(0, 12), port: `${clash.protocol}/${clash.hostPortStart}`, endpoint: req.EndpointID.slice(0, 12) });
      await this.deps.endpoints.removeUnderLock(ep.id);
      reclaimed.push(ep.id);
    }
    return { reclaimed, heldBy };
  }

  /**
   * The record once the work in flight on it ended (undefined when that work removed it). A
   * record being torn down (reconciliation, a dropped endpoint's reclaim, a background
   * teardown) still looks live until its DEL ends: taken for the container's first network,
   * it would keep the ports of the container's next start (soak on 28: its Join then failed
   * with "port is already allocated" by that very record).
   */
  private async afterInFlight(ep: EndpointRecord): Promise<EndpointRecord | undefined> {
    const { locks, queue, state } = this.deps;
    if (!locks.busy(ep.id) && !queue.has(ep.id)) return ep;
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      locks.run(ep.id, () => Promise.resolve(true)),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), IN_FLIGHT_WAIT_MS))),
    ]).finally(() => clearTimeout(timer));
    if (!waited) log.warn("work on the endpoint holding a host port is still running: judged as it stands", { holder: ep.id.slice(0, 12), waitedMs: IN_FLIGHT_WAIT_MS });
    return state.getEndpoint(ep.id);
  }

  /** Nothing of the record lives any more. */
  private async isDead(rec: EndpointRecord): Promise<boolean> {
    if (this.deps.locks.busy(rec.id) || this.deps.queue.has(rec.id)) return false; // being worked on right now
    if (fromEarlierBoot(rec.bootId) || rec.phase === "deleting" || rec.phase === "adding") return true;
    return this.deps.strategyOf(rec).isGone(rec);
  }
}
