// execPlugin: how plugin output, errors and hangs are turned into results and errors; CNI_ARGS;
// missing plugin binaries.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { chmod, mkdir, open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execPlugin, type ExecRecord, type ExecRequest } from "../../src/cni/invoke.js";
import { CniPluginError, CniRuntimeError } from "../../src/cni/errors.js";
import { findPlugin } from "../../src/cni/plugins.js";
import { CniRuntime } from "../../src/cni/runtime.js";
import { formatCniArgs, normaliseCniArgs } from "../../src/cni/args.js";
import { stillRunningAfter, type Reply } from "../helpers/fake-plugin.js";
import { fakeEnv, netList, type FakeEnv } from "../helpers/cni-setup.js";

let env: FakeEnv;
beforeEach(async () => {
  env = await fakeEnv();
});
afterEach(async () => {
  await env.cleanup();
});

/** Run a fake plugin that answers `command` with `reply`; resolve/reject like execPlugin. */
async function runWith(command: "ADD" | "DEL" | "CHECK", reply: Reply, extra: Partial<ExecRequest> = {}) {
  const path = await env.fp.add("p", { replies: { [command]: reply } });
  return execPlugin({
    pluginPath: path,
    command,
    containerId: "c1",
    netns: "/var/run/netns/x",
    ifName: "eth0",
    args: [["IgnoreUnknown", "1"]],
    cniPath: [env.fp.binDir],
    stdin: { cniVersion: "1.0.0", name: "n", type: "p" },
    timeoutMs: 10_000,
    ...extra,
  });
}

async function failure(p: Promise<unknown>): Promise<CniPluginError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the plugin call should have failed").toBeInstanceOf(CniPluginError);
  return err as CniPluginError;
}

