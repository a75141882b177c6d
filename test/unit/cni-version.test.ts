// Choosing the cniVersion sent to a chain: the list's cniVersion/cniVersions against what each
// plugin answers to VERSION.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chooseVersion, compareVersions } from "../../src/cni/version.js";
import { CniRuntimeError } from "../../src/cni/errors.js";
import { fakeEnv, netList, type FakeEnv } from "../helpers/cni-setup.js";

const upTo100 = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];
const firewall = ["0.4.0", "1.0.0"];
const upTo110 = [...upTo100, "1.1.0"];

describe("compareVersions", () => {
  it("compares numerically, not as strings", () => {
    expect(compareVersions("1.10.0", "1.9.0")).toBeGreaterThan(0);
    expect(compareVersions("0.3.1", "0.4.0")).toBeLessThan(0);
    expect(compareVersions("1.0.0", "1.0.0")).toBe(0);
  });
});

describe("chooseVersion", () => {
  const plugins = (entries: Record<string, string[]>) => new Map(Object.entries(entries));

  it("keeps the list's version when every plugin speaks it", () => {
    expect(chooseVersion("n", ["1.0.0"], plugins({ bridge: upTo100, firewall }))).toBe("1.0.0");
    expect(chooseVersion("n", ["0.4.0"], plugins({ bridge: upTo100, firewall }))).toBe("0.4.0");
  });

  it("picks the highest wanted version that all plugins speak, whatever the order given", () => {
    expect(chooseVersion("n", ["1.1.0", "1.0.0"], plugins({ bridge: upTo100 }))).toBe("1.0.0");
    expect(chooseVersion("n", ["0.4.0", "1.1.0", "1.0.0"], plugins({ bridge: upTo110, tuning: upTo110 }))).toBe("1.1.0");
    expect(chooseVersion("n", ["0.3.1", "1.0.0", "0.4.0"], plugins({ bridge: upTo100, old: ["0.3.0", "0.3.1", "0.4.0"] }))).toBe("0.4.0");
  });

  it("fails with a message naming the list, the wanted versions and what each lacking plugin speaks", () => {
    let err: unknown;
    try {
      chooseVersion("mynet", ["1.1.0"], plugins({ bridge: upTo100, firewall }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniRuntimeError);
    const msg = (err as Error).message;
    expect(msg).toContain('network "mynet" asks for cniVersion 1.1.0');
    expect(msg).toContain("bridge speaks 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0");
    expect(msg).toContain("firewall speaks 0.4.0, 1.0.0");
  });

  it("fails when no single version is common even though each plugin speaks one of them", () => {
    expect(() => chooseVersion("n", ["0.3.1", "1.0.0"], plugins({ a: ["0.3.1"], b: ["1.0.0"] }))).toThrow(/asks for cniVersion 1.0.0 or 0.3.1, but no single version is spoken by all/);
  });
});

describe("version choice in the runtime", () => {
  let env: FakeEnv;
  beforeEach(async () => {
    env = await fakeEnv();
    await env.fp.add("v100a", { versions: upTo100 });
    await env.fp.add("v100b", { versions: firewall });
  });
  afterEach(async () => {
    await env.cleanup();
  });
  const att = { containerId: "c1", ifName: "eth0", netns: "/x" };

  it("fails a 1.1.0 list against plugins that stop at 1.0.0 before any ADD", async () => {
    const net = netList({ cniVersion: "1.1.0", name: "v11net", plugins: [{ type: "v100a" }, { type: "v100b" }] });
    const err = await env.rt.add(net, att).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniRuntimeError);
    expect((err as Error).message).toMatch(/network "v11net" asks for cniVersion 1\.1\.0, but v100a speaks .*1\.0\.0; v100b speaks 0\.4\.0, 1\.0\.0/);
    const calls = await env.fp.calls();
    expect(calls.map((c) => c.command).sort()).toEqual(["VERSION", "VERSION"]);
    expect(await env.rt.cache.read("v11net", "c1", "eth0")).toBeUndefined();
  });

  it("with cniVersions [1.1.0, 1.0.0] sends 1.0.0 to every plugin", async () => {
    const net = netList({ cniVersion: "1.1.0", cniVersions: ["1.1.0", "1.0.0"], name: "vnet", plugins: [{ type: "v100a" }, { type: "v100b" }] });
    const out = await env.rt.add(net, att);
    expect(out.cniVersion).toBe("1.0.0");
    const ops = await env.fp.operations();
    expect(ops.map((c) => [c.plugin, c.stdin.cniVersion])).toEqual([
      ["v100a", "1.0.0"],
      ["v100b", "1.0.0"],
    ]);
    await env.fp.clearCalls();
    await env.rt.del(net, att);
    expect((await env.fp.operations()).map((c) => c.stdin.cniVersion)).toEqual(["1.0.0", "1.0.0"]);
  });

  it("downgrades to the version an older plugin speaks and sends no prevResult on DEL below 0.4.0", async () => {
    await env.fp.add("old", { versions: ["0.3.0", "0.3.1"], replies: { ADD: { stdout: { cniVersion: "0.3.1", ips: [{ version: "4", address: "10.0.0.2/24" }] } } } });
    const net = netList({ cniVersion: "1.0.0", cniVersions: ["0.3.1"], name: "oldnet", plugins: [{ type: "old" }, { type: "v100a" }] });
    await env.fp.setReply("v100a", "ADD", { stdout: { cniVersion: "0.3.1", ips: [{ version: "4", address: "10.0.0.2/24" }] } });
    const out = await env.rt.add(net, att);
    expect(out.cniVersion).toBe("0.3.1");
    await env.fp.clearCalls();
    await env.rt.del(net, att);
    const dels = await env.fp.operations();
    expect(dels.map((c) => c.stdin.cniVersion)).toEqual(["0.3.1", "0.3.1"]);
    for (const d of dels) expect(d.stdin).not.toHaveProperty("prevResult");
  });

  it("asks each binary for VERSION once and re-probes when the binary changes", async () => {
    const net = netList({ cniVersion: "1.0.0", name: "probenet", plugins: [{ type: "v100a" }] });
    await env.rt.add(net, att);
    await env.rt.add(net, { ...att, containerId: "c2" });
    expect((await env.fp.calls()).filter((c) => c.command === "VERSION")).toHaveLength(1);
    // An upgrade that drops 1.0.0: the next ADD must notice and refuse.
    await new Promise((r) => setTimeout(r, 20));
    await env.fp.add("v100a", { versions: ["0.3.1", "0.4.0"] });
    await expect(env.rt.add(net, { ...att, containerId: "c3" })).rejects.toThrow(/v100a speaks 0.3.1, 0.4.0/);
  });
});
