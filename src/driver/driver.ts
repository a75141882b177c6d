// The cni-shim network driver, the libnetwork calls. A CNI chain runs in a staging namespace
// per endpoint; its interface is then handed out to the host namespace under a temporary name
// (Join gives that name to Docker, which moves the interface into the container itself).
// Background teardowns are in teardown-queue.ts, reconciliation with Docker in reconcile.ts.
import type Docker from "dockerode";
import type { NetworkDriver } from "../libnetwork/server.js";
import type * as api from "../libnetwork/schemas.js";
import { CniRuntime } from "../cni/runtime.js";
import { findConfList } from "../cni/config.js";
import { ConfList, Result } from "../cni/schemas.js";
import { convergentDel } from "../host/teardown.js";
import { currentBootId, fromEarlierBoot } from "../host/boot.js";
import { StateStore, type EndpointRecord, type NetworkRecord } from "./state.js";
import * as tr from "./translate.js";
import { choosePorts } from "./ports.js";
import { hostLocalDir } from "../host/leftovers.js";
import { networkConfList } from "./network-conf.js";
import { TeardownQueue } from "./teardown-queue.js";
import { Reconciler, type ReconcileReport } from "./reconcile.js";
import { dockerNetworksOf, realHost, type Clock, type CniOps, type DockerNetworks, type DriverEvents, type HostOps, type Teardown } from "./seams.js";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import { phaseClock } from "../util/phases.js";
import { sameIP } from "../util/ip.js";
import type { PortRequest } from "./translate.js";

export type { ReconcileReport } from "./reconcile.js";

export const DEFAULT_TEMPLATE = "cni-shim-default";

interface DriverOptionsCommon {
  state: StateStore;
  /** Where -o cni.network=NAME and the default template are looked up, in order. */
  confDirs: string[];
  docker?: Docker;
  /** Endpoints younger than this are never reaped by reconciliation (Docker may be mid-start). */
  reconcileGraceMs?: number;
  /**
   * Run the CNI DEL of DeleteEndpoint after replying (default), taking it off the critical path
   * of `docker stop`/`docker run --rm`. Anything that could collide with a teardown still in
   * flight (same address, same host port, network removal, shutdown) waits for it first.
   */
  backgroundTeardown?: boolean;
  /** Namespaces and links (default: iproute2 on this host). */
  host?: HostOps;
  /** What reconciliation asks Docker (default: `docker`'s network inspect). */
  dockerNetworks?: DockerNetworks;
  /** Default Date.now. */
  now?: Clock;
  /** Told of Plugin.Activate and of each finished reconciliation. */
  events?: DriverEvents;
}

/**
 * The real CniRuntime brings its own teardown (convergentDel with it); any other CniOps (a
 * test's fake) comes with the teardown to use.
 */
export type DriverOptions = DriverOptionsCommon & ({ runtime: CniRuntime; teardown?: Teardown } | { runtime: CniOps; teardown: Teardown });

function withContext(err: unknown, context: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  e.message = `${context}: ${e.message}`;
  return e;
}

export class CniShimDriver implements NetworkDriver {
  private readonly locks = new KeyedMutex();
  private readonly host: HostOps;
  private readonly teardownAttachment: Teardown;
  private readonly now: Clock;
  private readonly queue: TeardownQueue;
  private readonly reconciler: Reconciler;

  constructor(readonly opts: DriverOptions) {
    this.host = opts.host ?? realHost;
    // Without an injected teardown the runtime is the real one (DriverOptions says so).
    this.teardownAttachment = opts.teardown ?? ((target) => convergentDel(opts.runtime as CniRuntime, target));
    this.now = opts.now ?? Date.now;
    this.queue = new TeardownQueue({
      state: opts.state,
      locks: this.locks,
      remove: async (rec) => this.teardown(rec, await this.state.getNetwork(rec.networkId)),
    });
    this.reconciler = new Reconciler({
      state: opts.state,
      cni: opts.runtime,
      host: this.host,
      docker: opts.dockerNetworks ?? (opts.docker ? dockerNetworksOf(opts.docker) : undefined),
      locks: this.locks,
      queue: this.queue,
      teardown: this.teardownAttachment,
      graceMs: opts.reconcileGraceMs ?? 60_000,
      now: this.now,
      removeEndpoint: (rec, net) => this.teardown(rec, net),
      removeNetworkResources: (net) => this.removeNetworkResources(net),
      reconciled: () => opts.events?.reconciled?.(),
    });
  }

