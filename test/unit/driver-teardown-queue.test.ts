// TeardownQueue on its own, over a real StateStore in a temp dir: which incarnation it removes,
// what a failure leaves, one teardown per endpoint, and which teardowns settle() waits for.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setLogLevel } from "../../src/util/log.js";
import { StateStore, type EndpointRecord } from "../../src/driver/state.js";
import { TeardownQueue } from "../../src/driver/teardown-queue.js";
import { KeyedMutex } from "../../src/util/keyed-mutex.js";
import { gate, hexId, putEndpoint, settlesWithin } from "../helpers/driver-fakes.js";

setLogLevel("error");

const A = hexId(0xa);
const B = hexId(0xb);

let dir: string;
let state: StateStore;
let locks: KeyedMutex;
let removed: string[];
let removeError: Error | undefined;
let hold: Promise<void> | undefined;
let queue: TeardownQueue;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cni-shim-queue-"));
  state = new StateStore(join(dir, "state"));
  locks = new KeyedMutex();
  removed = [];
  removeError = undefined;
  hold = undefined;
  queue = new TeardownQueue({
    state,
    locks,
    remove: async (rec: EndpointRecord) => {
      removed.push(`${rec.id}@${rec.createdAt}`);
      await hold;
      if (removeError) throw removeError;
      await state.deleteEndpoint(rec.id);
    },
  });
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe("TeardownQueue", () => {
  it("removes the record it was given and forgets it once done", async () => {
    const rec = await putEndpoint(state, { id: A, phase: "deleting" });
    queue.start(rec);
    expect(queue.has(A)).toBe(true);
    await queue.settle();
    expect(removed).toEqual([`${A}@${rec.createdAt}`]);
    expect(await state.getEndpoint(A)).toBeUndefined();
    expect(queue.has(A)).toBe(false);
  });

  it("leaves a newer incarnation of the same endpoint id alone", async () => {
    const old = await putEndpoint(state, { id: A, phase: "deleting", createdAt: "2030-01-01T00:00:00.000Z" });
    await putEndpoint(state, { id: A, phase: "ready", createdAt: "2030-01-01T00:00:05.000Z" });
    queue.start(old);
    await queue.settle();
    expect(removed).toEqual([]);
    expect((await state.getEndpoint(A))?.phase).toBe("ready");
  });

  it("keeps the record when the teardown fails, and can start again afterwards", async () => {
    const rec = await putEndpoint(state, { id: A, phase: "deleting" });
    removeError = new Error("DEL failed");
    queue.start(rec);
    await queue.settle(); // a failure is logged, never thrown at whoever waits
    expect(await state.getEndpoint(A)).toBeDefined();
    expect(queue.has(A)).toBe(false);
    removeError = undefined;
    queue.start(rec);
    await queue.settle();
    expect(await state.getEndpoint(A)).toBeUndefined();
  });

  it("starts one teardown per endpoint however often it is asked", async () => {
    const rec = await putEndpoint(state, { id: A, phase: "deleting" });
    const held = gate();
    hold = held.promise;
    removeError = new Error("DEL failed"); // the record survives: a second teardown would find it
    queue.start(rec);
    queue.start(rec);
    held.open();
    await queue.settle();
    expect(removed).toHaveLength(1);
  });

  it("runs under the endpoint's lock", async () => {
    const rec = await putEndpoint(state, { id: A, phase: "deleting" });
    const held = gate();
    const holder = locks.run(A, () => held.promise);
    queue.start(rec);
    expect(await settlesWithin(queue.settle())).toBe(false);
    expect(removed).toEqual([]);
    held.open();
    await holder;
    await queue.settle();
    expect(removed).toHaveLength(1);
  });

  it("settle(filter) waits only for the teardowns the filter picks", async () => {
    const a = await putEndpoint(state, { id: A, phase: "deleting" });
    const b = await putEndpoint(state, { id: B, phase: "deleting" });
    const held = gate();
    const holdA = locks.run(A, () => held.promise);
    queue.start(a);
    queue.start(b);
    expect(await settlesWithin(queue.settle((r) => r.id === B), 5_000)).toBe(true);
    expect(await settlesWithin(queue.settle((r) => r.id === A))).toBe(false);
    held.open();
    await holdA;
    await queue.settle();
  });

  it("recover() skips an endpoint whose lock is held (a call is working on it)", async () => {
    await putEndpoint(state, { id: A, phase: "adding" });
    await putEndpoint(state, { id: B, phase: "deleting" });
    const held = gate();
    const holdA = locks.run(A, () => held.promise);
    expect(await queue.recover()).toBe(1);
    await queue.settle();
    expect(removed.map((r) => r.split("@")[0])).toEqual([B]);
    held.open();
    await holdA;
  });
});
