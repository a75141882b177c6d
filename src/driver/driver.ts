// The cni-shim network driver: the libnetwork calls, wired to the parts that do the work.
//   networks.ts            CreateNetwork, DeleteNetwork
//   endpoints.ts           CreateEndpoint (reserve, add and hand out, roll back), Join, Leave, DeleteEndpoint
//   attach-strategy.ts     how the interface reaches the container (staging-handoff.ts, in-sandbox.ts;
//                          attach-choice.ts says which one new endpoints get)
//   reclaim.ts             stale endpoints in the way of a new one (its address, a fixed port)
//   endpoint-teardown.ts   removing an endpoint, wherever its interface is
//   teardown-queue.ts      teardowns after DeleteEndpoint replied, and waiting for them
//   reconcile.ts           reconciliation with Docker
import type { NetworkDriver } from "../libnetwork/server.js";
import type * as api from "../libnetwork/schemas.js";
import type { CniRuntime } from "../cni/runtime.js";
import { convergentDel } from "../teardown/convergent.js";
import { log } from "../util/log.js";
import { KeyedMutex } from "../util/keyed-mutex.js";
import type { AttachKind, AttachStrategy } from "./attach-strategy.js";
import { EndpointTeardown } from "./endpoint-teardown.js";
import { DEFAULT_TEARDOWN_MODE, Endpoints, type TeardownMode } from "./endpoints.js";
import type { ForwardAccept } from "./forward-accept.js";
import { Networks, notReady } from "./networks.js";
import { checkEndpoint } from "./endpoint-check.js";
import { Reclaimer } from "./reclaim.js";
import { Reconciler, type ReconcileReport } from "./reconcile.js";
import { ReadyMemo } from "./ready-memo.js";
import { realHost, type Clock, type CniOps, type DhcpOps, type DockerContainers, type DockerNetworks, type DriverEvents, type HostOps, type Teardown } from "./seams.js";
import { DhcpLeases } from "./dhcp-leases.js";
import { usesDhcp } from "../cni/dhcp.js";
import { networkConfList } from "./network-conf.js";
import { StagingHandoff } from "./staging-handoff.js";
import { InSandbox } from "./in-sandbox.js";
import { AttachChoice, kindForNetwork } from "./attach-choice.js";
import type { EndpointRecord, NetworkRecord, StateStore } from "./state.js";
import type { KeysOpened } from "../host/sandbox-key.js";
import { TeardownQueue } from "./teardown-queue.js";

export type { ReconcileReport } from "./reconcile.js";
export type { TeardownMode } from "./endpoints.js";

interface DriverOptionsCommon {
  state: StateStore;
  /** Where -o cni.network=NAME and the default template are looked up, in order. */
  confDirs: string[];
  /** Endpoints younger than this are never reaped by reconciliation (Docker may be mid-start). */
  reconcileGraceMs?: number;
  /**
   * "background" (DEFAULT_TEARDOWN_MODE): the CNI DEL of DeleteEndpoint runs after the reply,
   * off the critical path of `docker stop`/`docker run --rm`; anything that could collide with
   * a teardown still in flight (same address, same host port, network removal, shutdown) waits
   * for it first. "sync": before the reply.
   */
  teardownMode?: TeardownMode;
  /** Namespaces and links (default: iproute2 on this host). */
  host?: HostOps;
  /** What reconciliation asks Docker; without it there is no reconciliation. */
  dockerNetworks?: DockerNetworks;
  /** What an in-sandbox Join asks Docker (which containers have networks cni-shim does not drive); without it the namespace alone decides. */
  dockerContainers?: DockerContainers;
  /** Default Date.now. */
  now?: Clock;
  /** Which attach strategy new endpoints get (default: auto, nothing kept on disk). */
  attach?: AttachChoice;
  /** Told of Plugin.Activate and of each finished reconciliation. */
  events?: DriverEvents;
  /** cni-shim's forward chain for networks whose chain accepts no forwarding (none: left alone). */
  forward?: ForwardAccept;
  /** Chains with the dhcp IPAM: its daemon and the IPAM-only calls (none: no daemon is started, leases stay where the ADD took them). */
  dhcp?: DhcpOps;
}

/**
 * The real CniRuntime brings its own teardown (convergentDel with it); any other CniOps (a
 * test's fake) comes with the teardown to use.
 */
export type DriverOptions = DriverOptionsCommon & ({ runtime: CniRuntime; teardown?: Teardown } | { runtime: CniOps; teardown: Teardown });


