// CniRuntime running network configuration lists of fake plugins: ADD/DEL/CHECK order and
// stdin, cleanup after a failed ADD, per-attachment serialisation and GC.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CniPluginError } from "../../src/cni/errors.js";
import { fakeEnv, netList, type FakeEnv } from "../helpers/cni-setup.js";
import type { PluginCall } from "../helpers/fake-plugin.js";

const PORTS = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }];

/** Results the three plugins print: each one distinct, so the chaining can be traced. */
function resultOf(plugin: string, ip: string) {
  return { cniVersion: "1.0.0", interfaces: [{ name: `if-${plugin}`, sandbox: "/var/run/netns/x" }], ips: [{ address: ip, interface: 0 }] };
}

let env: FakeEnv;

beforeEach(async () => {
  env = await fakeEnv();
  await env.fp.add("pa", { replies: { ADD: { stdout: resultOf("pa", "10.1.0.2/24") } } });
  await env.fp.add("pb", { replies: { ADD: { stdout: resultOf("pb", "10.1.0.3/24") } } });
  await env.fp.add("pc", { replies: { ADD: { stdout: resultOf("pc", "10.1.0.4/24") } } });
});
afterEach(async () => {
  await env.cleanup();
});

const chain = () =>
  netList({
    cniVersion: "1.0.0",
    name: "chainnet",
    plugins: [
      { type: "pa", capabilities: { portMappings: true, ips: false }, extra: { keep: ["me", 1] } },
      { type: "pb" },
      { type: "pc", capabilities: { portMappings: true, bandwidth: true } },
    ],
  });

const att = { containerId: "ctr1", netns: "/var/run/netns/test-ns", ifName: "eth0" };

function summary(calls: PluginCall[]) {
  return calls.map((c) => `${c.command} ${c.plugin}`);
}

describe("ADD", () => {
  it("runs the plugins in order and chains each stdout into the next prevResult", async () => {
    const out = await env.rt.add(chain(), { ...att, args: [["K8S_POD_NAME", "web"]], capabilityArgs: { portMappings: PORTS, ips: ["10.1.0.9/24"] } });
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["ADD pa", "ADD pb", "ADD pc"]);
    const [a, b, c] = ops as [PluginCall, PluginCall, PluginCall];

    expect(a.stdin).not.toHaveProperty("prevResult");
    expect(b.stdin.prevResult).toEqual(resultOf("pa", "10.1.0.2/24"));
    expect(c.stdin.prevResult).toEqual(resultOf("pb", "10.1.0.3/24"));

    for (const call of ops) {
      expect(call.stdin.name).toBe("chainnet");
      expect(call.stdin.cniVersion).toBe("1.0.0");
      expect(call.env).toMatchObject({
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: "ctr1",
        CNI_NETNS: "/var/run/netns/test-ns",
        CNI_IFNAME: "eth0",
        CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web",
        CNI_PATH: env.fp.binDir,
      });
    }
    // Unknown fields of the plugin conf pass through unchanged.
    expect(a.stdin.extra).toEqual({ keep: ["me", 1] });
    expect(a.stdin.type).toBe("pa");

    // runtimeConfig: only capabilities the plugin declares true AND the caller passed.
    expect(a.stdin.runtimeConfig).toEqual({ portMappings: PORTS }); // ips declared false
    expect(b.stdin).not.toHaveProperty("runtimeConfig"); // declares nothing
    expect(c.stdin.runtimeConfig).toEqual({ portMappings: PORTS }); // bandwidth not passed
    expect(a.stdin.capabilities).toEqual({ portMappings: true, ips: false });

    // The outcome and the cache are the last plugin's output.
    expect(out.cniVersion).toBe("1.0.0");
    expect(out.raw).toEqual(resultOf("pc", "10.1.0.4/24"));
    expect(out.result.ips?.[0]?.address).toBe("10.1.0.4/24");
    const cached = await env.rt.cache.read("chainnet", "ctr1", "eth0");
    expect(cached?.result).toEqual(resultOf("pc", "10.1.0.4/24"));
  });

  it("probes plugin versions before the first ADD", async () => {
    await env.rt.add(chain(), att);
    const calls = await env.fp.calls();
    const firstAdd = calls.findIndex((c) => c.command === "ADD");
    const versions = calls.filter((c) => c.command === "VERSION").map((c) => c.plugin).sort();
    expect(versions).toEqual(["pa", "pb", "pc"]);
    expect(calls.slice(0, firstAdd).every((c) => c.command === "VERSION")).toBe(true);
    expect(calls.slice(firstAdd).some((c) => c.command === "VERSION")).toBe(false);
  });

  it("a plugin removed after it was found: the next ADD says it is missing and how to install it, before running any", async () => {
    await env.rt.add(chain(), att);
    await rm(join(env.fp.binDir, "pb"));
    const err = await env.rt.add(chain(), { ...att, containerId: "ctr2" }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/CNI plugin "pb" not found in .*install it/);
    // Seen before anything ran for ctr2.
    expect(summary(await env.fp.operations())).toEqual(["ADD pa", "ADD pb", "ADD pc"]);
  });

  it("rejects a final result that is not a CNI result, and cleans up", async () => {
    await env.fp.setReply("pc", "ADD", { stdout: { interfaces: "not a list" } });
    await expect(env.rt.add(chain(), att)).rejects.toThrow(/pc.*malformed result/);
    expect(summary(await env.fp.operations())).toEqual(["ADD pa", "ADD pb", "ADD pc", "DEL pc", "DEL pb", "DEL pa"]);
    expect(existsSync(env.rt.cache.path("chainnet", "ctr1", "eth0"))).toBe(false);
  });
});

