// CreateEndpoint's STATUS remembered as ready for a short window (src/driver/ready-memo.ts).
import { describe, expect, it } from "vitest";
import { READY_WINDOW_MS, ReadyMemo } from "../../src/driver/ready-memo.js";

function memo() {
  const clock = { ms: 1_000_000 };
  return { clock, memo: new ReadyMemo(() => clock.ms) };
}

/** A STATUS that counts its runs and answers as `state.ready` says when it starts. */
function status(state: { ready: boolean; runs: number }) {
  return () => {
    state.runs++;
    return state.ready ? Promise.resolve() : Promise.reject(new Error("not ready"));
  };
}

describe("STATUS remembered as ready", () => {
  it("asks once within the window, and again once it has passed", async () => {
    const { clock, memo: m } = memo();
    const list = {};
    const s = { ready: true, runs: 0 };
    await m.ready(list, status(s));
    clock.ms += READY_WINDOW_MS - 1;
    await m.ready(list, status(s));
    expect(s.runs).toBe(1);
    clock.ms += 1;
    await m.ready(list, status(s));
    expect(s.runs).toBe(2);
  });

  it("a plugin that becomes not ready fails every CreateEndpoint from one window after, at the latest", async () => {
    const { clock, memo: m } = memo();
    const list = {};
    const s = { ready: true, runs: 0 };
    await m.ready(list, status(s));
    s.ready = false; // right after the STATUS that was ready
    clock.ms += READY_WINDOW_MS;
    await expect(m.ready(list, status(s))).rejects.toThrow("not ready");
  });

  it("never remembers a failure: the next call asks again, and goes on once the plugin is ready", async () => {
    const { memo: m } = memo();
    const list = {};
    const s = { ready: false, runs: 0 };
    await expect(m.ready(list, status(s))).rejects.toThrow("not ready");
    await expect(m.ready(list, status(s))).rejects.toThrow("not ready");
    s.ready = true;
    await m.ready(list, status(s));
    expect(s.runs).toBe(3);
  });

  it("shares a STATUS still running within the window, not one that started before it", async () => {
    const { clock, memo: m } = memo();
    const list = {};
    const answers: Array<() => void> = [];
    const slow = () => new Promise<void>((resolve) => answers.push(resolve));
    const first = m.ready(list, slow);
    const second = m.ready(list, slow);
    expect(answers.length).toBe(1);
    clock.ms += READY_WINDOW_MS; // still running, but started a window ago: not an answer for now
    const third = m.ready(list, slow);
    expect(answers.length).toBe(2);
    for (const answer of answers) answer();
    await Promise.all([first, second, third]);
  });

  it("keeps networks apart", async () => {
    const { memo: m } = memo();
    const s = { ready: true, runs: 0 };
    await m.ready({}, status(s));
    await m.ready({}, status(s));
    expect(s.runs).toBe(2);
  });
});
