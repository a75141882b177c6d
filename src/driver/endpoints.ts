// The endpoint calls of the driver: CreateEndpoint (reserve, add and hand out, roll back),
// Join, Leave, DeleteEndpoint, EndpointOperInfo. How the interface reaches the container is the
// attach strategy's part; stale endpoints in the way are reclaim.ts's; removal is
// endpoint-teardown.ts's.
import type * as api from "../libnetwork/schemas.js";
import type { LoadedConfList } from "../cni/config.js";
import { addLeftState } from "../cni/errors.js";
import { usesDhcp } from "../cni/dhcp.js";
import { currentBootId, fromEarlierBoot } from "../host/boot.js";
import type { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import { phaseClock, type PhaseClock } from "../util/phases.js";
import { sameIP } from "../util/ip.js";
import type { AttachStrategy, CreateProgress } from "./attach-strategy.js";
import type { EndpointTeardown } from "./endpoint-teardown.js";
import { networkConfList } from "./network-conf.js";
import { choosePorts } from "./ports.js";
import { portInUse, requestedAddresses, type Reclaimer } from "./reclaim.js";
import type { Clock } from "./seams.js";
import type { EndpointRecord, NetworkRecord, StateStore } from "./state.js";
import type { TeardownQueue } from "./teardown-queue.js";
import { planAttachment } from "./attachment-plan.js";
import { takesIpsCapability } from "./capabilities.js";
import { chainAddresses } from "./chain-addresses.js";
import { endpointMac } from "./endpoint-mac.js";
import { portRequests, type PortRequest } from "./port-requests.js";
import { TranslationError } from "./translation-error.js";

/** When DeleteEndpoint's CNI DEL runs: after the reply (off `docker stop`'s critical path) or before it. */
export type TeardownMode = "background" | "sync";
/** The same default as the CLI's --teardown (settings.ts). */
export const DEFAULT_TEARDOWN_MODE: TeardownMode = "background";

export interface EndpointsDeps {
  state: StateStore;
  locks: KeyedMutex;
  queue: TeardownQueue;
  reclaim: Reclaimer;
  endpoints: EndpointTeardown;
  /**
   * The strategy a new endpoint of this network is made with (attach-choice.ts; a network whose
   * chain picks the addresses takes the hand-out, see driver.ts).
   */
  strategyForNew(net: NetworkRecord): AttachStrategy;
  strategyOf(rec: EndpointRecord): AttachStrategy;
  teardownMode: TeardownMode;
  now: Clock;
  network(id: string): Promise<NetworkRecord>;
  /** STATUS of the network's chain (lists at 1.1.0+): throws when a plugin is not ready. */
  status(list: LoadedConfList): Promise<void>;
  /** Join arrived: work that needs only the request may start before the lock and the record (in-sandbox.ts prefetch). */
  joinArrived?(req: api.JoinRequest): void;
  /** After a Join was saved (dhcp chains move their lease into the container: dhcp-leases.ts). */
  afterJoin?(rec: EndpointRecord, list: LoadedConfList): void;
}

function withContext(err: unknown, context: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  e.message = `${context}: ${e.message}`;
  return e;
}

/** A record this process (this boot) finished creating: a retried CreateEndpoint gets the same reply. */
const isLive = (rec: EndpointRecord) => (rec.phase === "ready" || rec.phase === "joined") && !fromEarlierBoot(rec.bootId);

/**
 * Docker refuses changes to fields it set; those it left empty may be filled in: the MAC, and on
 * a null-IPAM network the addresses the chain's IPAM chose (Docker records them for inspect,
 * the embedded DNS and the Join that follows).
 */
function createReply(req: api.CreateEndpointRequest, rec: EndpointRecord): api.CreateEndpointResponse {
  const iface: NonNullable<api.CreateEndpointResponse["Interface"]> = {};
  if (!req.Interface?.MacAddress && rec.macAddress) iface.MacAddress = rec.macAddress;
  if (!req.Interface?.Address && rec.address) iface.Address = rec.address;
  if (!req.Interface?.AddressIPv6 && rec.addressIPv6) iface.AddressIPv6 = rec.addressIPv6;
  return Object.keys(iface).length ? { Interface: iface } : {};
}

export class Endpoints {
  constructor(private readonly deps: EndpointsDeps) {}

  async create(req: api.CreateEndpointRequest): Promise<api.CreateEndpointResponse> {
    const { locks, state, endpoints } = this.deps;
    let strategy: AttachStrategy | undefined;
    const clock = phaseClock();
    const requests = portRequests(req.Options);
    await this.settleCollisions(req, requests);
    clock.mark("settle");
    return locks
      .run(req.EndpointID, async () => {
        clock.mark("lock");
        const net = await this.deps.network(req.NetworkID);
        strategy = this.deps.strategyForNew(net);
        const list = networkConfList(net);
        const existing = await state.getEndpoint(req.EndpointID);
        if (existing && isLive(existing)) return createReply(req, existing);
        // Before anything is reserved or written: a chain that is not ready leaves nothing behind.
        await this.deps.status(list);
        clock.mark("status");
        // A CreateEndpoint cut short (plugin killed mid-ADD) or a teardown never finished: converge first.
        if (existing) await endpoints.remove(existing);
        const rec = await this.reserve(req, net, list, requests, strategy, clock);
        const ready = await this.addAndHandOut(rec, net, list, clock);
        // ms: where the time went ("add" is the chain, plugin execs included; the rest is cni-shim's).
        log.info("endpoint attached", { endpoint: rec.id.slice(0, 12), cniNetwork: list.conflist.name, address: ready.address, mac: ready.macAddress, ports: ready.portMappings.length, ms: clock.done() });
        return createReply(req, ready);
      })
      .finally(() => setImmediate(() => strategy?.afterCreate(req.EndpointID))); // setImmediate: once the reply is written
  }

  /**
   * A teardown still running for this endpoint (Docker retries CreateEndpoint with the same id
   * after a failure), the same address or a host port must finish first. Outside the lock: a
   * background teardown takes the endpoint's lock itself.
   */
  private async settleCollisions(req: api.CreateEndpointRequest, requests: PortRequest[]): Promise<void> {
    const wanted = requestedAddresses(req);
    await this.deps.queue.settle(
      (p) =>
        p.id === req.EndpointID ||
        (p.networkId === req.NetworkID && wanted.some((w) => sameIP(w, p.address) || sameIP(w, p.addressIPv6))) ||
        p.portMappings.some((m) => requests.some((r) => r.protocol === m.protocol && r.hostPortStart <= m.hostPort && m.hostPort <= r.hostPortEnd)),
    );
  }

  /**
   * Step 1: clear the way (stale endpoints holding the address or a port), choose the host ports,
   * and write the "adding" record before anything goes into a namespace, so a crash mid-way is
   * found and undone later. A strategy that changes nothing at CreateEndpoint (in-sandbox: the
   * ADD is at Join) gets no "adding" record: step 2 writes the "ready" one.
   */
  private async reserve(req: api.CreateEndpointRequest, net: NetworkRecord, list: LoadedConfList, requests: PortRequest[], strategy: AttachStrategy, clock: PhaseClock): Promise<EndpointRecord> {
    const { state, reclaim } = this.deps;
    // One listing of the records serves the reclaims and the port choice.
    const others = (await state.listEndpoints()).filter((e) => e.id !== req.EndpointID);
    const { reclaimed, portsHeldBy } = await reclaim.clearWay(req, net, requests, others);
    const taken = new Set(others.filter((e) => !reclaimed.has(e.id)).flatMap((e) => e.portMappings.map((p) => `${p.protocol}/${p.hostPort}`)));
    // The container's ports stay with its first network (reclaim.ts): this endpoint publishes none.
    const ports = portsHeldBy ? [] : await choosePorts(requests, taken);
    if (portsHeldBy) log.info("published ports stay with the container's first network", { endpoint: req.EndpointID.slice(0, 12), publishedBy: portsHeldBy.id.slice(0, 12) });
    clock.mark("records");
    if (net.addresses === "cni" && (req.Interface?.Address || req.Interface?.AddressIPv6)) {
      throw new TranslationError(
        `network ${req.NetworkID.slice(0, 12)} was created with --ipam-driver null: the chain's IPAM picks the addresses, so --ip/--ip6 cannot be honoured; leave them out, or create the network with Docker's IPAM (--subnet matching the conflist) to choose addresses`,
      );
    }
    const plan = planAttachment(req, ports, { ipsCapability: takesIpsCapability(list.conflist) });
    const rec: EndpointRecord = {
      id: req.EndpointID,
      networkId: req.NetworkID,
      phase: "adding",
      attach: strategy.kind,
      cniContainerId: plan.cniContainerId,
      ifName: plan.ifName,
      ...(await strategy.reserve(plan)),
      address: req.Interface?.Address || undefined,
      addressIPv6: req.Interface?.AddressIPv6 || undefined,
      macAddress: endpointMac(req),
      portMappings: ports,
      ...(portsHeldBy ? { portsWith: portsHeldBy.id } : {}),
      cniArgs: plan.cniArgs,
      capabilityArgs: plan.capabilityArgs,
      bootId: currentBootId(),
      createdAt: new Date(this.deps.now()).toISOString(),
    };
    if (!strategy.addsAtCreate && net.addresses !== "cni") return rec;
    await state.putEndpoint(rec).catch(async (err: Error) => {
      await strategy.release(rec).catch(() => undefined);
      throw err;
    });
    clock.mark("record");
    return rec;
  }

  /** Step 2: the strategy's work before Join (the chain's ADD and the hand-out), saved as "ready"; step 3 on failure. */
  private async addAndHandOut(rec: EndpointRecord, net: NetworkRecord, list: LoadedConfList, clock: PhaseClock): Promise<EndpointRecord> {
    const progress: CreateProgress = { added: false, clock, chainPicksAddresses: net.addresses === "cni" };
    try {
      let ready = await this.deps.strategyOf(rec).create(rec, list, progress);
      // A null-IPAM network: the record keeps what the chain's IPAM chose (Docker has no other
      // copy), from the chain's result, or from the IPAM alone when it took the address ahead.
      if (net.addresses === "cni" && !ready.ipamHeld) ready = { ...ready, ...chainAddresses(ready.result!, ready.ifName, list.conflist.name) };
      // The dhcp daemon took the lease in the staging namespace; Join's follow-up moves it.
      if (usesDhcp(list.conflist)) ready = { ...ready, dhcpLease: "staging" };
      await this.deps.state.putEndpoint(ready);
      clock.mark("save");
      return ready;
    } catch (err) {
      // After an ADD whose own cleanup failed (a plugin whose DEL fails where its ADD did), the
      // chain's state may be left: that needs the full, convergent teardown too.
      await this.rollBack(rec, net, progress.added || addLeftState(err));
      const e = withContext(err, `cni-shim could not attach the container to CNI network "${list.conflist.name}"`);
      if (usesDhcp(list.conflist) && !progress.added) {
        e.message += ` (its IPAM is dhcp: a DHCP server must answer on the network's segment, and the dhcp daemon must run; its log is dhcp-daemon*.log in cni-shim's state dir when cni-shim started it)`;
      }
      throw e;
    }
  }

  /** Step 3: undo a CreateEndpoint that failed. The runtime already rolled back a failed ADD; anything after it needs a full DEL. */
  private async rollBack(rec: EndpointRecord, net: NetworkRecord, added: boolean): Promise<void> {
    try {
      if (added) await this.deps.endpoints.remove(rec, net);
      else {
        await this.deps.strategyOf(rec).release(rec);
        await this.deps.state.deleteEndpoint(rec.id);
      }
    } catch (cleanupErr) {
      log.error("rollback of failed CreateEndpoint failed; reconciliation will retry", { endpoint: rec.id.slice(0, 12), error: (cleanupErr as Error).message });
    }
  }

  async operInfo(req: api.EndpointRequest): Promise<Record<string, unknown>> {
    const rec = await this.deps.state.getEndpoint(req.EndpointID);
    if (!rec) return {};
    const net = await this.deps.state.getNetwork(rec.networkId);
    return { "cni.network": net?.conflist.name, "cni.address": rec.address, "cni.mac": rec.macAddress, "cni.portMappings": rec.portMappings };
  }

  async join(req: api.JoinRequest): Promise<api.JoinResponse> {
    const clock = phaseClock();
    this.deps.joinArrived?.(req);
    let strategy: AttachStrategy | undefined;
    return this.deps.locks.run(req.EndpointID, async () => {
      clock.mark("lock");
      const rec = await this.deps.state.getEndpoint(req.EndpointID);
      if (!rec || rec.phase === "adding" || rec.phase === "deleting") throw new Error(`endpoint ${req.EndpointID.slice(0, 12)} was not created by cni-shim (or its creation failed): remove the container and start it again`);
      const list = networkConfList(await this.deps.network(rec.networkId));
      await this.checkPortsWith(rec, req);
      clock.mark("record");
      strategy = this.deps.strategyOf(rec);
      const joined = await strategy
        .join(rec, req, list, clock)
        .catch((err: unknown) => Promise.reject(withContext(err, `cni-shim could not attach the container to CNI network "${list.conflist.name}"`)));
      await this.deps.state.putEndpoint(joined.rec);
      clock.mark("save");
      // ms: where Join's time went (in the container's namespace, "add" is the chain, plugin execs included).
      const fields = { endpoint: rec.id.slice(0, 12), address: rec.address, mac: joined.rec.macAddress, ms: clock.done() };
      if (joined.rec.attach === "in-sandbox") log.info("endpoint joined in its sandbox", { ...fields, ifName: joined.rec.ifName });
      // addedIn: the chain ran in the container's namespace, then its interface went on to Docker (the soak counts these).
      else log.info("endpoint joined", joined.addedInSandbox ? { ...fields, addedIn: "sandbox" } : fields);
      this.deps.afterJoin?.(joined.rec, list);
      return joined.reply;
    }).finally(() => setImmediate(() => strategy?.afterJoin())); // setImmediate: once the reply is written
  }

  /**
   * An endpoint that left its published ports to another endpoint (reclaim.ts) must join the
   * same container: another one asking for the same fixed ports gets Docker's "port is already
   * allocated".
   */
  private async checkPortsWith(rec: EndpointRecord, req: api.JoinRequest): Promise<void> {
    if (!rec.portsWith) return;
    const holder = await this.deps.state.getEndpoint(rec.portsWith);
    if (!holder || holder.phase !== "joined" || holder.sandboxKey === req.SandboxKey) return;
    const m = holder.portMappings[0];
    throw new Error(m ? portInUse(m.hostIP, m.hostPort, holder.id) : `endpoint ${rec.id.slice(0, 12)} was created for another container's ports: remove the container and start it again`);
  }

  async leave(req: api.EndpointRequest): Promise<void> {
    await this.deps.locks.run(req.EndpointID, async () => {
      const rec = await this.deps.state.getEndpoint(req.EndpointID);
      if (rec && rec.phase === "joined") await this.deps.state.putEndpoint(await this.deps.strategyOf(rec).leave(rec));
    });
  }

  async delete(req: api.EndpointRequest): Promise<void> {
    await this.deps.locks.run(req.EndpointID, async () => {
      const found = await this.deps.state.getEndpoint(req.EndpointID);
      if (!found || this.deps.queue.has(found.id)) return; // never created, or already going: idempotent
      // Marked before we reply: whatever happens to this process, the next one finishes it.
      const rec: EndpointRecord = { ...found, phase: "deleting" };
      await this.deps.state.putEndpoint(rec);
      if (this.deps.teardownMode === "sync") return this.deps.endpoints.remove(rec);
      this.deps.queue.start(rec);
    });
  }
}
