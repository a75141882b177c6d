// Choosing the cniVersion sent to a chain: the list's cniVersion/cniVersions against what each
// plugin answers to VERSION.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IMPLEMENTED_SPEC_VERSION, chooseVersion, compareVersions, listVersion } from "../../src/cni/version.js";
import { parseConfFile } from "../../src/cni/config.js";
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

describe("listVersion: libcni 1.2's choice (NetworkConfFromBytes)", () => {
  const l = (cniVersion: string | undefined, cniVersions?: string[]) => ({ name: "n", cniVersion, cniVersions });

  it("without cniVersions sends cniVersion as given, even above the spec cni-shim speaks", () => {
    expect(listVersion(l("0.4.0"))).toBe("0.4.0");
    expect(listVersion(l("1.2.0"))).toBe("1.2.0");
  });

  it("with cniVersions takes the highest of both up to 1.1.0, whatever the order given", () => {
    expect(IMPLEMENTED_SPEC_VERSION).toBe("1.1.0");
    expect(listVersion(l("1.0.0", ["1.1.0", "0.4.0"]))).toBe("1.1.0");
    expect(listVersion(l("1.1.0", ["1.0.0"]))).toBe("1.1.0");
    expect(listVersion(l("0.3.1", ["0.4.0", "1.0.0"]))).toBe("1.0.0");
    expect(listVersion(l(undefined, ["0.4.0", "1.0.0"]))).toBe("1.0.0");
  });

  it("skips versions above 1.1.0; when all are above, keeps cniVersion", () => {
    expect(listVersion(l("1.0.0", ["1.2.0", "2.0.0"]))).toBe("1.0.0");
    expect(listVersion(l("1.3.0", ["1.2.0"]))).toBe("1.3.0");
    expect(() => listVersion(l(undefined, ["1.2.0"]))).toThrow(/lists only cniVersions above 1\.1\.0 \(1\.2\.0\)/);
  });

  it("a list needs cniVersion or a non-empty cniVersions", () => {
    expect(parseConfFile(JSON.stringify({ name: "n", cniVersions: ["1.0.0"], plugins: [{ type: "bridge" }] }), "x.conflist").conflist.cniVersions).toEqual(["1.0.0"]);
    expect(() => parseConfFile(JSON.stringify({ name: "n", cniVersions: [], plugins: [{ type: "bridge" }] }), "x.conflist")).toThrow(/cniVersion.*must have "cniVersion"/);
    expect(() => parseConfFile(JSON.stringify({ name: "n", cniVersions: ["1.1"], plugins: [{ type: "bridge" }] }), "x.conflist")).toThrow(/must be a version like 1\.0\.0/);
  });
});