export class CniShimDriver implements NetworkDriver {
  private readonly locks = new KeyedMutex();
  private readonly host: HostOps;
  private readonly queue: TeardownQueue;
  private readonly reconciler: Reconciler;
  private readonly strategies: Record<AttachKind, AttachStrategy>;
  readonly choice: AttachChoice;
  private readonly endpointTeardown: EndpointTeardown;
  private readonly networks: Networks;
  private readonly endpoints: Endpoints;
  private readonly leases?: DhcpLeases;

  constructor(readonly opts: DriverOptions) {
    const { state, runtime } = opts;
    const locks = this.locks;
    const now = opts.now ?? Date.now;
    this.host = opts.host ?? realHost;
    // Without an injected teardown the runtime is the real one (DriverOptions says so).
    const teardown = opts.teardown ?? ((target) => convergentDel(runtime as CniRuntime, target));
    const choice = (this.choice = opts.attach ?? new AttachChoice("auto"));
    const handoff = new StagingHandoff({ runtime, host: this.host, now });
    const inSandbox = new InSandbox({
      runtime,
      host: this.host,
      fallback: handoff,
      observe: (sight) => choice.observe(sight),
      dockerNames: () => choice.mode !== "sandbox",
      ownLinks: async (sandboxKey) => (await state.listEndpoints()).filter((e) => e.attach === "in-sandbox" && e.phase === "joined" && e.sandboxKey === sandboxKey).map((e) => e.ifName),
      cniShimNetworks: async () => new Set((await state.listNetworks()).map((n) => n.id)),
      dockerView: opts.dockerContainers && (() => opts.dockerContainers!.view()),
    });
    this.strategies = { "staging-handoff": handoff, "in-sandbox": inSandbox };
    const strategyOf = (rec: EndpointRecord) => this.strategies[rec.attach];
    const endpoints = (this.endpointTeardown = new EndpointTeardown({ state, locks, cache: runtime.cache, teardown, strategyOf }));
    const queue = (this.queue = new TeardownQueue({ state, locks, remove: (rec) => endpoints.remove(rec) }));
    this.networks = new Networks({ state, confDirs: opts.confDirs, runtime, host: this.host, queue, endpoints, now, forward: opts.forward, dhcp: opts.dhcp, attachKind: () => choice.decide().kind });
    const ready = new ReadyMemo(now);
    const leases = (this.leases = opts.dhcp ? new DhcpLeases({ dhcp: opts.dhcp, host: this.host, state, locks }) : undefined);
    this.endpoints = new Endpoints({
      state,
      locks,
      queue,
      endpoints,
      reclaim: new Reclaimer({ locks, state, queue, endpoints, strategyOf }),
      strategyForNew: (net) => this.strategies[kindForNetwork(choice.decide().kind, net.addresses === "cni", net.conflist)],
      strategyOf,
      teardownMode: opts.teardownMode ?? DEFAULT_TEARDOWN_MODE,
      now,
      network: (id) => this.network(id),
      status: (list) => ready.ready(list, () => runtime.status(list.conflist)).catch((err: Error) => Promise.reject(notReady(list.conflist.name, err))),
      afterJoin: leases ? (rec, list) => leases.follow(rec, list) : undefined,
      // Where new endpoints join in their sandbox, the look inside it can start with the request.
      joinArrived: (req) => (choice.decide().kind === "in-sandbox" ? inSandbox.prefetch(req.EndpointID, req.SandboxKey) : undefined),
    });
    this.reconciler = new Reconciler({
      state,
      cni: runtime,
      host: this.host,
      docker: opts.dockerNetworks,
      locks,
      queue,
      teardown,
      graceMs: opts.reconcileGraceMs ?? 60_000,
      now,
      removeEndpoint: (id, net) => endpoints.removeUnderLock(id, net),
      removeNetworkResources: (net) => this.networks.removeResources(net),
      convergeForward: opts.forward && (() => opts.forward!.converge()),
      reconciled: () => opts.events?.reconciled?.(),
      checkEndpoint: (rec, net) => checkEndpoint({ cni: runtime, linkByMac: (ns, mac) => this.host.linkNameByMac(ns, mac), sight: (key) => this.host.sandboxSight(key) }, rec, net),
    });
  }

  /** How this process opens Docker's sandbox keys (the serving log; kept for doctor). */
  async sandboxKeys(): Promise<KeysOpened> {
    const opened = await this.host.describeSandboxKeys();
    await this.choice.setOpens(opened);
    return opened;
  }


  private get state() {
    return this.opts.state;
  }