  private get runtime(): CniOps {
    return this.opts.runtime;
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

  async createNetwork(req: api.CreateNetworkRequest): Promise<void> {
    const opts = tr.networkOptions(req);
    let list: ConfList;
    let source: string;
    let mode: NetworkRecord["mode"];
    if (opts.cniNetwork) {
      const found = await findConfList(this.opts.confDirs, opts.cniNetwork);
      tr.checkPoolsMatch(found.conflist, req);
      list = found.conflist;
      source = found.source;
      mode = "named";
    } else {
      const template = await findConfList(this.opts.confDirs, DEFAULT_TEMPLATE);
      list = tr.instantiateDefault(template.conflist, req, opts);
      source = `${template.source} (instantiated)`;
      mode = "default";
    }
    if (req.IPv6Data.length && tr.hostLocalRanges(list)?.every((r) => !r.subnet.includes(":"))) {
      throw new Error(`CNI network "${list.name}" has no IPv6 range but the Docker network has IPv6 enabled: drop --ipv6 or add an IPv6 range to the conflist`);
    }
    // Missing plugin binaries and version mismatches fail here, at `docker network create`.
    await this.runtime.prepare(list);
    for (const setting of tr.namespaceWideSettings(list)) {
      log.warn("setting cannot reach the container", {
        network: list.name,
        setting,
        why: "the chain runs in a staging namespace and only the interface moves into the container; pass it with docker run --sysctl instead",
      });
    }
    let ownedBridge: string | undefined;
    if (mode === "default") {
      const bridge = list.plugins.find((p) => p.type === "bridge")?.bridge as string | undefined;
      if (bridge && !(await this.host.linkExists(bridge))) ownedBridge = bridge;
    }
    const first4 = req.IPv4Data[0];
    const first6 = req.IPv6Data[0];
    await this.state.putNetwork({
      id: req.NetworkID,
      mode,
      conflist: list as Record<string, unknown>,
      source,
      ownedBridge,
      ipv4: first4 ? { pool: first4.Pool, gateway: first4.Gateway } : undefined,
      ipv6: first6 ? { pool: first6.Pool, gateway: first6.Gateway } : undefined,
      internal: opts.internal,
      createdAt: new Date(this.now()).toISOString(),
    });
    log.info("network created", { network: req.NetworkID.slice(0, 12), cniNetwork: list.name, mode, source });
  }

  async deleteNetwork(networkId: string): Promise<void> {
    const net = await this.state.getNetwork(networkId);
    if (!net) return;
    await this.queue.settle((rec) => rec.networkId === networkId);
    for (const ep of (await this.state.listEndpoints()).filter((e) => e.networkId === networkId)) {
      await this.locks.run(ep.id, async () => {
        const fresh = await this.state.getEndpoint(ep.id);
        if (fresh) await this.teardown(fresh, net);
      });
    }
    await this.removeNetworkResources(net);
    await this.state.deleteNetwork(networkId);
  }

  /** What the plugins leave after the last container: the bridge we named, host-local's dir. */
  private async removeNetworkResources(net: NetworkRecord): Promise<void> {
    const list = networkConfList(net).conflist;
    const others = (await this.state.listNetworks()).filter((n) => n.id !== net.id);
    if (net.ownedBridge && !others.some((n) => n.ownedBridge === net.ownedBridge)) {
      await this.host.removeBridgeIfUnused(net.ownedBridge).catch((err: Error) => log.warn("could not remove bridge", { bridge: net.ownedBridge, error: err.message }));
    }
    const dir = hostLocalDir(list);
    if (dir && !others.some((n) => (n.conflist as { name?: string }).name === list.name)) {
      await this.host.removeHostLocalDirIfEmpty(dir).catch((err: Error) => log.warn("could not clean host-local dir", { dir, error: err.message }));
    }
  }

  // ---- endpoints --------------------------------------------------------------------------

  async createEndpoint(req: api.CreateEndpointRequest): Promise<api.CreateEndpointResponse> {
    const clock = phaseClock();
    const ports0 = tr.portRequests(req.Options);
    const wanted = [req.Interface?.Address, req.Interface?.AddressIPv6].filter((a): a is string => !!a);
    // A teardown still running for this endpoint (Docker retries CreateEndpoint with the same id
    // after a failure), the same address or a host port must finish first. Outside the lock:
    // a background teardown takes the endpoint's lock itself.
    await this.queue.settle(
      (p) =>
        p.id === req.EndpointID ||
        (p.networkId === req.NetworkID && wanted.some((w) => sameIP(w, p.address) || sameIP(w, p.addressIPv6))) ||
        p.portMappings.some((m) => ports0.some((r) => r.protocol === m.protocol && r.hostPortStart <= m.hostPort && m.hostPort <= r.hostPortEnd)),
    );
    clock.mark("settle");
    // Once the reply is out (setImmediate runs after it is written), prepare the next namespace.
    const prepareNext = () => setImmediate(() => this.host.prepareNetns());
    return this.locks.run(req.EndpointID, async () => {
      clock.mark("lock");
      const net = await this.network(req.NetworkID);
      const list = networkConfList(net);
      const existing = await this.state.getEndpoint(req.EndpointID);
      if (existing && (existing.phase === "ready" || existing.phase === "joined") && !fromEarlierBoot(existing.bootId)) return this.createReply(req, existing);
      // A CreateEndpoint cut short (plugin killed mid-ADD) or a teardown never finished: converge first.
      if (existing) await this.teardown(existing, await this.state.getNetwork(existing.networkId));
      // One listing of the records serves the reclaims and the port choice.
      const others = (await this.state.listEndpoints()).filter((e) => e.id !== req.EndpointID);
      const reclaimed = await this.reclaimReassignedAddresses(req, net, others);
      for (const id of await this.reclaimFixedPorts(req, ports0, others.filter((e) => !reclaimed.has(e.id)))) reclaimed.add(id);
      const taken = new Set(others.filter((e) => !reclaimed.has(e.id)).flatMap((e) => e.portMappings.map((p) => `${p.protocol}/${p.hostPort}`)));
      const ports = await choosePorts(ports0, taken);
      clock.mark("records");
      const plan = tr.planAttachment(req, ports, { ipsCapability: tr.takesIpsCapability(list.conflist) });
      // A namespace prepared off the critical path, else one of the endpoint's own name, made
      // below once the record names it.
      const prepared = await this.host.takePreparedNetns();
      const stagingNetns = prepared ?? plan.stagingNetns;
      let rec: EndpointRecord = {
        id: req.EndpointID,
        networkId: req.NetworkID,
        phase: "adding",
        cniContainerId: plan.cniContainerId,
        ifName: plan.ifName,
        stagingNetns,
        tmpName: plan.tmpName,
        address: req.Interface?.Address || undefined,
        addressIPv6: req.Interface?.AddressIPv6 || undefined,
        macAddress: tr.requestedMac(req),
        portMappings: ports,
        cniArgs: plan.cniArgs,
        capabilityArgs: plan.capabilityArgs,
        bootId: currentBootId(),
        createdAt: new Date(this.now()).toISOString(),
      };
      // Recorded before anything goes into the namespace, so a crash mid-way is found and undone
      // later (a prepared namespace no record names is swept once its process is gone).
      await this.state.putEndpoint(rec).catch(async (err: Error) => {
        if (prepared) await this.host.deleteNetns(prepared).catch(() => undefined);
        throw err;
      });
      clock.mark("record");
      let added = false;
      try {
        if (!prepared) await this.host.ensureNetns(stagingNetns);
        clock.mark("netns");
        const out = await this.runtime.add(list, {
          containerId: plan.cniContainerId,
          netns: this.host.netnsPath(stagingNetns),
          ifName: plan.ifName,
          args: plan.cniArgs,
          capabilityArgs: plan.capabilityArgs,
        });
        added = true;
        clock.mark("add");
        const { mac } = tr.verifyResult(out.result, plan.ifName, [rec.address, rec.addressIPv6], list.conflist.name);
        // The move to the host drops the interface's routes: Join replays the ones read before it.
        const routes = await this.host.handOut(stagingNetns, plan.ifName, plan.tmpName);
        clock.mark("handOut");
        rec = { ...rec, phase: "ready", result: out.result, routes, macAddress: rec.macAddress ?? mac };
        await this.state.putEndpoint(rec);
        clock.mark("save");
      } catch (err) {
        // The runtime already rolled back a failed ADD; anything after it needs a full DEL.
        try {
          if (added) await this.teardown(rec, net);
          else {
            await this.host.deleteNetns(stagingNetns);
            await this.state.deleteEndpoint(rec.id);
          }
        } catch (cleanupErr) {
          log.error("rollback of failed CreateEndpoint failed; reconciliation will retry", { endpoint: rec.id.slice(0, 12), error: (cleanupErr as Error).message });
        }
        throw withContext(err, `cni-shim could not attach the container to CNI network "${list.conflist.name}"`);
      }
      // ms: where the time went ("add" is the chain, plugin execs included; the rest is cni-shim's).
      log.info("endpoint attached", { endpoint: rec.id.slice(0, 12), cniNetwork: list.conflist.name, address: rec.address, mac: rec.macAddress, ports: ports.length, ms: clock.done() });
      return this.createReply(req, rec);
    }).finally(prepareNext);
  }

  /**
   * Docker's IPAM owns the addresses of its networks and never hands out one that is in use, so
   * an endpoint of ours on this network that still holds the address Docker just assigned is
   * stale (Docker dropped it, e.g. across a dockerd restart, without telling us). Tear it down
   * now, without asking Docker, or host-local would refuse the address.
   */
  private async reclaimReassignedAddresses(req: api.CreateEndpointRequest, net: NetworkRecord, others: EndpointRecord[]): Promise<Set<string>> {
    const wanted = [req.Interface?.Address, req.Interface?.AddressIPv6].filter((a): a is string => !!a);
    const stale = others.filter((e) => e.networkId === req.NetworkID && wanted.some((w) => sameIP(w, e.address) || sameIP(w, e.addressIPv6)));
    for (const ep of stale) {
      log.warn("Docker reassigned the address of an endpoint it dropped: removing the stale endpoint", { stale: ep.id.slice(0, 12), address: ep.address, endpoint: req.EndpointID.slice(0, 12) });
      await this.locks.run(ep.id, async () => {
        const fresh = await this.state.getEndpoint(ep.id);
        if (fresh) await this.teardown(fresh, net);
      });
    }
    return new Set(stale.map((e) => e.id));
  }

  /**
   * A fixed host port (-p 8080:80) that another record of ours holds: taken over when that
   * record is dead by the kernel's evidence (another boot, a teardown or an ADD that never
   * finished, its container's namespace gone), refused like Docker's bridge when it is live.
   */
  private async reclaimFixedPorts(req: api.CreateEndpointRequest, requests: PortRequest[], others: EndpointRecord[]): Promise<string[]> {
    const fixed = requests.filter((r) => r.hostPortStart !== 0 && r.hostPortStart === r.hostPortEnd);
    const reclaimed: string[] = [];
    if (!fixed.length) return reclaimed;
    for (const ep of others) {
      const clash = fixed.find((r) => ep.portMappings.some((m) => m.protocol === r.protocol && m.hostPort === r.hostPortStart && (!m.hostIP || !r.hostIP || sameIP(m.hostIP, r.hostIP))));
      if (!clash) continue;
      if (!(await this.isDead(ep))) {
        throw new Error(`Bind for ${clash.hostIP ?? "0.0.0.0"}:${clash.hostPortStart} failed: port is already allocated (endpoint ${ep.id.slice(0, 12)} publishes it): stop that container or publish another port`);
      }
      log.warn("a dead endpoint held a host port: removing it", { stale: ep.id.slice(0, 12), port: `${clash.protocol}/${clash.hostPortStart}`, endpoint: req.EndpointID.slice(0, 12) });
      await this.locks.run(ep.id, async () => {
        const fresh = await this.state.getEndpoint(ep.id);
        if (fresh) await this.teardown(fresh, await this.state.getNetwork(fresh.networkId));
      });
      reclaimed.push(ep.id);
    }
    return reclaimed;
  }

  /** Nothing of the record lives any more (never asks Docker: this runs inside Docker's calls). */
  private async isDead(rec: EndpointRecord): Promise<boolean> {
    if (this.locks.busy(rec.id) || this.queue.has(rec.id)) return false; // being worked on right now
    if (fromEarlierBoot(rec.bootId) || rec.phase === "deleting" || rec.phase === "adding") return true;
    if (rec.phase === "ready") return !(await this.host.linkExists(rec.tmpName)) && !(await this.host.netnsExists(rec.stagingNetns));
    // Joined, yet back in the host namespace under our name: Docker tore the sandbox down
    // (it moves interfaces back on the way out) without Leave, e.g. across a dockerd crash.
    if (await this.host.linkExists(rec.tmpName)) return true;
    if (!rec.sandboxKey || !(await this.host.sandboxExists(rec.sandboxKey))) return true;
    // The sandbox is there: live only if our address is still in it.
    return rec.address ? !(await this.host.addressInNamespaceFile(rec.sandboxKey, rec.address)) : false;
  }

  private createReply(req: api.CreateEndpointRequest, rec: EndpointRecord): api.CreateEndpointResponse {
    // Docker refuses changes to fields it set; a MAC it left empty may be filled in.
    if (!req.Interface?.MacAddress && rec.macAddress) return { Interface: { MacAddress: rec.macAddress } };
    return {};
  }

  async endpointOperInfo(req: api.EndpointRequest): Promise<Record<string, unknown>> {
    const rec = await this.state.getEndpoint(req.EndpointID);
    if (!rec) return {};
    const net = await this.state.getNetwork(rec.networkId);
    return {
      "cni.network": (net?.conflist as { name?: string } | undefined)?.name,
      "cni.address": rec.address,
      "cni.mac": rec.macAddress,
      "cni.portMappings": rec.portMappings,
    };
  }

  async join(req: api.JoinRequest): Promise<api.JoinResponse> {
    return this.locks.run(req.EndpointID, async () => {
      const rec = await this.state.getEndpoint(req.EndpointID);
      if (!rec || rec.phase === "adding" || rec.phase === "deleting") throw new Error(`endpoint ${req.EndpointID.slice(0, 12)} was not created by cni-shim (or its creation failed): remove the container and start it again`);
      if (!(await this.host.linkExists(rec.tmpName))) {
        throw new Error(`interface ${rec.tmpName} of endpoint ${req.EndpointID.slice(0, 12)} is not in the host namespace (already joined elsewhere?): disconnect and connect the container again`);
      }
      await this.state.putEndpoint({ ...rec, phase: "joined", sandboxKey: req.SandboxKey });
      return tr.joinResponse(rec);
    });
  }

  async leave(req: api.EndpointRequest): Promise<void> {
    // Docker moves the interface back to the host namespace itself; DeleteEndpoint does the rest.
    await this.locks.run(req.EndpointID, async () => {
      const rec = await this.state.getEndpoint(req.EndpointID);
      if (rec && rec.phase === "joined") await this.state.putEndpoint({ ...rec, phase: "ready", sandboxKey: undefined });
    });
  }

  async programExternalConnectivity(): Promise<void> {
    // Port publishing is portmap's job and already happened in the ADD at CreateEndpoint.
  }
  async revokeExternalConnectivity(): Promise<void> {}

  async deleteEndpoint(req: api.EndpointRequest): Promise<void> {
    await this.locks.run(req.EndpointID, async () => {
      const found = await this.state.getEndpoint(req.EndpointID);
      if (!found || this.queue.has(found.id)) return; // never created, or already going: idempotent
      // Marked before we reply: whatever happens to this process, the next one finishes it.
      const rec: EndpointRecord = { ...found, phase: "deleting" };
      await this.state.putEndpoint(rec);
      if (!this.opts.backgroundTeardown) return this.teardown(rec, await this.state.getNetwork(rec.networkId));
      this.queue.start(rec);
    });
  }

  /** Finish what an earlier process (or boot) left: see TeardownQueue.recover. */
  async recover(): Promise<number> {
    const referenced = new Set((await this.state.listEndpoints()).map((e) => e.stagingNetns));
    const swept = await this.host.sweepPreparedNetns(referenced);
    if (swept.length) log.info("removed staging namespaces prepared by an earlier process", { netns: swept });
    this.host.prepareNetns();
    return this.queue.recover();
  }

  /** Wait for background teardowns matching `filter` (all when omitted). */
  async settle(filter: (rec: EndpointRecord) => boolean = () => true): Promise<void> {
    await this.queue.settle(filter);
  }

  /**
   * Full CNI DEL for an endpoint, wherever its interface is now: back in the host namespace
   * (after Leave), still in the staging namespace (failed hand-out), or gone with its container.
   */
  private async teardown(rec: EndpointRecord, net: NetworkRecord | undefined): Promise<void> {
    const started = performance.now();
    const cached = await this.runtime.cache.read(net ? (net.conflist as { name: string }).name : "", rec.cniContainerId, rec.ifName).catch(() => undefined);
    const list = net ? networkConfList(net) : cached ? CniRuntime.confListOf(cached) : undefined;
    await this.teardownAttachment({
      list,
      attachment: { containerId: rec.cniContainerId, ifName: rec.ifName, args: rec.cniArgs, capabilityArgs: rec.capabilityArgs },
      result: rec.result ?? (cached ? Result.safeParse(cached.result).data : undefined),
      intendedAddresses: [rec.address, rec.addressIPv6].filter((a): a is string => !!a),
      standInNetns: rec.stagingNetns,
      hostName: rec.tmpName,
      addressInUse: async () => {
        const others = (await this.state.listEndpoints()).filter((e) => e.id !== rec.id);
        return (ip) => others.some((e) => sameIP(ip, e.address) || sameIP(ip, e.addressIPv6));
      },
      label: { endpoint: rec.id.slice(0, 12), phase: rec.phase },
    });
    await this.state.deleteEndpoint(rec.id);
    log.info("endpoint removed", { endpoint: rec.id.slice(0, 12), address: rec.address, ms: Math.round(performance.now() - started) });
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
    await Promise.race([this.settle(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    await this.host.drainNetns();
  }

  /** Compare our records with what Docker still has; tear down what it forgot. One at a time. */
  async reconcile(): Promise<ReconcileReport> {
    const report = await this.reconciler.reconcile();
    // Namespaces prepared by a process killed before it could remove them (never a live one's).
    const referenced = new Set((await this.state.listEndpoints()).map((e) => e.stagingNetns));
    const swept = await this.host.sweepPreparedNetns(referenced).catch(() => []);
    if (swept.length) log.info("removed staging namespaces prepared by an earlier process", { netns: swept });
    return report;
  }
}