describe("DEL", () => {
  it("runs in reverse with the cached result, CNI_ARGS and capability args of the ADD", async () => {
    await env.rt.add(chain(), { ...att, args: [["K8S_POD_NAME", "web"]], capabilityArgs: { portMappings: PORTS } });
    const cachePath = env.rt.cache.path("chainnet", "ctr1", "eth0");
    expect(existsSync(cachePath)).toBe(true);
    await env.fp.clearCalls();

    // The caller passes neither args nor capabilityArgs (as after a daemon restart).
    await env.rt.del(chain(), att);
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["DEL pc", "DEL pb", "DEL pa"]);
    for (const call of ops) {
      expect(call.env.CNI_ARGS).toBe("IgnoreUnknown=1;K8S_POD_NAME=web");
      expect(call.env.CNI_CONTAINERID).toBe("ctr1");
      expect(call.env.CNI_IFNAME).toBe("eth0");
      expect(call.env.CNI_NETNS).toBe("/var/run/netns/test-ns");
      expect(call.stdin.prevResult).toEqual(resultOf("pc", "10.1.0.4/24"));
      expect(call.stdin.cniVersion).toBe("1.0.0");
      expect(call.stdin.name).toBe("chainnet");
    }
    const byPlugin = Object.fromEntries(ops.map((c) => [c.plugin, c]));
    expect(byPlugin.pa!.stdin.runtimeConfig).toEqual({ portMappings: PORTS });
    expect(byPlugin.pb!.stdin).not.toHaveProperty("runtimeConfig");
    expect(byPlugin.pc!.stdin.runtimeConfig).toEqual({ portMappings: PORTS });
    expect(existsSync(cachePath)).toBe(false);
  });

  it("is idempotent: a second DEL (no cache left) runs the chain again and succeeds", async () => {
    await env.rt.add(chain(), att);
    await env.rt.del(chain(), att);
    await env.fp.clearCalls();
    await expect(env.rt.del(chain(), att)).resolves.toBeUndefined();
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["DEL pc", "DEL pb", "DEL pa"]);
    for (const call of ops) expect(call.stdin).not.toHaveProperty("prevResult");
    // And a DEL of something never added at all.
    await expect(env.rt.del(chain(), { ...att, containerId: "never-added" })).resolves.toBeUndefined();
  });

  it("keeps the cache when a DEL fails, still runs the other plugins, and removes it once DEL succeeds", async () => {
    await env.rt.add(chain(), { ...att, capabilityArgs: { portMappings: PORTS } });
    const cachePath = env.rt.cache.path("chainnet", "ctr1", "eth0");
    const before = await readFile(cachePath, "utf8");
    await env.fp.setReply("pb", "DEL", { exit: 1, stdout: { cniVersion: "1.0.0", code: 11, msg: "busy", details: "try again" } });
    await env.fp.clearCalls();

    const err = await env.rt.del(chain(), att).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err).toMatchObject({ plugin: "pb", command: "DEL", code: 11, msg: "busy", details: "try again" });
    expect(summary(await env.fp.operations())).toEqual(["DEL pc", "DEL pb", "DEL pa"]);
    expect(await readFile(cachePath, "utf8")).toBe(before);

    await env.fp.setReply("pb", "DEL", {});
    await env.fp.clearCalls();
    await env.rt.del(chain(), att);
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["DEL pc", "DEL pb", "DEL pa"]);
    // The retry still had the cached result and capability args.
    expect(ops[0]!.stdin.prevResult).toEqual(resultOf("pc", "10.1.0.4/24"));
    expect(ops[0]!.stdin.runtimeConfig).toEqual({ portMappings: PORTS });
    expect(existsSync(cachePath)).toBe(false);
  });
});

