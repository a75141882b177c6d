// Where the time of one operation goes, step by step, for the log (the benchmark reads it).
export interface PhaseClock {
  /** The time since the previous mark (or the start) is counted as `name`. */
  mark(name: string): void;
  /** Milliseconds per phase, and the total. */
  done(): Record<string, number>;
}

export function phaseClock(now: () => number = () => performance.now()): PhaseClock {
  const start = now();
  let last = start;
  const phases: Record<string, number> = {};
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    mark(name) {
      const t = now();
      phases[name] = round((phases[name] ?? 0) + t - last);
      last = t;
    },
    done() {
      return { ...phases, total: round(now() - start) };
    },
  };
}
