// Endpoint teardowns that run in the background (after DeleteEndpoint replied, or left by an
// earlier process), and waiting for those that could collide with a new call.
import type { StateStore, EndpointRecord } from "./state.js";
import type { KeyedMutex } from "../util/keyed-mutex.js";
import { fromEarlierBoot } from "../host/boot.js";
import { log } from "../util/log.js";

export interface TeardownQueueDeps {
  state: StateStore;
  /** The driver's per-endpoint lock: a background teardown holds it like any other call. */
  locks: KeyedMutex;
  /** Full teardown of a record, which deletes it on success. */
  remove(rec: EndpointRecord): Promise<void>;
}

export class TeardownQueue {
  /** Background teardowns still running, by endpoint id. */
  private readonly pending = new Map<string, { rec: EndpointRecord; done: Promise<void> }>();

  constructor(private readonly deps: TeardownQueueDeps) {}

  /** A background teardown of this endpoint is queued or running. */
  has(endpointId: string): boolean {
    return this.pending.has(endpointId);
  }

  /**
   * Tear an endpoint down in the background. The record stays until the teardown succeeded; a
   * failure is retried by reconciliation, a crash by the next process's recovery.
   */
  start(rec: EndpointRecord): void {
    if (this.pending.has(rec.id)) return;
    const { state, locks } = this.deps;
    const done = locks
      .run(rec.id, async () => {
        const fresh = await state.getEndpoint(rec.id);
        // Only the incarnation we were asked to remove (a retried CreateEndpoint reuses the id).
        if (fresh && fresh.createdAt === rec.createdAt) await this.deps.remove(fresh);
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
    for (const rec of await this.deps.state.listEndpoints()) {
      if (!fromEarlierBoot(rec.bootId) && rec.phase !== "deleting" && rec.phase !== "adding") continue;
      if (this.deps.locks.busy(rec.id)) continue;
      log.info("recovering endpoint left by an earlier process", { endpoint: rec.id.slice(0, 12), phase: rec.phase, earlierBoot: fromEarlierBoot(rec.bootId) });
      this.start(rec);
      n++;
    }
    return n;
  }

  /** Wait for background teardowns matching `filter` (all when omitted). */
  async settle(filter: (rec: EndpointRecord) => boolean = () => true): Promise<void> {
    await Promise.all([...this.pending.values()].filter((p) => filter(p.rec)).map((p) => p.done));
  }
}
