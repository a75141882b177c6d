// The soak's leak verdict: what another plugin's background teardown clears within the settle
// time is reported apart; what stays is a leak; what appears after the first look is not this phase's.
import { describe, expect, it } from "vitest";
import { settledLeaks, type Snapshot } from "../../scripts/soak/leak-verdict.js";

const snap = (ipReservations: string[], rules: string[] = []): Snapshot => ({
  ipReservations,
  veths: [],
  bridges: [],
  netns: [],
  chains: [],
  rules,
  cacheFiles: [],
  endpointRecords: [],
  networkRecords: [],
  liveOwned: [],
});

function looks(...snaps: Snapshot[]) {
  let i = 0;
  return { look: () => Promise.resolve(snaps[Math.min(i++, snaps.length - 1)]!), count: () => i };
}

const fast = { settleMs: 30, everyMs: 10, sleep: () => Promise.resolve() };

describe("settledLeaks", () => {
  it("looks once when nothing leaked", async () => {
    const l = looks(snap(["a"]));
    expect(await settledLeaks(snap(["a"]), l.look, fast)).toEqual({ leaks: {}, cleared: {} });
    expect(l.count()).toBe(1);
  });

  it("reports what cleared apart from what stayed, and ignores what appeared after the first look", async () => {
    const before = snap(["kept"]);
    const l = looks(snap(["kept", "qs/10.244.0.3", "own/10.1.0.9"], ["r1"]), snap(["kept", "own/10.1.0.9", "later/1"], ["r1"]), snap(["kept", "own/10.1.0.9", "later/1"]));
    const out = await settledLeaks(before, l.look, fast);
    expect(out.leaks).toEqual({ ipReservations: ["own/10.1.0.9"] });
    expect(out.cleared).toEqual({ ipReservations: ["qs/10.244.0.3"], rules: ["r1"] });
    expect(l.count()).toBe(4); // the first look, then one per step until the settle time is up
  });

  it("stops as soon as everything cleared", async () => {
    const l = looks(snap(["x"]), snap([]));
    expect(await settledLeaks(snap([]), l.look, fast)).toEqual({ leaks: {}, cleared: { ipReservations: ["x"] } });
    expect(l.count()).toBe(2);
  });
});
