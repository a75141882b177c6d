// The cni-shim network driver: libnetwork calls in, CNI chains run in a staging namespace per
// endpoint, the interface handed to Docker (see shared design notes "handoff").
import type Docker from "dockerode";
import type { NetworkDriver } from "../libnetwork/server.js";
import type * as api from "../libnetwork/schemas.js";
import { CniRuntime } from "../cni/runtime.js";
import { confListFromObject, findConfList, type LoadedConfList } from "../cni/config.js";
import { ConfList, Result, type CacheEntry } from "../cni/schemas.js";
import { convergentDel } from "../host/teardown.js";
import { currentBootId, fromEarlierBoot } from "../host/boot.js";
import { access } from "node:fs/promises";
import { StateStore, type EndpointRecord, type NetworkRecord } from "./state.js";
import * as tr from "./translate.js";
import * as netns from "../host/netns.js";
import { readRoutes } from "../host/routes.js";
import { choosePorts } from "./ports.js";
import { hostLocalDir, removeBridgeIfUnused, removeHostLocalDirIfEmpty } from "../host/leftovers.js";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import { sameIP } from "../util/ip.js";
import type { PortRequest } from "./translate.js";

export const DEFAULT_TEMPLATE = "cni-shim-default";

export interface DriverOptions {
  runtime: CniRuntime;
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
}

export interface ReconcileReport {
  endpointsRemoved: string[];
  networksRemoved: string[];
  cacheEntriesRemoved: number;
  errors: string[];
}

function withContext(err: unknown, context: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  e.message = `${context}: ${e.message}`;
  return e;
}

export class CniShimDriver implements NetworkDriver {
  private readonly locks = new KeyedMutex();
  /** Background teardowns still running, by endpoint id. */
  private readonly pending = new Map<string, { rec: EndpointRecord; done: Promise<void> }>();
  private reconcileTimer?: NodeJS.Timeout;
  private reconciling?: Promise<ReconcileReport>;

  constructor(readonly opts: DriverOptions) {}

  private get runtime() {
    return this.opts.runtime;
  }
  private get state() {
    return this.opts.state;
  }

