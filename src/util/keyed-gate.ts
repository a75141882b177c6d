/**
 * Per key, many holders of the shared side at once, or one of the exclusive side alone. The
 * exclusive side waits for the shared holders to finish and keeps new ones waiting meanwhile
 * (so a steady stream of shared holders cannot starve it).
 */
export class KeyedGate {
  private readonly gates = new Map<string, { shared: number; exclusive?: Promise<void>; drained?: () => void }>();

  private entry(key: string) {
    let g = this.gates.get(key);
    if (!g) this.gates.set(key, (g = { shared: 0 }));
    return g;
  }

  async shared<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const g = this.entry(key);
    // Checked and taken with no await between: no exclusive holder can slip in.
    while (g.exclusive) await g.exclusive;
    g.shared++;
    try {
      return await fn();
    } finally {
      if (--g.shared === 0) g.drained?.();
    }
  }

  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const g = this.entry(key);
    while (g.exclusive) await g.exclusive;
    let done!: () => void;
    g.exclusive = new Promise<void>((r) => (done = r));
    try {
      while (g.shared > 0) await new Promise<void>((r) => (g.drained = r));
      return await fn();
    } finally {
      g.exclusive = undefined;
      g.drained = undefined;
      done();
    }
  }
}
