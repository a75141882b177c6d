// Everything compare creates is registered here before it is created, and removed in reverse
// order at the end: after success, after a failure, and on Ctrl-C / SIGTERM.
export class Cleanup {
  private readonly stack: Array<{ what: string; undo: () => Promise<unknown> }> = [];
  private chain: Promise<string[]> = Promise.resolve([]);

  /** Register the undo of something about to be created (the undo must tolerate "not there"). */
  add(what: string, undo: () => Promise<unknown>): void {
    this.stack.push({ what, undo });
  }

  get pending(): number {
    return this.stack.length;
  }

  /** Undo everything registered so far, newest first; returns what could not be undone. Serialised, so it may be called again. */
  run(onStep?: (what: string) => void): Promise<string[]> {
    this.chain = this.chain.then(async () => {
      const errors: string[] = [];
      for (let item = this.stack.pop(); item; item = this.stack.pop()) {
        onStep?.(item.what);
        try {
          await item.undo();
        } catch (err) {
          errors.push(`${item.what}: ${(err as Error).message}`);
        }
      }
      return errors;
    });
    return this.chain;
  }
}
