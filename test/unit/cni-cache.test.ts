// The on-disk result cache: libcni's layout and format, so cnitool and friends can read it.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ResultCache } from "../../src/cni/cache.js";
import { CniRuntime } from "../../src/cni/runtime.js";
import { findConfList } from "../../src/cni/config.js";
import type { CacheEntry } from "../../src/cni/schemas.js";
import { fakeEnv, type FakeEnv } from "../helpers/cni-setup.js";
import { tempDir as makeTempDir } from "../helpers/fake-plugin.js";

let env: FakeEnv;
const extraDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await makeTempDir(prefix);
  extraDirs.push(dir);
  return dir;
}
beforeEach(async () => {
  env = await fakeEnv();
  await env.fp.add("first");
  await env.fp.add("last", { replies: { ADD: { stdout: { cniVersion: "1.0.0", interfaces: [{ name: "eth0", sandbox: "/x" }], ips: [{ address: "10.9.0.5/24", interface: 0 }] } } } });
});
afterEach(async () => {
  await env.cleanup();
  for (const dir of extraDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

// Deliberately odd formatting: the cache must hold these exact bytes, not a re-serialisation.
const CONFLIST_TEXT = `{
    "cniVersion": "1.0.0",
    "name":   "cachenet",
    "plugins": [ { "type": "first", "capabilities": { "portMappings": true } },
                 { "type": "last", "custom": "x" } ]
}
`;

describe("result cache", () => {
  it("writes <cacheDir>/results/<net>-<id>-<ifname> (0600 in a 0700 dir) in libcni's cniCacheV1 format", async () => {
    const confDir = await tempDir("cnishim-conf-");
    await writeFile(join(confDir, "10-cachenet.conflist"), CONFLIST_TEXT);
    const net = await findConfList([confDir], "cachenet");
    const ports = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }];

    await env.rt.add(net, { containerId: "abc123", ifName: "eth1", netns: "/var/run/netns/ns1", args: [["K8S_POD_NAME", "p"]], capabilityArgs: { portMappings: ports } });

    const file = join(env.cacheDir, "results", "cachenet-abc123-eth1");
    expect(env.rt.cache.path("cachenet", "abc123", "eth1")).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(env.cacheDir, "results"))).mode & 0o777).toBe(0o700);
    // Only the entry itself: no temp files left behind by the atomic write.
    expect(await readdir(join(env.cacheDir, "results"))).toEqual(["cachenet-abc123-eth1"]);

    const entry = JSON.parse(await readFile(file, "utf8")) as CacheEntry;
    expect(entry).toEqual({
      kind: "cniCacheV1",
      containerId: "abc123",
      config: Buffer.from(CONFLIST_TEXT).toString("base64"),
      ifName: "eth1",
      networkName: "cachenet",
      netns: "/var/run/netns/ns1",
      cniArgs: [
        ["IgnoreUnknown", "1"],
        ["K8S_POD_NAME", "p"],
      ],
      capabilityArgs: { portMappings: ports },
      result: { cniVersion: "1.0.0", interfaces: [{ name: "eth0", sandbox: "/x" }], ips: [{ address: "10.9.0.5/24", interface: 0 }] },
    });
    expect(Buffer.from(entry.config, "base64").equals(await readFile(join(confDir, "10-cachenet.conflist")))).toBe(true);

    // The list can be rebuilt from the cache alone (GC of a network whose file is gone).
    const rebuilt = CniRuntime.confListOf(entry);
    expect(rebuilt.conflist.name).toBe("cachenet");
    expect(rebuilt.conflist.plugins.map((p) => p.type)).toEqual(["first", "last"]);
    expect(rebuilt.conflist.plugins[1]).toMatchObject({ custom: "x" });
  });

  it("creates the results dir 0700 even when the cache dir did not exist", async () => {
    const root = await tempDir("cnishim-cacheroot-");
    const cache = new ResultCache(join(root, "deep", "cni"));
    await cache.write({ kind: "cniCacheV1", containerId: "c", config: "", ifName: "eth0", networkName: "n", result: { cniVersion: "1.0.0" } });
    expect((await stat(join(root, "deep", "cni", "results"))).mode & 0o777).toBe(0o700);
    expect((await stat(cache.path("n", "c", "eth0"))).mode & 0o777).toBe(0o600);
  });

  it("reads entries written by libcni tools and ignores corrupt or foreign files", async () => {
    const cache = new ResultCache(env.cacheDir);
    await mkdir(cache.resultsDir, { recursive: true, mode: 0o700 });
    // As written by libcni (cnitool): no capabilityArgs when there were none.
    const libcni = { kind: "cniCacheV1", containerId: "id1", config: Buffer.from(CONFLIST_TEXT).toString("base64"), ifName: "eth0", networkName: "cachenet", cniArgs: [["IgnoreUnknown", "1"]], result: { cniVersion: "1.0.0" } };
    await writeFile(cache.path("cachenet", "id1", "eth0"), JSON.stringify(libcni));
    await writeFile(cache.path("cachenet", "id2", "eth0"), "{ torn");
    await writeFile(cache.path("cachenet", "id3", "eth0"), JSON.stringify({ kind: "somethingElse" }));
    // A network whose name has ours as a prefix.
    await writeFile(cache.path("cachenet-b", "id4", "eth0"), JSON.stringify({ ...libcni, containerId: "id4", networkName: "cachenet-b" }));

    expect(await cache.read("cachenet", "id1", "eth0")).toEqual(libcni);
    expect(await cache.read("cachenet", "id2", "eth0")).toBeUndefined();
    expect(await cache.read("cachenet", "id3", "eth0")).toBeUndefined();
    expect(await cache.read("cachenet", "missing", "eth0")).toBeUndefined();
    expect((await cache.list("cachenet")).map((e) => e.containerId)).toEqual(["id1"]);
    expect((await cache.list("cachenet-b")).map((e) => e.containerId)).toEqual(["id4"]);
    expect(await new ResultCache(join(env.cacheDir, "nope")).list("cachenet")).toEqual([]);
  });

  it("uses a libcni-written cache entry for DEL", async () => {
    const cache = env.rt.cache;
    await mkdir(cache.resultsDir, { recursive: true, mode: 0o700 });
    const result = { cniVersion: "1.0.0", ips: [{ address: "10.9.0.77/24" }] };
    await writeFile(
      cache.path("cachenet", "id1", "eth0"),
      JSON.stringify({ kind: "cniCacheV1", containerId: "id1", config: Buffer.from(CONFLIST_TEXT).toString("base64"), ifName: "eth0", networkName: "cachenet", cniArgs: [["IgnoreUnknown", "1"], ["X", "y"]], result }),
    );
    const confDir = await tempDir("cnishim-conf-");
    await writeFile(join(confDir, "10-cachenet.conflist"), CONFLIST_TEXT);
    await env.rt.del(await findConfList([confDir], "cachenet"), { containerId: "id1", ifName: "eth0" });
    const ops = await env.fp.operations();
    expect(ops.map((c) => `${c.command} ${c.plugin}`)).toEqual(["DEL last", "DEL first"]);
    for (const c of ops) {
      expect(c.stdin.prevResult).toEqual(result);
      expect(c.env.CNI_ARGS).toBe("IgnoreUnknown=1;X=y");
      expect(c.env).not.toHaveProperty("CNI_NETNS");
    }
    expect(await cache.read("cachenet", "id1", "eth0")).toBeUndefined();
  });
});
