// Staging namespaces prepared ahead (src/host/netns-pool.ts), with real `ip netns`.
import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { NetnsPool } from "../../src/host/netns-pool.js";
import { netnsExists } from "../../src/host/netns.js";

const listPool = async () => (await execa("ip", ["netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(`cni-shim-p${process.pid}-`));
const until = async (what: string, ok: () => Promise<boolean>) => {
  for (let i = 0; i < 100; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe("NetnsPool", () => {
  const made: string[] = [];
  afterAll(async () => {
    for (const n of [...made, ...(await listPool())]) await execa("ip", ["netns", "del", n], { reject: false });
  });

  it("has none ready at first, then keeps `size` ready; a taken one is the caller's; drain removes the rest", async () => {
    const pool = new NetnsPool(2);
    expect(await pool.take()).toBeUndefined();
    expect(await listPool()).toEqual([]); // take makes none itself
    pool.refill();
    await until("two prepared namespaces", async () => (await listPool()).length === 2);
    const name = (await pool.take())!;
    made.push(name);
    expect(name).toMatch(new RegExp(`^cni-shim-p${process.pid}-\\d+$`));
    expect(await netnsExists(name)).toBe(true);
    pool.refill();
    await until("the pool refilled", async () => (await listPool()).length === 3);
    await pool.drain();
    expect(await listPool()).toEqual([name]);
  });

  it("skips a prepared namespace someone removed", async () => {
    const pool = new NetnsPool(1);
    pool.refill();
    await until("one prepared namespace", async () => (await listPool()).length === 2);
    const waiting = (await listPool()).find((n) => !made.includes(n))!;
    await execa("ip", ["netns", "del", waiting]);
    expect(await pool.take()).toBeUndefined();
    await pool.drain();
  });

  it("sweeps what dead processes prepared, never a live process's or one a record names", async () => {
    const dead = "cni-shim-p999999-1"; // no such pid (pid_max is lower)
    const named = "cni-shim-p999999-2";
    const live = `cni-shim-p${process.pid}-4242`;
    for (const n of [dead, named, live]) {
      await execa("ip", ["netns", "add", n]);
      made.push(n);
    }
    const swept = await NetnsPool.sweepOrphans(new Set([named]));
    expect(swept).toEqual([dead]);
    expect(await netnsExists(dead)).toBe(false);
    expect(await netnsExists(named)).toBe(true);
    expect(await netnsExists(live)).toBe(true);
  });
});