  private async network(id: string): Promise<NetworkRecord> {
    const net = await this.state.getNetwork(id);
    if (!net) {
      throw new Error(`network ${id.slice(0, 12)} is unknown to cni-shim (its state dir ${this.state.dir} has no record of it): remove it with "docker network rm" and create it again`);
    }
    return net;
  }

  // ---- networks ---------------------------------------------------------------------------

  createNetwork(req: api.CreateNetworkRequest): Promise<void> {
    return this.networks.create(req);
  }

  deleteNetwork(networkId: string): Promise<void> {
    return this.networks.delete(networkId);
  }

  // ---- endpoints --------------------------------------------------------------------------

  createEndpoint(req: api.CreateEndpointRequest): Promise<api.CreateEndpointResponse> {
    return this.endpoints.create(req);
  }

  endpointOperInfo(req: api.EndpointRequest): Promise<Record<string, unknown>> {
    return this.endpoints.operInfo(req);
  }

  join(req: api.JoinRequest): Promise<api.JoinResponse> {
    return this.endpoints.join(req);
  }

  leave(req: api.EndpointRequest): Promise<void> {
    return this.endpoints.leave(req);
  }

  async programExternalConnectivity(): Promise<void> {
    // Port publishing is portmap's job and already happened in the ADD at CreateEndpoint.
  }
  async revokeExternalConnectivity(): Promise<void> {}

  deleteEndpoint(req: api.EndpointRequest): Promise<void> {
    return this.endpoints.delete(req);
  }

  /** Finish what an earlier process (or boot) left: see TeardownQueue.recover. */
  async recover(): Promise<number> {
    await this.sweepPreparedNetns();
    await this.recoverDhcp();
    await this.choice.load();
    // Staging namespaces ahead only for the hand-out.
    if (this.choice.decide().kind === "staging-handoff") this.host.prepareNetns();
    // The forward chain of the networks recorded (a reboot or a crash may have left it otherwise).
    await this.networks.convergeForward();
    return this.queue.recover();
  }

  /**
   * Chains with the dhcp IPAM: a daemon for the stored networks (one may be gone since, e.g.
   * after a reboot), and the leases of joined endpoints an earlier process did not move yet.
   */
  private async recoverDhcp(): Promise<void> {
    const dhcp = this.opts.dhcp;
    if (!dhcp) return;
    const nets = (await this.state.listNetworks()).filter((n) => usesDhcp(n.conflist));
    for (const net of nets) {
      await dhcp.ensureDaemon(net.conflist).catch((err: Error) => log.error("no dhcp daemon for a stored network: its containers get no address", { network: net.id.slice(0, 12), cniNetwork: net.conflist.name, error: err.message }));
    }
    if (!nets.length) return;
    for (const ep of await this.state.listEndpoints()) {
      const net = nets.find((n) => n.id === ep.networkId);
      if (net && ep.phase === "joined") this.leases?.follow(ep, networkConfList(net));
    }
  }

  /** Wait for background teardowns matching `filter` (all when omitted). */
  async settle(filter: (rec: EndpointRecord) => boolean = () => true): Promise<void> {
    await this.queue.settle(filter);
  }

  /** Namespaces prepared by a process killed before it could remove them (never a live one's, never one a record names). */
  private async sweepPreparedNetns(): Promise<void> {
    const referenced = new Set((await this.state.listEndpoints()).flatMap((e) => this.strategies[e.attach].namespacesOf(e)));
    const swept = await this.host.sweepPreparedNetns(referenced);
    if (swept.length) log.info("removed staging namespaces prepared by an earlier process", { netns: swept });
  }

  // ---- reconciliation ---------------------------------------------------------------------

  activated(): void {
    // Docker activates a plugin once per daemon lifetime: a (re)started dockerd may have
    // dropped endpoints without telling us. Look soon, without blocking the call.
    this.scheduleReconcile(5_000);
    this.opts.events?.activated?.();
  }

  scheduleReconcile(delayMs: number): void {
    this.reconciler.schedule(delayMs);
  }

  /** Stop timers and let background teardowns finish (bounded, so shutdown cannot hang). */
  async stop(timeoutMs = 20_000): Promise<void> {
    this.reconciler.cancel();
    await Promise.race([Promise.all([this.settle(), this.leases?.settle()]), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await this.host.drainNetns();
  }

  /** Compare our records with what Docker still has; tear down what it forgot. One at a time. */
  async reconcile(): Promise<ReconcileReport> {
    const report = await this.reconciler.reconcile();
    await this.sweepPreparedNetns().catch(() => undefined);
    return report;
  }
}
