// The leak verdict of a phase: what its "after" look has that its "before" look had not, less
// what live endpoints and running containers hold (leaks.ts takes the looks). Pure, so tested apart.

export type Kind = "ipReservations" | "veths" | "bridges" | "netns" | "chains" | "rules" | "cacheFiles" | "endpointRecords" | "networkRecords";
/** Each kind's items, and ("kind:item") those a live endpoint or running container holds. */
export type Snapshot = Record<Kind, string[]> & { liveOwned: string[] };
export type Leaks = Partial<Record<Kind, string[]>>;
const KINDS: Kind[] = ["ipReservations", "veths", "bridges", "netns", "chains", "rules", "cacheFiles", "endpointRecords", "networkRecords"];

export function leaked(before: Snapshot, after: Snapshot): Leaks {
  const out: Leaks = {};
  for (const k of KINDS) {
    const extra = after[k].filter((x) => !before[k].includes(x) && !after.liveOwned.includes(`${k}:${x}`));
    if (extra.length) out[k] = extra;
  }
  return out;
}

/**
 * The leaks of a phase once what is left stopped going away. The host may run other cni-shims
 * (the README quick start, a user's) whose containers a dockerd kill restarted: their old
 * addresses and rules go with those plugins' background teardowns, which may finish after this
 * phase's first look (seen: the quick start's kind addresses, gone a minute later). So items
 * that clear within `settleMs` are reported apart (`cleared`), not as leaks; the phase's own
 * plugin settled and ran gc before the first look, so what it leaves does not clear by itself.
 */
export async function settledLeaks(before: Snapshot, look: () => Promise<Snapshot>, { settleMs = 60_000, everyMs = 5_000, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) } = {}): Promise<{ leaks: Leaks; cleared: Leaks }> {
  const first = leaked(before, await look());
  let left = first;
  for (let waited = 0; Object.keys(left).length && waited < settleMs; waited += everyMs) {
    await sleep(everyMs);
    const now = leaked(before, await look());
    left = {};
    for (const k of KINDS) {
      const still = (first[k] ?? []).filter((x) => now[k]?.includes(x));
      if (still.length) left[k] = still;
    }
  }
  const cleared: Leaks = {};
  for (const k of KINDS) {
    const gone = (first[k] ?? []).filter((x) => !left[k]?.includes(x));
    if (gone.length) cleared[k] = gone;
  }
  return { leaks: left, cleared };
}
