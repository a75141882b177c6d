// CreateEndpoint's STATUS of a network's chain (spec 1.1: one exec per plugin, 5 for the default
// chain), remembered as ready for a short window (docs/design.md#status-before-createendpoint):
// starts that come together (Compose, `--scale`, back to back) ask once. Only "ready" is
// remembered, counted from when its STATUS started, so a plugin that is not ready from time T
// fails every CreateEndpoint from T + window on; a failure is never remembered (the next
// CreateEndpoint asks again, and goes on as soon as the plugin is ready).
import type { Clock } from "./seams.js";

/** Short against a plugin's own not-ready spells (a daemon restarting), long against a burst of starts. */
export const READY_WINDOW_MS = 2_000;

export class ReadyMemo {
  /** By the network's parsed list (network-conf.ts shares one per network record). */
  private readonly asked = new WeakMap<object, { at: number; done: Promise<void> }>();

  constructor(
    private readonly now: Clock,
    private readonly windowMs = READY_WINDOW_MS,
  ) {}

  /**
   * Resolves when the network is ready: by a STATUS started within the window that was ready (or
   * is still running: its answer is shared), else by a new one (`status`).
   */
  ready(list: object, status: () => Promise<void>): Promise<void> {
    const at = this.now();
    const last = this.asked.get(list);
    if (last && at - last.at < this.windowMs) return last.done;
    const entry = { at, done: status() };
    this.asked.set(list, entry);
    entry.done.catch(() => {
      if (this.asked.get(list) === entry) this.asked.delete(list);
    });
    return entry.done;
  }
}
