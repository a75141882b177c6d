// Reconciliation with Docker: tear down endpoints and networks Docker forgot and CNI cache
// entries nobody recorded, then CNI GC; one run at a time, on a timer or on request.
import { CniRuntime } from "../cni/runtime.js";
import { CNI_NAME_RE, Result, type CacheEntry } from "../cni/schemas.js";
import type { LoadedConfList } from "../cni/config.js";
import type { HostLocalReservation } from "../cni/host-local.js";
import type { StateStore, EndpointRecord, NetworkRecord } from "./state.js";
import type { TeardownQueue } from "./teardown-queue.js";
import { networkConfList } from "./network-conf.js";
import type { Clock, CniOps, DockerNetworks, HostOps, Teardown } from "./seams.js";
import { endpointNames } from "./names-from-ids.js";
import type { KeyedMutex } from "../util/keyed-mutex.js";
import { log } from "../util/log.js";
import type { EndpointCheck } from "./endpoint-check.js";
import { isPreparedNetns } from "../host/netns-pool.js";
import { basename } from "node:path";

export interface ReconcileReport {
  endpointsRemoved: string[];
  networksRemoved: string[];
  cacheEntriesRemoved: number;
  /** Addresses host-local still reserved for attachments nothing held (a forgotten ADD), now released. */
  reservationsReleased: string[];
  /** Endpoints whose chain CHECK complained (short id: complaint); logged at warn, not errors. */
  drifted: string[];
  errors: string[];
}

export interface ReconcilerDeps {
  state: StateStore;
  cni: Pick<CniOps, "cache" | "gc" | "unheldReservations">;
  host: Pick<HostOps, "netnsPath">;
  /** Undefined: reconciliation is not possible (and never scheduled). */
  docker?: DockerNetworks;
  /** The driver's per-endpoint lock. */
  locks: KeyedMutex;
  queue: Pick<TeardownQueue, "has">;
  /** For cache entries with no record. */
  teardown: Teardown;
  /** Endpoints younger than this are never reaped (Docker may be mid-start). */
  graceMs: number;
  now: Clock;
  /** The driver's full teardown of an endpoint (under its lock, as its record reads then; deletes the record). */
  removeEndpoint(id: string, net: NetworkRecord | undefined): Promise<void>;
  /** What a removed network leaves on the host (its bridge, host-local's dir). */
  removeNetworkResources(net: NetworkRecord): Promise<void>;
  /** Bring cni-shim's forward chain in line with the records, at the end of each run. */
  convergeForward?(): Promise<void>;
  /** After each run, whatever its outcome. */
  reconciled?(): void;
  /** CHECK of a joined endpoint's chain (endpoint-check.ts); none: drift is not looked for. */
  checkEndpoint?(rec: EndpointRecord, net: NetworkRecord): Promise<EndpointCheck>;
}

/**
 * The endpoint a CNI cache entry without a record belongs to. attachment-plan.ts planAttachment uses
 * the endpoint id as the CNI container id, so that endpoint's lock is keyed by the same id.
 */
const endpointIdOfUnrecorded = (cniContainerId: string) => cniContainerId;

