// Staging namespaces made ahead of need: `ip netns add` is an exec on the critical path of
// every container start, so a few wait ready and the next is made after one is taken. Names
// carry the owner's pid (cni-shim-p<pid>-<n>): a process only ever sweeps the pool of processes
// that are gone, never a live one's.
import { readdir } from "node:fs/promises";
import { addNetns, deleteNetns, netnsExists, NETNS_DIR } from "./netns.js";
import { log } from "../util/log.js";
import { ownedByLiveProcess, processAlive } from "../util/pid.js";

const POOL_RE = /^cni-shim-p(\d+)-\d+$/;

/** Is this a namespace name the pool makes (cni-shim-p<pid>-<n>)? Endpoint ids are hex: no clash. */
export const isPreparedNetns = (name: string) => POOL_RE.test(name);

/** One a live process prepared: its pool, not a leftover (leak checks use this). */
export const isLivePreparedNetns = (name: string): boolean => ownedByLiveProcess(POOL_RE, name);

/** Numbers the names across every pool of the process, so that no two ever share one. */
let seq = 0;

export class NetnsPool {
  private readonly ready: string[] = [];
  private filling?: Promise<void>;
  private stopped = false;

  constructor(private readonly size = 2) {}

  /**
   * A prepared, empty named namespace, or undefined when none is ready (the caller makes its
   * own, after recording its name). Makes none itself: see refill().
   */
  async take(): Promise<string | undefined> {
    this.stopped = false;
    for (let name = this.ready.shift(); name; name = this.ready.shift()) if (await netnsExists(name)) return name;
    return undefined;
  }

  /**
   * Make namespaces until `size` are ready, in the background. Each is an exec, whose spawn
   * costs the event loop a few ms: call it once the caller's reply is out.
   */
  refill(): void {
    if (this.stopped || this.filling || this.size <= 0) return;
    this.filling = (async () => {
      while (!this.stopped && this.ready.length < this.size) {
        const name = `cni-shim-p${process.pid}-${++seq}`;
        try {
          await addNetns(name); // fails on a name that exists: never hands out someone else's
        } catch (err) {
          log.warn("could not prepare a staging namespace ahead; endpoints make their own", { netns: name, error: (err as Error).message });
          return;
        }
        if (this.stopped) return void (await deleteNetns(name).catch(() => undefined));
        this.ready.push(name);
      }
    })().finally(() => (this.filling = undefined));
  }

  /** Remove the namespaces still waiting (at shutdown). */
  async drain(): Promise<void> {
    this.stopped = true;
    await this.filling;
    for (const name of this.ready.splice(0)) await deleteNetns(name).catch((err: Error) => log.warn("could not remove a prepared staging namespace", { netns: name, error: err.message }));
  }

  /** Pool namespaces of processes that died before they drained, unless a record still names one. */
  static async sweepOrphans(referenced: Set<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(NETNS_DIR).catch(() => [] as string[])) {
      const m = POOL_RE.exec(name);
      if (!m || referenced.has(name) || processAlive(Number(m[1]))) continue;
      await deleteNetns(name).then(
        () => removed.push(name),
        (err: Error) => log.warn("could not remove a staging namespace left by an earlier process", { netns: name, error: err.message }),
      );
    }
    return removed;
  }
}