describe("chooseVersion: libcni's choice, checked against the plugins", () => {
  const plugins = (entries: Record<string, string[]>) => new Map(Object.entries(entries));
  const l = (cniVersion: string | undefined, cniVersions?: string[]) => ({ name: "mynet", cniVersion, cniVersions });

  it("keeps the list's version when every plugin speaks it", () => {
    expect(chooseVersion(l("1.0.0"), plugins({ bridge: upTo100, firewall }))).toBe("1.0.0");
    expect(chooseVersion(l("0.4.0"), plugins({ bridge: upTo100, firewall }))).toBe("0.4.0");
    expect(chooseVersion(l("1.0.0", ["1.1.0"]), plugins({ bridge: upTo110, tuning: upTo110 }))).toBe("1.1.0");
  });

  it("never falls back to a lower cniVersions entry the plugins speak (libcni does not): it fails, naming plugin, versions and fix", () => {
    let err: unknown;
    try {
      chooseVersion(l("1.0.0", ["1.1.0", "0.4.0"]), plugins({ bridge: upTo100, firewall, tuning: upTo110 }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniRuntimeError);
    const msg = (err as Error).message;
    expect(msg).toContain('network "mynet" asks for cniVersion 1.1.0 (the highest of its "cniVersion" and "cniVersions" up to 1.1.0, as libcni chooses)');
    expect(msg).toContain('plugin "bridge" speaks only 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0; plugin "firewall" speaks only 0.4.0, 1.0.0');
    expect(msg).not.toContain('"tuning"');
    expect(msg).toContain('set "cniVersion" to 1.0.0 and drop the versions above it from "cniVersions" (the highest all its plugins speak), or use plugins that speak 1.1.0');
  });

  it("a plain cniVersion the plugins lack: the fix names the highest common one", () => {
    expect(() => chooseVersion(l("1.1.0"), plugins({ bridge: upTo100, firewall }))).toThrow(/asks for cniVersion 1\.1\.0, but .*: set "cniVersion" to 1\.0\.0 \(the highest all its plugins speak\)/);
  });

  it("fails when no single version is common", () => {
    expect(() => chooseVersion(l("1.0.0"), plugins({ a: ["0.3.1"], b: ["1.0.0"] }))).toThrow(/plugin "a" speaks only 0\.3\.1: use plugins that speak one common version/);
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
    expect((err as Error).message).toMatch(/network "v11net" asks for cniVersion 1\.1\.0, but plugin "v100a" speaks only .*1\.0\.0; plugin "v100b" speaks only 0\.4\.0, 1\.0\.0/);
    const calls = await env.fp.calls();
    expect(calls.map((c) => c.command).sort()).toEqual(["VERSION", "VERSION"]);
    expect(await env.rt.cache.read("v11net", "c1", "eth0")).toBeUndefined();
  });

  it("with cniVersions [1.0.0, 1.1.0] fails against plugins that stop at 1.0.0, before any ADD", async () => {
    const net = netList({ cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"], name: "vnet", plugins: [{ type: "v100a" }, { type: "v100b" }] });
    await expect(env.rt.add(net, att)).rejects.toThrow(/asks for cniVersion 1\.1\.0 .*: set "cniVersion" to 1\.0\.0 and drop the versions above it/);
    expect((await env.fp.calls()).map((c) => c.command)).toEqual(["VERSION", "VERSION"]);
  });

  it("with cniVersions [1.0.0, 1.1.0] sends 1.1.0 to plugins that speak it, on ADD and DEL", async () => {
    await env.fp.add("v110", { versions: upTo110 });
    const net = netList({ cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"], name: "vnet", plugins: [{ type: "v110" }] });
    const out = await env.rt.add(net, att);
    expect(out.cniVersion).toBe("1.1.0");
    expect((await env.fp.operations()).map((c) => [c.plugin, c.stdin.cniVersion])).toEqual([["v110", "1.1.0"]]);
    await env.fp.clearCalls();
    await env.rt.del(net, att);
    expect((await env.fp.operations()).map((c) => c.stdin.cniVersion)).toEqual(["1.1.0"]);
  });

  it("sends a 0.3.1 list's version to every plugin and no prevResult on DEL below 0.4.0", async () => {
    await env.fp.add("old", { versions: ["0.3.0", "0.3.1"], replies: { ADD: { stdout: { cniVersion: "0.3.1", ips: [{ version: "4", address: "10.0.0.2/24" }] } } } });
    const net = netList({ cniVersion: "0.3.1", name: "oldnet", plugins: [{ type: "old" }, { type: "v100a" }] });
    await env.fp.setReply("v100a", "ADD", { stdout: { cniVersion: "0.3.1", ips: [{ version: "4", address: "10.0.0.2/24" }] } });
    const out = await env.rt.add(net, att);
    expect(out.cniVersion).toBe("0.3.1");
    await env.fp.clearCalls();
    await env.rt.del(net, att);
    const dels = await env.fp.operations();
    expect(dels.map((c) => c.stdin.cniVersion)).toEqual(["0.3.1", "0.3.1"]);
    for (const d of dels) expect(d.stdin).not.toHaveProperty("prevResult");
  });

  it("STATUS trusts the binaries it looked at within a second; ADD always looks again", async () => {
    const net = netList({ cniVersion: "1.1.0", name: "statusnet", plugins: [{ type: "v110s" }] });
    await env.fp.add("v110s", { versions: ["1.0.0", "1.1.0"] });
    await env.rt.status(net.conflist);
    // An upgrade that drops 1.1.0, right after: STATUS within the second still has the old answer,
    // the ADD notices and refuses before anything runs.
    await new Promise((r) => setTimeout(r, 20));
    await env.fp.add("v110s", { versions: ["0.4.0", "1.0.0"] });
    await env.rt.status(net.conflist);
    await expect(env.rt.add(net, att)).rejects.toThrow(/plugin "v110s" speaks only 0.4.0, 1.0.0/);
    expect((await env.fp.calls()).filter((c) => c.command === "ADD")).toHaveLength(0);
  });

  it("asks each binary for VERSION once and re-probes when the binary changes", async () => {
    const net = netList({ cniVersion: "1.0.0", name: "probenet", plugins: [{ type: "v100a" }] });
    await env.rt.add(net, att);
    await env.rt.add(net, { ...att, containerId: "c2" });
    expect((await env.fp.calls()).filter((c) => c.command === "VERSION")).toHaveLength(1);
    // An upgrade that drops 1.0.0: the next ADD must notice and refuse.
    await new Promise((r) => setTimeout(r, 20));
    await env.fp.add("v100a", { versions: ["0.3.1", "0.4.0"] });
    await expect(env.rt.add(net, { ...att, containerId: "c3" })).rejects.toThrow(/plugin "v100a" speaks only 0.3.1, 0.4.0/);
  });
});