describe("execPlugin results and errors", () => {
  it("returns the parsed stdout of a successful ADD and passes env and stdin", async () => {
    const out = await runWith("ADD", { stdout: '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}\n' });
    expect(out).toEqual({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }] });
    const [call] = await env.fp.calls();
    expect(call?.env).toEqual({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "c1",
      CNI_NETNS: "/var/run/netns/x",
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1",
      CNI_PATH: env.fp.binDir,
    });
    expect(call?.stdin).toEqual({ cniVersion: "1.0.0", name: "n", type: "p" });
  });

  it("does not leak the caller's own CNI_* variables to the plugin", async () => {
    process.env.CNI_NETNS = "/leaked";
    process.env.CNI_ARGS = "LEAK=1";
    try {
      await runWith("DEL", {}, { netns: undefined, args: undefined });
    } finally {
      delete process.env.CNI_NETNS;
      delete process.env.CNI_ARGS;
    }
    const [call] = await env.fp.calls();
    expect(call?.env).not.toHaveProperty("CNI_NETNS");
    expect(call?.env).not.toHaveProperty("CNI_ARGS");
  });

  it("parses a JSON error on stdout (code, msg, details) and keeps stderr", async () => {
    const err = await failure(
      runWith("ADD", {
        exit: 1,
        stdout: { cniVersion: "1.0.0", code: 7, msg: "invalid config", details: "field x is wrong" },
        stderr: "log line from the plugin",
      }),
    );
    expect(err).toMatchObject({ plugin: "p", command: "ADD", code: 7, msg: "invalid config", details: "field x is wrong" });
    expect(err.stderr).toContain("log line from the plugin");
    expect(err.message).toBe('CNI plugin "p" ADD failed (code 7): invalid config: field x is wrong');
  });

  it("uses an error JSON on stderr when stdout is empty", async () => {
    const err = await failure(runWith("DEL", { exit: 1, stderr: { code: 11, msg: "try again later" } }));
    expect(err).toMatchObject({ command: "DEL", code: 11, msg: "try again later", details: undefined });
    expect(err.stderr).toContain("try again later");
  });

  it("uses plain-text stderr when stdout is empty", async () => {
    const err = await failure(runWith("ADD", { exit: 2, stderr: "panic: runtime error: index out of range\n" }));
    expect(err.code).toBeUndefined();
    expect(err.msg).toContain("panic: runtime error: index out of range");
    expect(err.message).toContain("panic: runtime error");
    expect(err.stderr).toContain("panic: runtime error");
  });

  it("reports garbage stdout with a non-zero exit as the plugin's message", async () => {
    const err = await failure(runWith("ADD", { exit: 3, stdout: "this is not json {", stderr: "more text" }));
    expect(err.code).toBeUndefined();
    expect(err.msg).toContain("this is not json {");
    expect(err.stderr).toContain("more text");
  });

  it("reports a non-zero exit that printed nothing", async () => {
    const err = await failure(runWith("CHECK", { exit: 4 }));
    expect(err.msg).toMatch(/exited with status 4 and printed nothing/);
  });

  it("treats exit 0 with empty stdout on ADD as an error (what a plugin without CNI_COMMAND does)", async () => {
    const err = await failure(
      runWith("ADD", { exit: 0, stdout: "", stderr: "CNI bridge plugin version unknown\nCNI protocol versions supported: 0.1.0, 1.0.0\n" }),
    );
    expect(err.msg).toMatch(/exited 0 but printed no result/);
    expect(err.stderr).toContain("CNI protocol versions supported");
  });

  it("treats exit 0 with non-JSON stdout on ADD as an error", async () => {
    const err = await failure(runWith("ADD", { exit: 0, stdout: "OK\n" }));
    expect(err.msg).toMatch(/not a JSON result: OK/);
  });

  it("accepts a DEL or CHECK that prints nothing", async () => {
    await expect(runWith("DEL", { exit: 0 })).resolves.toBeUndefined();
    await expect(runWith("CHECK", { exit: 0 })).resolves.toBeUndefined();
  });

  it("reports a plugin that cannot be executed as a runtime error", async () => {
    const path = join(env.fp.binDir, "notexec");
    await writeFile(path, "#!/bin/sh\nexit 0\n");
    await chmod(path, 0o644);
    const err = await execPlugin({ pluginPath: path, command: "ADD", cniPath: [env.fp.binDir], stdin: {}, timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniRuntimeError);
    expect((err as Error).message).toMatch(/cannot execute CNI plugin .*notexec.*EACCES/);
  });

  it("reports a plugin killed by a signal, naming the signal", async () => {
    const path = join(env.fp.binDir, "crash");
    await writeFile(path, "#!/bin/sh\ncat >/dev/null\nkill -SEGV $$\n");
    await chmod(path, 0o755);
    const err = await execPlugin({ pluginPath: path, command: "ADD", cniPath: [env.fp.binDir], stdin: {}, timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/crash.*SIGSEGV/);
  });

  it("retries a plugin binary that is still open for writing (text file busy)", async () => {
    const path = await env.fp.add("busy", { replies: { ADD: { stdout: { cniVersion: "1.0.0" } } } });
    const writer = await open(path, "r+"); // an upgrade in progress: exec fails with ETXTBSY
    const closed = new Promise((r) => setTimeout(r, 150)).then(() => writer.close());
    try {
      const out = await execPlugin({ pluginPath: path, command: "ADD", cniPath: [env.fp.binDir], stdin: { cniVersion: "1.0.0" }, timeoutMs: 5000 });
      expect(out).toEqual({ cniVersion: "1.0.0" });
    } finally {
      await closed;
    }
    expect((await env.fp.calls()).map((c) => c.command)).toEqual(["ADD"]);
  });

  it("reports each exec to the observer with its duration and outcome", async () => {
    const records: ExecRecord[] = [];
    const path = await env.fp.add("obs", { replies: { DEL: { exit: 1, stdout: { code: 3, msg: "x" } } } });
    const base = { pluginPath: path, containerId: "c9", cniPath: [env.fp.binDir], stdin: { cniVersion: "1.0.0" }, timeoutMs: 5000 };
    await execPlugin({ ...base, command: "ADD" }, (r) => records.push(r));
    await execPlugin({ ...base, command: "DEL" }, (r) => records.push(r)).catch(() => undefined);
    expect(records.map((r) => [r.plugin, r.command, r.containerId, r.ok])).toEqual([
      ["obs", "ADD", "c9", true],
      ["obs", "DEL", "c9", false],
    ]);
    for (const r of records) expect(r.ms).toBeGreaterThan(0);
  });
});