describe("failed ADD", () => {
  it("DELs the whole chain in reverse, reports the plugin's error and leaves no cache", async () => {
    await env.fp.setReply("pb", "ADD", {
      exit: 1,
      stdout: { cniVersion: "1.0.0", code: 7, msg: "invalid config", details: "bridge name too long" },
      stderr: "pb: some diagnostic",
    });
    const err = await env.rt
      .add(chain(), { ...att, args: [["K8S_POD_NAME", "web"]], capabilityArgs: { portMappings: PORTS } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err).toMatchObject({ plugin: "pb", command: "ADD", code: 7, msg: "invalid config", details: "bridge name too long" });
    expect((err as CniPluginError).stderr).toContain("pb: some diagnostic");
    expect((err as Error).message).toContain("invalid config");
    expect((err as Error).message).not.toContain("cleanup");

    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["ADD pa", "ADD pb", "DEL pc", "DEL pb", "DEL pa"]);
    // The DELs get the result of the plugins that did run (pa's), as firewall needs to find the
    // rules it added for the container's addresses.
    for (const del of ops.slice(2)) {
      expect(del.env.CNI_ARGS).toBe("IgnoreUnknown=1;K8S_POD_NAME=web");
      expect(del.env.CNI_CONTAINERID).toBe("ctr1");
      expect(del.stdin.prevResult).toEqual(resultOf("pa", "10.1.0.2/24"));
    }
    expect(ops[4]!.stdin.runtimeConfig).toEqual({ portMappings: PORTS });
    expect(existsSync(env.rt.cache.path("chainnet", "ctr1", "eth0"))).toBe(false);
  });

  it("still reports the ADD error first when the cleanup DEL fails too", async () => {
    await env.fp.setReply("pb", "ADD", { exit: 1, stdout: { code: 5, msg: "no space" } });
    await env.fp.setReply("pa", "DEL", { exit: 1, stdout: { code: 999, msg: "del broke" } });
    const err = await env.rt.add(chain(), att).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect(err).toMatchObject({ plugin: "pb", code: 5, msg: "no space" });
    expect((err as Error).message).toMatch(/no space.*cleanup with DEL also failed.*del broke/);
  });
});