  private static loaded(net: NetworkRecord): LoadedConfList {
    return confListFromObject(net.conflist, `network ${net.id.slice(0, 12)} (${net.source})`);
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
      if (bridge && !(await netns.linkExists(bridge))) ownedBridge = bridge;
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
      createdAt: new Date().toISOString(),
    });
    log.info("network created", { network: req.NetworkID.slice(0, 12), cniNetwork: list.name, mode, source });
  }

  async deleteNetwork(networkId: string): Promise<void> {
    const net = await this.state.getNetwork(networkId);
    if (!net) return;
    await this.settle((rec) => rec.networkId === networkId);
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
    const list = CniShimDriver.loaded(net).conflist;
    const others = (await this.state.listNetworks()).filter((n) => n.id !== net.id);
    if (net.ownedBridge && !others.some((n) => n.ownedBridge === net.ownedBridge)) {
      await removeBridgeIfUnused(net.ownedBridge).catch((err: Error) => log.warn("could not remove bridge", { bridge: net.ownedBridge, error: err.message }));
    }
    const dir = hostLocalDir(list);
    if (dir && !others.some((n) => (n.conflist as { name?: string }).name === list.name)) {
      await removeHostLocalDirIfEmpty(dir).catch((err: Error) => log.warn("could not clean host-local dir", { dir, error: err.message }));
    }
  }

  // ---- endpoints --------------------------------------------------------------------------

  async createEndpoint(req: api.CreateEndpointRequest): Promise<api.CreateEndpointResponse> {
    const ports0 = tr.portRequests(req.Options);
    const wanted = [req.Interface?.Address, req.Interface?.AddressIPv6].filter((a): a is string => !!a);
    // A teardown still running for this endpoint (Docker retries CreateEndpoint with the same id
    // after a failure), the same address or a host port must finish first. Outside the lock:
    // a background teardown takes the endpoint's lock itself.
    await this.settle(
      (p) =>
        p.id === req.EndpointID ||
        (p.networkId === req.NetworkID && wanted.some((w) => sameIP(w, p.address) || sameIP(w, p.addressIPv6))) ||
        p.portMappings.some((m) => ports0.some((r) => r.protocol === m.protocol && r.hostPortStart <= m.hostPort && m.hostPort <= r.hostPortEnd)),
    );
    return this.locks.run(req.EndpointID, async () => {
      const net = await this.network(req.NetworkID);
      const list = CniShimDriver.loaded(net);
      const existing = await this.state.getEndpoint(req.EndpointID);
      if (existing && (existing.phase === "ready" || existing.phase === "joined") && !fromEarlierBoot(existing.bootId)) return this.createReply(req, existing);
      // A CreateEndpoint cut short (plugin killed mid-ADD) or a teardown never finished: converge first.
      if (existing) await this.teardown(existing, await this.state.getNetwork(existing.networkId));
      await this.reclaimReassignedAddresses(req, net);
      await this.reclaimFixedPorts(req, ports0);
      const taken = new Set((await this.state.listEndpoints()).flatMap((e) => e.portMappings.map((p) => `${p.protocol}/${p.hostPort}`)));
      const ports = await choosePorts(ports0, taken);
      const plan = tr.planAttachment(req, ports);
      let rec: EndpointRecord = {
        id: req.EndpointID,
        networkId: req.NetworkID,
        phase: "adding",
        cniContainerId: plan.cniContainerId,
        ifName: plan.ifName,
        stagingNetns: plan.stagingNetns,
        tmpName: plan.tmpName,
        address: req.Interface?.Address || undefined,
        addressIPv6: req.Interface?.AddressIPv6 || undefined,
        macAddress: tr.requestedMac(req),
        portMappings: ports,
        cniArgs: plan.cniArgs,
        capabilityArgs: plan.capabilityArgs,
        bootId: currentBootId(),
        createdAt: new Date().toISOString(),
      };
      // Recorded before anything is created, so a crash mid-way is found and undone later.
      await this.state.putEndpoint(rec);
      let added = false;
      try {
        await netns.ensureNetns(plan.stagingNetns);
        const out = await this.runtime.add(list, {
          containerId: plan.cniContainerId,
          netns: netns.netnsPath(plan.stagingNetns),
          ifName: plan.ifName,
          args: plan.cniArgs,
          capabilityArgs: plan.capabilityArgs,
        });
        added = true;
        const { mac } = tr.verifyResult(out.result, plan.ifName, [rec.address, rec.addressIPv6], list.conflist.name);
        // The move to the host drops the interface's routes: read them first, Join replays them.
        const routes = await readRoutes(plan.stagingNetns, plan.ifName, rec.addressIPv6 ? [4, 6] : [4]);
        await netns.handOut(plan.stagingNetns, plan.ifName, plan.tmpName);
        rec = { ...rec, phase: "ready", result: out.result, routes, macAddress: rec.macAddress ?? mac };
        await this.state.putEndpoint(rec);
      } catch (err) {
        // The runtime already rolled back a failed ADD; anything after it needs a full DEL.
        try {
          if (added) await this.teardown(rec, net);
          else {
            await netns.deleteNetns(plan.stagingNetns);
            await this.state.deleteEndpoint(rec.id);
          }
        } catch (cleanupErr) {
          log.error("rollback of failed CreateEndpoint failed; reconciliation will retry", { endpoint: rec.id.slice(0, 12), error: (cleanupErr as Error).message });
        }
        throw withContext(err, `cni-shim could not attach the container to CNI network "${list.conflist.name}"`);
      }
      log.info("endpoint attached", { endpoint: rec.id.slice(0, 12), cniNetwork: list.conflist.name, address: rec.address, mac: rec.macAddress, ports: ports.length });
      return this.createReply(req, rec);
    });
  }

  /**
   * Docker's IPAM owns the addresses of its networks and never hands out one that is in use, so
   * an endpoint of ours on this network that still holds the address Docker just assigned is
   * stale (Docker dropped it, e.g. across a dockerd restart, without telling us). Tear it down
   * now, without asking Docker, or host-local would refuse the address.
   */
  private async reclaimReassignedAddresses(req: api.CreateEndpointRequest, net: NetworkRecord): Promise<void> {
    const wanted = [req.Interface?.Address, req.Interface?.AddressIPv6].filter((a): a is string => !!a);
    if (!wanted.length) return;
    const stale = (await this.state.listEndpoints()).filter(
      (e) => e.networkId === req.NetworkID && e.id !== req.EndpointID && wanted.some((w) => sameIP(w, e.address) || sameIP(w, e.addressIPv6)),
    );
    for (const ep of stale) {
      log.warn("Docker reassigned the address of an endpoint it dropped: removing the stale endpoint", { stale: ep.id.slice(0, 12), address: ep.address, endpoint: req.EndpointID.slice(0, 12) });
      await this.locks.run(ep.id, async () => {
        const fresh = await this.state.getEndpoint(ep.id);
        if (fresh) await this.teardown(fresh, net);
      });
    }
  }

  /**
   * A fixed host port (-p 8080:80) that another record of ours holds: taken over when that
   * record is dead by the kernel's evidence (another boot, a teardown or an ADD that never
   * finished, its container's namespace gone), refused like Docker's bridge when it is live.
   */
  private async reclaimFixedPorts(req: api.CreateEndpointRequest, requests: PortRequest[]): Promise<void> {
    const fixed = requests.filter((r) => r.hostPortStart !== 0 && r.hostPortStart === r.hostPortEnd);
    if (!fixed.length) return;
    for (const ep of await this.state.listEndpoints()) {
      if (ep.id === req.EndpointID) continue;
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
    }
  }

  /** Nothing of the record lives any more (never asks Docker: this runs inside Docker's calls). */
  private async isDead(rec: EndpointRecord): Promise<boolean> {
    if (this.locks.busy(rec.id) || this.pending.has(rec.id)) return false; // being worked on right now
    if (fromEarlierBoot(rec.bootId) || rec.phase === "deleting" || rec.phase === "adding") return true;
    if (rec.phase === "ready") return !(await netns.linkExists(rec.tmpName)) && !(await netns.netnsExists(rec.stagingNetns));
    // Joined, yet back in the host namespace under our name: Docker tore the sandbox down
    // (it moves interfaces back on the way out) without Leave, e.g. across a dockerd crash.
    if (await netns.linkExists(rec.tmpName)) return true;
    if (!rec.sandboxKey || !(await access(rec.sandboxKey).then(() => true, () => false))) return true;
    // The sandbox is there: live only if our address is still in it.
    return rec.address ? !(await netns.addressInNamespaceFile(rec.sandboxKey, rec.address)) : false;
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
      if (!(await netns.linkExists(rec.tmpName))) {
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
      if (!found || this.pending.has(found.id)) return; // never created, or already going: idempotent
      // Marked before we reply: whatever happens to this process, the next one finishes it.
      const rec: EndpointRecord = { ...found, phase: "deleting" };
      await this.state.putEndpoint(rec);
      if (!this.opts.backgroundTeardown) return this.teardown(rec, await this.state.getNetwork(rec.networkId));
      this.startTeardown(rec);
    });
  }

  /**
   * Tear an endpoint down in the background. The record stays until the teardown succeeded; a
   * failure is retried by reconciliation, a crash by the next process's recovery.
   */
  private startTeardown(rec: EndpointRecord): void {
    if (this.pending.has(rec.id)) return;
    const done = this.locks
      .run(rec.id, async () => {
        const fresh = await this.state.getEndpoint(rec.id);
        // Only the incarnation we were asked to remove (a retried CreateEndpoint reuses the id).
        if (fresh && fresh.createdAt === rec.createdAt) await this.teardown(fresh, await this.state.getNetwork(fresh.networkId));
      })
      .catch((err: Error) => log.error("background teardown failed; reconciliation will retry", { endpoint: rec.id.slice(0, 12), error: err.message }))
      .finally(() => this.pending.delete(rec.id));
    this.pending.set(rec.id, { rec, done });
  }

  /**
   * At start: finish what an earlier process (or boot) left. Records of another boot describe
   * kernel state that no longer exists; "deleting" and "adding" records belong to calls that
   * died with that process. All go, in the background; calls that collide with them wait.
   */
  async recover(): Promise<number> {
    let n = 0;
    for (const rec of await this.state.listEndpoints()) {
      if (!fromEarlierBoot(rec.bootId) && rec.phase !== "deleting" && rec.phase !== "adding") continue;
      if (this.locks.busy(rec.id)) continue;
      log.info("recovering endpoint left by an earlier process", { endpoint: rec.id.slice(0, 12), phase: rec.phase, earlierBoot: fromEarlierBoot(rec.bootId) });
      this.startTeardown(rec);
      n++;
    }
    return n;
  }

  /** Wait for background teardowns matching `filter` (all when omitted). */
  async settle(filter: (rec: EndpointRecord) => boolean = () => true): Promise<void> {
    await Promise.all([...this.pending.values()].filter((p) => filter(p.rec)).map((p) => p.done));
  }

  /**
   * Full CNI DEL for an endpoint, wherever its interface is now: back in the host namespace
   * (after Leave), still in the staging namespace (failed hand-out), or gone with its container.
   */
  private async teardown(rec: EndpointRecord, net: NetworkRecord | undefined): Promise<void> {
    const cached = await this.runtime.cache.read(net ? (net.conflist as { name: string }).name : "", rec.cniContainerId, rec.ifName).catch(() => undefined);
    const list = net ? CniShimDriver.loaded(net) : cached ? CniRuntime.confListOf(cached) : undefined;
    await convergentDel(this.runtime, {
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
    log.info("endpoint removed", { endpoint: rec.id.slice(0, 12), address: rec.address });
  }

  // ---- reconciliation ---------------------------------------------------------------------

  activated(): void {
    // Docker activates a plugin once per daemon lifetime: a (re)started dockerd may have
    // dropped endpoints without telling us. Look soon, without blocking the call.
    this.scheduleReconcile(5_000);
  }

  scheduleReconcile(delayMs: number): void {
    if (!this.opts.docker || this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      this.reconcile().catch((err) => log.warn("reconciliation failed", { error: (err as Error).message }));
    }, delayMs);
    this.reconcileTimer.unref();
  }

  /** Stop timers and let background teardowns finish (bounded, so shutdown cannot hang). */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    this.reconcileTimer = undefined;
    await Promise.race([this.settle(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** Compare our records with what Docker still has; tear down what it forgot. One at a time. */
  async reconcile(): Promise<ReconcileReport> {
    this.reconciling ??= this.reconcileOnce().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  /** An endpoint of this CNI container id is being created or removed right now. */
  private busyContainer(cniContainerId: string, records: EndpointRecord[]): boolean {
    // Our CNI container id is the endpoint id (translate.planAttachment); look both up anyway.
    return this.locks.busy(cniContainerId) || records.some((e) => e.cniContainerId === cniContainerId && (this.locks.busy(e.id) || this.pending.has(e.id)));
  }

  /** Cached attachments of ours with no record: converged away like an endpoint, in their own stand-in. */
  private async removeOrphanCacheEntries(orphans: CacheEntry[]): Promise<void> {
    for (const entry of orphans) {
      const names = tr.endpointNames(entry.containerId);
      await this.locks.run(entry.containerId, () =>
        convergentDel(this.runtime, {
          list: CniRuntime.confListOf(entry),
          attachment: { containerId: entry.containerId, ifName: entry.ifName, args: entry.cniArgs, capabilityArgs: entry.capabilityArgs },
          result: Result.safeParse(entry.result).data,
          standInNetns: names.stagingNetns,
          hostName: names.tmpName,
          label: { cacheEntry: `${entry.networkName}/${entry.containerId.slice(0, 12)}/${entry.ifName}` },
        }),
      );
    }
  }

  private async reconcileOnce(): Promise<ReconcileReport> {
    const report: ReconcileReport = { endpointsRemoved: [], networksRemoved: [], cacheEntriesRemoved: 0, errors: [] };
    const docker = this.opts.docker;
    if (!docker) throw new Error("reconciliation needs the Docker API, which is not configured");
    const grace = this.opts.reconcileGraceMs ?? 60_000;
    const networks = await this.state.listNetworks();
    // Per network: the endpoint ids Docker still has, "gone", or unknown (Docker did not answer).
    const dockerView = new Map<string, Set<string> | "gone">();
    for (const net of networks) {
      try {
        const info = (await docker.getNetwork(net.id).inspect()) as { Containers?: Record<string, { EndpointID: string }> };
        dockerView.set(net.id, new Set(Object.values(info.Containers ?? {}).map((c) => c.EndpointID)));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) dockerView.set(net.id, "gone");
        else report.errors.push(`network ${net.id.slice(0, 12)}: Docker did not answer (${(err as Error).message}); left alone`);
      }
    }
    const now = Date.now();
    for (const ep of await this.state.listEndpoints()) {
      const view = dockerView.get(ep.networkId);
      const orphanNetwork = !networks.some((n) => n.id === ep.networkId);
      if (!orphanNetwork && view === undefined) continue; // uncertain: never touch
      if (view instanceof Set && view.has(ep.id)) continue;
      if (now - Date.parse(ep.createdAt) < grace || this.locks.busy(ep.id) || this.pending.has(ep.id)) continue;
      try {
        await this.locks.run(ep.id, async () => {
          const fresh = await this.state.getEndpoint(ep.id);
          if (fresh) await this.teardown(fresh, networks.find((n) => n.id === ep.networkId));
        });
        report.endpointsRemoved.push(ep.id);
      } catch (err) {
        report.errors.push(`endpoint ${ep.id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    const remaining = await this.state.listEndpoints();
    for (const net of networks) {
      if (dockerView.get(net.id) === "gone") {
        if (remaining.some((e) => e.networkId === net.id)) continue;
        await this.removeNetworkResources(net);
        await this.state.deleteNetwork(net.id);
        report.networksRemoved.push(net.id);
        continue;
      }
      // CNI cache entries with no endpoint record (a crash between ADD and our bookkeeping).
      // Every record counts as valid, whatever its network: two Docker networks may share a
      // CNI network name, and an endpoint's container id is its own.
      try {
        const list = CniShimDriver.loaded(net);
        // Attachments of others in the same cache dir and CNI network (`cni-shim attach`, a
        // kubelet) are not ours to judge: only entries added in our staging namespaces are.
        const entries = await this.runtime.cache.list(list.conflist.name);
        const ours = (e: CacheEntry) => e.netns === netns.netnsPath(tr.endpointNames(e.containerId).stagingNetns);
        const recorded = new Set(remaining.map((e) => `${e.cniContainerId}/${e.ifName}`));
        const orphans = entries.filter((e) => ours(e) && !recorded.has(`${e.containerId}/${e.ifName}`) && !this.busyContainer(e.containerId, remaining));
        await this.removeOrphanCacheEntries(orphans);
        report.cacheEntriesRemoved += orphans.length;
        const valid = [...remaining.map((e) => ({ containerId: e.cniContainerId, ifName: e.ifName })), ...entries.filter((e) => !ours(e)).map((e) => ({ containerId: e.containerId, ifName: e.ifName }))];
        await this.runtime.gc(list, valid, (cid) => this.busyContainer(cid, remaining));
      } catch (err) {
        report.errors.push(`gc of ${net.id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    log.info("reconciled with Docker", { ...report, endpointsRemoved: report.endpointsRemoved.length, networksRemoved: report.networksRemoved.length });
    return report;
  }
}