export class Reconciler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<ReconcileReport>;

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Reconcile in `delayMs` unless a run is already scheduled (nothing without Docker). */
  schedule(delayMs: number): void {
    if (!this.deps.docker || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reconcile().catch((err) => log.warn("reconciliation failed", { error: (err as Error).message }));
    }, delayMs);
    this.timer.unref();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Compare our records with what Docker still has; tear down what it forgot. One at a time. */
  reconcile(): Promise<ReconcileReport> {
    this.running ??= this.reconcileOnce().finally(() => {
      this.running = undefined;
      this.deps.reconciled?.();
    });
    return this.running;
  }

  /**
   * An attachment of this CNI container id is being created or removed right now. Locks and
   * background teardowns are keyed by endpoint id: the records say which endpoints own the
   * CNI container id, and an entry with no record is locked under its would-be endpoint's id.
   */
  private attachmentBusy(cniContainerId: string, records: EndpointRecord[]): boolean {
    const owners = new Set([endpointIdOfUnrecorded(cniContainerId), ...records.filter((e) => e.cniContainerId === cniContainerId).map((e) => e.id)]);
    return [...owners].some((id) => this.deps.locks.busy(id) || this.deps.queue.has(id));
  }

  /** Cached attachments of ours with no record: converged away like an endpoint, in their own stand-in. */
  private async removeOrphanCacheEntries(orphans: CacheEntry[]): Promise<void> {
    for (const entry of orphans) {
      const names = endpointNames(entry.containerId);
      await this.deps.locks.run(endpointIdOfUnrecorded(entry.containerId), () =>
        this.deps.teardown({
          list: CniRuntime.confListOf(entry),
          attachment: { containerId: entry.containerId, ifName: entry.ifName, args: entry.cniArgs, capabilityArgs: entry.capabilityArgs },
          result: Result.safeParse(entry.result).data,
          stagingNetns: names.stagingNetns,
          tmpName: names.tmpName,
          label: { cacheEntry: `${entry.networkName}/${entry.containerId.slice(0, 12)}/${entry.ifName}` },
        }),
      );
    }
  }

  /**
   * What forgotten attachments still hold in host-local's store (CniRuntime.unheldReservations):
   * torn down like an orphan cache entry, from the addresses alone (the teardown sweeps the
   * firewall, portmap and masquerade rules of that container id and address).
   */
  private async releaseUnheld(list: LoadedConfList, valid: Array<{ containerId: string; ifName: string }>, records: EndpointRecord[], report: ReconcileReport): Promise<void> {
    const unheld = await this.deps.cni.unheldReservations(list.conflist, valid, this.deps.graceMs);
    const byAttachment = new Map<string, HostLocalReservation[]>();
    for (const r of unheld.filter((u) => CNI_NAME_RE.test(u.containerId) && !this.attachmentBusy(u.containerId, records))) {
      const key = `${r.containerId}/${r.ifName}`;
      byAttachment.set(key, [...(byAttachment.get(key) ?? []), r]);
    }
    for (const group of byAttachment.values()) {
      const { containerId, ifName } = group[0]!;
      const names = endpointNames(containerId);
      const label = { forgotten: `${list.conflist.name}/${containerId.slice(0, 12)}/${ifName}`, addresses: group.map((r) => r.address) };
      try {
        await this.deps.locks.run(endpointIdOfUnrecorded(containerId), () =>
          this.deps.teardown({ list, attachment: { containerId, ifName: ifName || "eth0" }, intendedAddresses: label.addresses, stagingNetns: names.stagingNetns, tmpName: names.tmpName, label }),
        );
        log.warn("released what a forgotten attachment held (no record, no cached result)", label);
        report.reservationsReleased.push(...label.addresses);
      } catch (err) {
        report.errors.push(`forgotten attachment ${label.forgotten}: ${(err as Error).message}`);
      }
    }
  }

  /**
   * CHECK of every joined endpoint Docker still has that nothing works on: a plugin's complaint
   * (an address removed, a flushed rule) is drift, logged at warn; nothing is repaired.
   */
  private async logDrift(networks: NetworkRecord[], dockerView: Map<string, Set<string> | "gone">, report: ReconcileReport): Promise<void> {
    if (!this.deps.checkEndpoint) return;
    for (const ep of await this.deps.state.listEndpoints()) {
      const net = networks.find((n) => n.id === ep.networkId);
      const view = dockerView.get(ep.networkId);
      if (!net || ep.phase !== "joined" || !(view instanceof Set) || !view.has(ep.id) || this.deps.locks.busy(ep.id) || this.deps.queue.has(ep.id)) continue;
      const out = await this.deps.checkEndpoint(ep, net).catch((err: Error): EndpointCheck => ({ endpoint: ep.id, status: "failed", message: err.message }));
      if (out.status !== "failed") continue;
      log.warn("endpoint drifted from its CNI result (CHECK)", { endpoint: ep.id.slice(0, 12), cniNetwork: net.conflist.name, complaint: out.message });
      report.drifted.push(`${ep.id.slice(0, 12)}: ${out.message}`);
    }
  }

  /** Per network: the endpoint ids Docker still has, "gone", or unknown (Docker did not answer). */
  private async dockerView(docker: DockerNetworks, networks: NetworkRecord[], report: ReconcileReport): Promise<Map<string, Set<string> | "gone">> {
    const dockerView = new Map<string, Set<string> | "gone">();
    for (const net of networks) {
      try {
        const info = await docker.inspect(net.id);
        dockerView.set(net.id, new Set(Object.values(info.Containers ?? {}).map((c) => c.EndpointID)));
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) dockerView.set(net.id, "gone");
        else report.errors.push(`network ${net.id.slice(0, 12)}: Docker did not answer (${(err as Error).message}); left alone`);
      }
    }
    return dockerView;
  }

  private async reconcileOnce(): Promise<ReconcileReport> {
    const { state, cni, host, locks, queue } = this.deps;
    const report: ReconcileReport = { endpointsRemoved: [], networksRemoved: [], cacheEntriesRemoved: 0, reservationsReleased: [], drifted: [], errors: [] };
    const docker = this.deps.docker;
    if (!docker) throw new Error("reconciliation needs the Docker API, which is not configured");
    const grace = this.deps.graceMs;
    const networks = await state.listNetworks();
    const dockerView = await this.dockerView(docker, networks, report);
    const now = this.deps.now();
    for (const ep of await state.listEndpoints()) {
      const view = dockerView.get(ep.networkId);
      const orphanNetwork = !networks.some((n) => n.id === ep.networkId);
      if (!orphanNetwork && view === undefined) continue; // uncertain: never touch
      if (view instanceof Set && view.has(ep.id)) continue;
      if (now - Date.parse(ep.createdAt) < grace || locks.busy(ep.id) || queue.has(ep.id)) continue;
      try {
        await this.deps.removeEndpoint(ep.id, networks.find((n) => n.id === ep.networkId));
        report.endpointsRemoved.push(ep.id);
      } catch (err) {
        report.errors.push(`endpoint ${ep.id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    const remaining = await state.listEndpoints();
    for (const net of networks) {
      if (dockerView.get(net.id) === "gone") {
        // Docker stores a network after CreateNetwork is answered: a young one may only look gone
        // (a swarm worker creates its network again at each first task).
        if (remaining.some((e) => e.networkId === net.id) || now - Date.parse(net.createdAt) < grace) continue;
        await this.deps.removeNetworkResources(net);
        await state.deleteNetwork(net.id);
        report.networksRemoved.push(net.id);
        continue;
      }
      // CNI cache entries with no endpoint record (a crash between ADD and our bookkeeping).
      // Every record counts as valid, whatever its network: two Docker networks may share a
      // CNI network name, and an endpoint's container id is its own.
      try {
        const list = networkConfList(net);
        // Attachments of others in the same cache dir and CNI network (`cni-shim attach`, a
        // kubelet) are not ours to judge: only entries added in our staging namespaces are.
        const entries = await cni.cache.list(list.conflist.name);
        // Our staging namespaces: named after the endpoint, or prepared ahead (cni-shim-p<pid>-<n>).
        const ours = (e: CacheEntry) => e.netns === host.netnsPath(endpointNames(e.containerId).stagingNetns) || (!!e.netns && isPreparedNetns(basename(e.netns)) && e.netns === host.netnsPath(basename(e.netns)));
        const recorded = new Set(remaining.map((e) => `${e.cniContainerId}/${e.ifName}`));
        const orphans = entries.filter((e) => ours(e) && !recorded.has(`${e.containerId}/${e.ifName}`) && !this.attachmentBusy(e.containerId, remaining));
        await this.removeOrphanCacheEntries(orphans);
        report.cacheEntriesRemoved += orphans.length;
        const valid = [...remaining.map((e) => ({ containerId: e.cniContainerId, ifName: e.ifName })), ...entries.filter((e) => !ours(e)).map((e) => ({ containerId: e.containerId, ifName: e.ifName }))];
        await cni.gc(list, valid, (cniContainerId) => this.attachmentBusy(cniContainerId, remaining)).catch((err: Error) => report.errors.push(`gc of ${net.id.slice(0, 12)}: ${err.message}`));
        await this.releaseUnheld(list, valid, remaining, report);
      } catch (err) {
        report.errors.push(`gc of ${net.id.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    await this.logDrift(networks, dockerView, report);
    if (this.deps.convergeForward) await this.deps.convergeForward().catch((err: Error) => report.errors.push(`forward chain: ${err.message}`));
    log.info("reconciled with Docker", { ...report, endpointsRemoved: report.endpointsRemoved.length, networksRemoved: report.networksRemoved.length });
    return report;
  }
}