describe("serialisation", () => {
  it("does not overlap two operations on the same attachment, but overlaps different attachments", async () => {
    const net = netList({ cniVersion: "1.0.0", name: "slow", plugins: [{ type: "pslow" }] });
    await env.fp.add("pslow", { replies: { ADD: { sleepSeconds: 0.4, stdout: { cniVersion: "1.0.0" } } } });

    await Promise.all([env.rt.add(net, att), env.rt.add(net, att)]);
    const same = (await env.fp.operations()).filter((c) => c.plugin === "pslow");
    expect(same).toHaveLength(2);
    const [s1, s2] = same as [PluginCall, PluginCall];
    expect(s1.end - s1.start).toBeGreaterThanOrEqual(350);
    expect(s2.start).toBeGreaterThanOrEqual(s1.end);

    await env.fp.clearCalls();
    await Promise.all([env.rt.add(net, { ...att, containerId: "other1" }), env.rt.add(net, { ...att, containerId: "other2" })]);
    const diff = (await env.fp.operations()).filter((c) => c.plugin === "pslow");
    expect(diff.map((c) => c.env.CNI_CONTAINERID).sort()).toEqual(["other1", "other2"]);
    const [d1, d2] = diff as [PluginCall, PluginCall];
    expect(d2.start).toBeLessThan(d1.end);
    expect(d1.start).toBeLessThan(d2.end);

    // Same container, different ifName: a different attachment, so also parallel.
    await env.fp.clearCalls();
    await Promise.all([env.rt.add(net, { ...att, ifName: "eth1" }), env.rt.add(net, { ...att, ifName: "eth2" })]);
    const ifs = (await env.fp.operations()).filter((c) => c.plugin === "pslow");
    expect(ifs).toHaveLength(2);
    expect(ifs[1]!.start).toBeLessThan(ifs[0]!.end);
  });

  it("serialises a DEL behind a running ADD of the same attachment", async () => {
    const net = netList({ cniVersion: "1.0.0", name: "slow", plugins: [{ type: "pslow" }] });
    await env.fp.add("pslow", { replies: { ADD: { sleepSeconds: 0.4, stdout: { cniVersion: "1.0.0" } } } });
    await Promise.all([env.rt.add(net, att), env.rt.del(net, att)]);
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["ADD pslow", "DEL pslow"]);
    expect(ops[1]!.start).toBeGreaterThanOrEqual(ops[0]!.end);
    // The DEL came after the ADD, so it saw the cached result and removed the cache.
    expect(ops[1]!.stdin.prevResult).toEqual({ cniVersion: "1.0.0" });
    expect(existsSync(env.rt.cache.path("slow", "ctr1", "eth0"))).toBe(false);
  });
});