describe("timeout", () => {
  it("kills a hanging plugin (and the child holding its stdout) after execTimeoutMs", async () => {
    const started = performance.now();
    const err = await runWith("ADD", { sleepSeconds: 30, stdout: { cniVersion: "1.0.0" } }, { timeoutMs: 500 }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(CniRuntimeError);
    expect((err as Error).message).toMatch(/"p" ADD did not finish within 500 ms and was killed/);
    expect(elapsed, "the runtime must give up soon after the timeout, not wait for the plugin").toBeLessThan(3000);

    const { pid, childPid } = env.fp.pids("p");
    expect(pid, "the plugin should have recorded its pid").toBeTypeOf("number");
    expect(childPid, "the plugin should have recorded its child's pid").toBeTypeOf("number");
    // The plugin was reaped by us: it no longer exists at all.
    expect(() => process.kill(pid!, 0)).toThrow();
    // Its child was killed too (it may linger as a zombie until init reaps it).
    expect(await stillRunningAfter(childPid!)).toBe(false);
  });

  it("fails an ADD through the runtime on timeout and cleans up with DEL", async () => {
    await env.fp.add("hang", { replies: { ADD: { sleepSeconds: 30 } } });
    // The cleanup DEL runs under the same timeout: 1.5 s leaves the fake plugin time to start on
    // a loaded machine (400 ms lost the DEL at a load of 10 on 2 cores), far from the ADD's 30 s.
    const rt = env.runtime({ execTimeoutMs: 1500 });
    const net = netList({ cniVersion: "1.0.0", name: "hangnet", plugins: [{ type: "hang" }] });
    const started = performance.now();
    await expect(rt.add(net, { containerId: "c1", ifName: "eth0", netns: "/x" })).rejects.toThrow(/"hang" ADD did not finish within 1500 ms/);
    expect(performance.now() - started).toBeLessThan(15_000);
    const ops = await env.fp.operations();
    expect(ops.map((c) => c.command)).toEqual(["DEL"]); // the killed ADD never got to record itself
    expect(await stillRunningAfter(env.fp.pids("hang").childPid!)).toBe(false);
  });
});

describe("CNI_ARGS", () => {
  const net = () => netList({ cniVersion: "1.0.0", name: "argsnet", plugins: [{ type: "pa" }] });
  beforeEach(async () => {
    await env.fp.add("pa");
  });

  it("always starts with IgnoreUnknown=1 (once), then the caller's args in order", async () => {
    await env.rt.add(net(), { containerId: "c1", ifName: "eth0", netns: "/x" });
    await env.rt.add(net(), {
      containerId: "c2",
      ifName: "eth0",
      netns: "/x",
      args: [
        ["K8S_POD_NAMESPACE", "default"],
        ["IgnoreUnknown", "true"],
        ["IP", "10.1.2.3"],
      ],
    });
    const adds = (await env.fp.operations()).filter((c) => c.command === "ADD");
    expect(adds.map((c) => c.env.CNI_ARGS)).toEqual(["IgnoreUnknown=1", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;IP=10.1.2.3"]);
  });

  it.each([
    ["a ';'", [["K8S_POD_NAME", "web;x"]], /CNI_ARGS value for K8S_POD_NAME \("web;x"\) contains ';' or '='/],
    ["an injected pair", [["K8S_POD_NAME", "web;IP=10.0.0.1"]], /CNI_ARGS value for K8S_POD_NAME .*contains ';' or '='/],
    ["an '='", [["LABEL", "a=b"]], /CNI_ARGS value for LABEL .*contains ';' or '='/],
    ["a bad key", [["BAD KEY", "x"]], /CNI_ARGS key "BAD KEY" is invalid/],
    ["a key with '='", [["A=B", "x"]], /CNI_ARGS key "A=B" is invalid/],
  ] as Array<[string, Array<[string, string]>, RegExp]>)("rejects %s without executing any plugin", async (_what, args, message) => {
    const err = await env.rt.add(net(), { containerId: "c1", ifName: "eth0", netns: "/x", args }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniRuntimeError);
    expect((err as Error).message).toMatch(message);
    expect(await env.fp.calls()).toEqual([]);
    expect(env.execs).toEqual([]);
    // Also on DEL when there is no cached ADD to take the args from.
    await expect(env.rt.del(net(), { containerId: "c1", ifName: "eth0", args })).rejects.toThrow(message);
    expect(await env.fp.calls()).toEqual([]);
  });

  it("normalises and formats", () => {
    expect(formatCniArgs(normaliseCniArgs())).toBe("IgnoreUnknown=1");
    expect(formatCniArgs(normaliseCniArgs([["A", "1"], ["B", ""]]))).toBe("IgnoreUnknown=1;A=1;B=");
  });
});

describe("attachment validation", () => {
  it.each([
    [{ containerId: "bad/id", ifName: "eth0" }, /invalid CNI container id "bad\/id"/],
    [{ containerId: "-leading", ifName: "eth0" }, /invalid CNI container id/],
    [{ containerId: "ok", ifName: "a-very-long-ifname0" }, /invalid interface name/],
    [{ containerId: "ok", ifName: "eth:0" }, /invalid interface name/],
    [{ containerId: "ok", ifName: ".." }, /invalid interface name/],
  ])("rejects %o before running anything", async (att, message) => {
    await env.fp.add("pa");
    const net = netList({ cniVersion: "1.0.0", name: "valnet", plugins: [{ type: "pa" }] });
    await expect(env.rt.add(net, att)).rejects.toThrow(message);
    expect(await env.fp.calls()).toEqual([]);
  });
});

describe("missing plugin binary", () => {
  it("names the plugin and the CNI_PATH searched, before executing anything", async () => {
    await env.fp.add("pa");
    const net = netList({ cniVersion: "1.0.0", name: "missnet", plugins: [{ type: "pa" }, { type: "no-such-plugin" }] });
    const extraDir = join(env.fp.root, "other-bin");
    const rt = new CniRuntime({
      cniPath: [env.fp.binDir, extraDir],
      cacheDir: env.cacheDir,
      execTimeoutMs: 5000,
    });
    const err = await rt.add(net, { containerId: "c1", ifName: "eth0", netns: "/x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniRuntimeError);
    expect((err as Error).message).toContain('CNI plugin "no-such-plugin" not found in');
    expect((err as Error).message).toContain(`${env.fp.binDir}:${extraDir}`);
    expect(await env.fp.calls()).toEqual([]);
    expect(existsSync(rt.cache.path("missnet", "c1", "eth0"))).toBe(false);
  });

  it("findPlugin takes the first dir that has an executable file, skipping non-executables and dirs", async () => {
    const a = join(env.fp.root, "a");
    const b = env.fp.binDir;
    await mkdir(join(a, "pa"), { recursive: true }); // a directory named pa
    await env.fp.add("pa");
    expect(await findPlugin("pa", [a, b])).toBe(join(b, "pa"));
    await writeFile(join(a, "pb"), "#!/bin/sh\n");
    await chmod(join(a, "pb"), 0o644);
    await expect(findPlugin("pb", [a])).rejects.toThrow(/"pb" not found in/);
    await expect(findPlugin("../pa", [b])).rejects.toThrow(/invalid CNI plugin type/);
  });
});