describe("gc", () => {
  it("DELs cached attachments that are not valid, removes their cache and leaves valid ones alone", async () => {
    const net = chain();
    await env.rt.add(net, { ...att, containerId: "keep1" });
    await env.rt.add(net, { ...att, containerId: "stale1", args: [["POD", "s1"]], capabilityArgs: { portMappings: PORTS } });
    await env.rt.add(net, { ...att, containerId: "stale2", netns: "/proc/1234/ns/net" });
    // Another network's attachment with the same container id: not this GC's business.
    const other = netList({ ...net.conflist, name: "chainnet-other" });
    await env.rt.add(other, { ...att, containerId: "stale1" });
    const keepPath = env.rt.cache.path("chainnet", "keep1", "eth0");
    const keepBefore = { text: await readFile(keepPath, "utf8"), mtime: (await stat(keepPath)).mtimeMs };
    await env.fp.clearCalls();

    const removed = await env.rt.gc(net, [{ containerId: "keep1", ifName: "eth0" }]);
    expect(removed.map((e) => e.containerId).sort()).toEqual(["stale1", "stale2"]);

    const ops = await env.fp.operations();
    expect(ops.every((c) => c.command === "DEL")).toBe(true); // 1.0.0: no GC verb
    expect(ops.filter((c) => c.env.CNI_CONTAINERID === "keep1")).toEqual([]);
    const s1 = ops.filter((c) => c.env.CNI_CONTAINERID === "stale1");
    expect(summary(s1)).toEqual(["DEL pc", "DEL pb", "DEL pa"]);
    for (const c of s1) {
      expect(c.stdin.name).toBe("chainnet");
      expect(c.env.CNI_ARGS).toBe("IgnoreUnknown=1;POD=s1");
      expect(c.stdin.prevResult).toEqual(resultOf("pc", "10.1.0.4/24"));
    }
    expect(s1[0]!.stdin.runtimeConfig).toEqual({ portMappings: PORTS });
    const s2 = ops.filter((c) => c.env.CNI_CONTAINERID === "stale2");
    expect(summary(s2)).toEqual(["DEL pc", "DEL pb", "DEL pa"]);
    expect(s2[0]!.env.CNI_NETNS).toBe("/proc/1234/ns/net");

    expect(existsSync(env.rt.cache.path("chainnet", "stale1", "eth0"))).toBe(false);
    expect(existsSync(env.rt.cache.path("chainnet", "stale2", "eth0"))).toBe(false);
    expect(existsSync(env.rt.cache.path("chainnet-other", "stale1", "eth0"))).toBe(true);
    expect(await readFile(keepPath, "utf8")).toBe(keepBefore.text);
    expect((await stat(keepPath)).mtimeMs).toBe(keepBefore.mtime);
  });

  it("keeps an entry whose DEL fails and reports the error", async () => {
    const net = chain();
    await env.rt.add(net, { ...att, containerId: "stale1" });
    await env.fp.setReply("pa", "DEL", { exit: 1, stdout: { code: 999, msg: "cannot delete" } });
    await expect(env.rt.gc(net, [])).rejects.toThrow(/cannot delete/);
    expect(existsSync(env.rt.cache.path("chainnet", "stale1", "eth0"))).toBe(true);
  });

  it("sends the GC verb with the valid attachments when the chain speaks 1.1.0", async () => {
    const v11 = ["0.4.0", "1.0.0", "1.1.0"];
    await env.fp.add("g1", { versions: v11, replies: { ADD: { stdout: { cniVersion: "1.1.0" } } } });
    await env.fp.add("g2", { versions: v11, replies: { ADD: { stdout: { cniVersion: "1.1.0" } } } });
    const rt = env.runtime();
    const net = netList({ cniVersion: "1.1.0", name: "gcnet", plugins: [{ type: "g1" }, { type: "g2" }] });
    await rt.add(net, { ...att, containerId: "live" });
    await rt.add(net, { ...att, containerId: "dead" });
    await env.fp.clearCalls();

    await rt.gc(net, [{ containerId: "live", ifName: "eth0" }]);
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["DEL g2", "DEL g1", "GC g1", "GC g2"]);
    expect(ops[0]!.env.CNI_CONTAINERID).toBe("dead");
    for (const gc of ops.slice(2)) {
      expect(gc.stdin.cniVersion).toBe("1.1.0");
      expect(gc.stdin.name).toBe("gcnet");
      expect(gc.stdin["cni.dev/valid-attachments"]).toEqual([{ containerID: "live", ifname: "eth0" }]);
      expect(gc.env).not.toHaveProperty("CNI_CONTAINERID");
    }
    expect(existsSync(rt.cache.path("gcnet", "live", "eth0"))).toBe(true);
    expect(existsSync(rt.cache.path("gcnet", "dead", "eth0"))).toBe(false);
  });
});

describe("GC verb", () => {
  const v11 = ["0.4.0", "1.0.0", "1.1.0"];
  const gcNet = () => netList({ cniVersion: "1.1.0", name: "gcnet2", plugins: [{ type: "h1" }] });

  it("counts every attachment still cached as valid (a DEL that failed, one in use), and every plugin is sent it", async () => {
    await env.fp.add("h1", { versions: v11, replies: { ADD: { stdout: { cniVersion: "1.1.0" } } } });
    const rt = env.runtime();
    await rt.add(gcNet(), { ...att, containerId: "busy" });
    await env.fp.clearCalls();
    await rt.gc(gcNet(), [{ containerId: "live", ifName: "eth0" }], (id) => id === "busy");
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["GC h1"]);
    expect(ops[0]!.stdin["cni.dev/valid-attachments"]).toEqual([
      { containerID: "live", ifname: "eth0" },
      { containerID: "busy", ifname: "eth0" },
    ]);
  });

  it("waits for an ADD of the network in flight, and holds new ADDs until it is done", async () => {
    await env.fp.add("h1", { versions: v11, replies: { ADD: { stdout: { cniVersion: "1.1.0" }, sleepSeconds: 0.6 } } });
    const rt = env.runtime();
    await rt.prepare(gcNet().conflist);
    const adding = rt.add(gcNet(), { ...att, containerId: "inflight" });
    await new Promise((r) => setTimeout(r, 150));
    await rt.gc(gcNet(), []);
    await adding;
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["ADD h1", "GC h1"]);
    // The ADD finished before the GC started, and the GC was told about it.
    expect(ops[1]!.start).toBeGreaterThanOrEqual(ops[0]!.end);
    expect(ops[1]!.stdin["cni.dev/valid-attachments"]).toEqual([{ containerID: "inflight", ifname: "eth0" }]);
  });
});

describe("STATUS", () => {
  it("asks every plugin (all at once: in no set order), with the list's name and version and no container, for lists at 1.1.0", async () => {
    const v11 = ["0.4.0", "1.0.0", "1.1.0"];
    await env.fp.add("s1", { versions: v11 });
    await env.fp.add("s2", { versions: v11 });
    const rt = env.runtime();
    await rt.status(netList({ cniVersion: "1.1.0", name: "stnet", plugins: [{ type: "s1" }, { type: "s2" }] }).conflist);
    const ops = await env.fp.operations();
    expect(summary(ops).sort()).toEqual(["STATUS s1", "STATUS s2"]);
    const s1 = ops.find((o) => o.plugin === "s1")!;
    expect(s1.stdin).toMatchObject({ name: "stnet", cniVersion: "1.1.0", type: "s1" });
    expect(s1.env).not.toHaveProperty("CNI_CONTAINERID");
  });

  it("asks the plugins all at once, and throws the message of the first in the list's order that is not ready", async () => {
    const v11 = ["1.0.0", "1.1.0"];
    // s1 answers last: its message is still the one thrown, as libcni's one-by-one STATUS would.
    await env.fp.add("s1", { versions: v11, replies: { STATUS: { exit: 1, sleepSeconds: 0.5, stdout: { code: 50, msg: "the bridge is being rebuilt" } } } });
    await env.fp.add("s2", { versions: v11, replies: { STATUS: { exit: 1, stdout: { code: 50, msg: "s2 is not ready either" } } } });
    await env.fp.add("s3", { versions: v11 });
    const rt = env.runtime();
    await expect(rt.status(netList({ cniVersion: "1.1.0", name: "stnet", plugins: [{ type: "s1" }, { type: "s2" }, { type: "s3" }] }).conflist)).rejects.toThrow(/"s1" STATUS failed \(code 50\): the bridge is being rebuilt/);
    const ops = await env.fp.operations();
    expect(summary(ops).sort()).toEqual(["STATUS s1", "STATUS s2", "STATUS s3"]);
    const s1 = ops.find((o) => o.plugin === "s1")!;
    expect(ops.filter((o) => o !== s1).every((o) => o.start < s1.end), "the others started before s1 answered").toBe(true);
  });

  it("throws the not-ready message of a later plugin when the earlier ones are ready", async () => {
    const v11 = ["1.0.0", "1.1.0"];
    await env.fp.add("s1", { versions: v11 });
    await env.fp.add("s2", { versions: v11, replies: { STATUS: { exit: 1, stdout: { code: 50, msg: "s2 is being rebuilt" } } } });
    await expect(env.runtime().status(netList({ cniVersion: "1.1.0", name: "stnet", plugins: [{ type: "s1" }, { type: "s2" }] }).conflist)).rejects.toThrow(/"s2" STATUS failed \(code 50\): s2 is being rebuilt/);
  });

  it("asks nothing of a list sent 1.0.0", async () => {
    await env.rt.status(chain().conflist);
    expect(await env.fp.operations()).toEqual([]);
  });
});

describe("CHECK", () => {
  const cached = { cniVersion: "1.0.0", interfaces: [{ name: "eth0", sandbox: "/var/run/docker/netns/abc" }], ips: [{ address: "10.1.0.9/24", interface: 0 }] };

  it("runs the plugins in order with the given prevResult and the ADD's CNI_ARGS and capability args", async () => {
    const out = await env.rt.check(chain(), { ...att, args: [["K8S_POD_NAME", "web"]], capabilityArgs: { portMappings: PORTS } }, cached);
    expect(out).toBeUndefined();
    const ops = await env.fp.operations();
    expect(summary(ops)).toEqual(["CHECK pa", "CHECK pb", "CHECK pc"]);
    for (const call of ops) expect(call.stdin.prevResult).toEqual(cached);
    expect(ops[0]!.env).toMatchObject({ CNI_CONTAINERID: "ctr1", CNI_NETNS: "/var/run/netns/test-ns", CNI_IFNAME: "eth0", CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web" });
    expect(ops[2]!.stdin.runtimeConfig).toEqual({ portMappings: PORTS });
  });

  it("throws the first complaint and runs no plugin after it", async () => {
    await env.fp.setReply("pb", "CHECK", { exit: 1, stdout: { code: 999, msg: "Failed to match addr 10.1.0.9/24 on interface eth0" } });
    await expect(env.rt.check(chain(), att, cached)).rejects.toThrow(/"pb" CHECK failed \(code 999\): Failed to match addr/);
    expect(summary(await env.fp.operations())).toEqual(["CHECK pa", "CHECK pb"]);
  });

  it("checks nothing for disableCheck or a list below 0.4.0, and says why", async () => {
    expect(await env.rt.check(netList({ cniVersion: "1.0.0", name: "nochk", disableCheck: true, plugins: [{ type: "pa" }] }), att, cached)).toMatch(/disableCheck/);
    expect(await env.rt.check(netList({ cniVersion: "0.3.1", name: "old", plugins: [{ type: "pa" }] }), att, cached)).toMatch(/0\.3\.1 has no CHECK/);
    expect(await env.fp.operations()).toEqual([]);
  });
});

describe("CHECK quirks", () => {
  it("goes on past portmap 1.1.1's IPv6 complaint for a container without IPv6 (#819), not past one with IPv6", async () => {
    await env.fp.add("portmap", { replies: { CHECK: { exit: 1, stdout: { code: 999, msg: "could not check ipv6 dnat: chain CNI-DN-x not found in iptables table nat" } } } });
    const net = netList({ cniVersion: "1.0.0", name: "pmnet", plugins: [{ type: "pa" }, { type: "portmap" }, { type: "pc" }] });
    const v4 = { cniVersion: "1.0.0", ips: [{ address: "10.1.0.9/24" }] };
    expect(await env.rt.check(net, att, v4)).toBeUndefined();
    expect(summary(await env.fp.operations())).toEqual(["CHECK pa", "CHECK portmap", "CHECK pc"]);
    await expect(env.rt.check(net, att, { ...v4, ips: [...v4.ips, { address: "fd00::9/64" }] })).rejects.toThrow(/could not check ipv6 dnat/);
  });
});
