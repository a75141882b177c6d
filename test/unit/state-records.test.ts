// StateStore keeps the three record kinds (networks, endpoints, attachments) the same way: one
// damaged file must not stop `cni-shim gc`, detach or endpoints for all the others.
import { afterAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { Attacher } from "../../src/attach/attach.js";
import type { CniRuntime } from "../../src/cni/runtime.js";
import { attachmentRecords, type AttachmentRecord } from "../../src/attach/record.js";
import { StateStore, type NetworkRecord } from "../../src/driver/state.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cnishim-state-"));
  dirs.push(dir);
  return dir;
}

const attachment = (containerName: string, network = "net1"): AttachmentRecord => ({
  containerId: "c".repeat(64),
  containerName,
  network,
  conflist: "{}",
  netns: "/proc/1/ns/net",
  ifName: "eth0",
  portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
  cniArgs: [["K8S_POD_NAME", containerName]],
  result: { cniVersion: "1.0.0" },
  createdAt: new Date().toISOString(),
});

const network = (id: string): NetworkRecord => ({ id, mode: "named", conflist: { cniVersion: "1.0.0", name: "n", plugins: [{ type: "bridge" }] }, source: "test", internal: false, createdAt: new Date().toISOString() });

describe("attachment records", () => {
  it("skips a file that is not JSON or not a record, and lists the rest", async () => {
    const state = await stateDir();
    await mkdir(join(state, "attachments"));
    await writeFile(join(state, "attachments", "good.json"), JSON.stringify(attachment("web")));
    await writeFile(join(state, "attachments", "torn.json"), '{"containerId": "abc", ');
    await writeFile(join(state, "attachments", "other.json"), JSON.stringify({ hello: 1 }));
    const attacher = new Attacher({} as CniRuntime, {} as Docker, new StateStore(state), []);
    const list = await attacher.list();
    expect(list.map((a) => a.containerName)).toEqual(["web"]);
  });

  it("reads and writes attachments/<container id>-<network>.json, the file attach has always written", async () => {
    const state = await stateDir();
    const old = attachment("db", "k8s-pod-network");
    // As the attacher wrote it before attachments moved into StateStore.
    await mkdir(join(state, "attachments"));
    await writeFile(join(state, "attachments", `${old.containerId}-${old.network}.json`), JSON.stringify(old, null, 2));
    const store = attachmentRecords(new StateStore(state));
    expect(await store.list()).toEqual([old]);

    const next = attachment("db", "other-net");
    await store.put(next);
    expect(JSON.parse(await readFile(join(state, "attachments", `${next.containerId}-other-net.json`), "utf8"))).toEqual(next);
    await store.delete(old);
    expect(await readdir(join(state, "attachments"))).toEqual([`${next.containerId}-other-net.json`]);
    expect(await store.list()).toEqual([next]);
  });

  it("refuses a network name that would leave the attachments dir", async () => {
    const store = attachmentRecords(new StateStore(await stateDir()));
    await expect(store.put(attachment("web", "../../etc/x"))).rejects.toThrow(/invalid id/);
  });
});

describe("network and endpoint records", () => {
  it("lists nothing from a state dir that does not exist yet", async () => {
    const store = new StateStore(join(await stateDir(), "never-created"));
    expect(await store.listNetworks()).toEqual([]);
    expect(await store.listEndpoints()).toEqual([]);
    expect(await attachmentRecords(store).list()).toEqual([]);
  });

  it("skips a torn or foreign network file when listing; reading it by id says it is damaged", async () => {
    const state = await stateDir();
    const store = new StateStore(state);
    await store.putNetwork(network("good"));
    await writeFile(join(state, "networks", "torn.json"), '{"id": "torn", ');
    await writeFile(join(state, "networks", "foreign.json"), JSON.stringify({ id: "foreign" }));
    await writeFile(join(state, "networks", ".good.json.1234.tmp"), "{");
    expect((await store.listNetworks()).map((n) => n.id)).toEqual(["good"]);
    await expect(store.getNetwork("torn")).rejects.toThrow(/torn\.json is damaged .*move it away and run "cni-shim gc"/);
    await expect(store.getNetwork("foreign")).rejects.toThrow(/foreign\.json is damaged/);
    expect(await store.getNetwork("absent")).toBeUndefined();
  });
});

describe("parsed records kept between reads (validated by stat)", () => {
  it("sees what another process wrote, changed or removed, and hands out copies", async () => {
    const dir = await stateDir();
    const mine = new StateStore(dir);
    const other = new StateStore(dir); // e.g. compare or gc in another process
    await mine.putNetwork(network("n1"));
    await mine.putNetwork(network("n2"));
    expect((await mine.listNetworks()).map((n) => n.id).sort()).toEqual(["n1", "n2"]);
    // Written behind our back: a new file, a changed one (same size, new content), a removed one.
    await other.putNetwork(network("n3"));
    await other.putNetwork({ ...network("n1"), source: "tset" });
    await other.deleteNetwork("n2");
    const listed = await mine.listNetworks();
    expect(listed.map((n) => [n.id, n.source]).sort()).toEqual([
      ["n1", "tset"],
      ["n3", "test"],
    ]);
    expect(await mine.getNetwork("n2")).toBeUndefined();
    // A caller changing what it got changes nothing for the next reader.
    listed[0]!.source = "changed by a caller";
    (await mine.getNetwork("n3"))!.source = "changed by a caller";
    expect((await mine.listNetworks()).map((n) => n.source).sort()).toEqual(["test", "tset"]);
    expect((await mine.getNetwork("n3"))?.source).toBe("test");
  });

  it("a file damaged after it was read is reported, not served from memory", async () => {
    const dir = await stateDir();
    const state = new StateStore(dir);
    await state.putNetwork(network("n1"));
    expect(await state.getNetwork("n1")).toBeDefined();
    await writeFile(join(dir, "networks", "n1.json"), "{ not json");
    await expect(state.getNetwork("n1")).rejects.toThrow(/damaged/);
    expect(await state.listNetworks()).toEqual([]);
  });

  it("serves an unchanged file (same inode, mtime and size) from memory without reading it", async () => {
    const dir = await stateDir();
    const state = new StateStore(dir);
    await state.putNetwork(network("n1"));
    const path = join(dir, "networks", "n1.json");
    await utimes(path, 1_000_000, 1_000_000); // whole seconds: set back exactly below
    expect((await state.listNetworks())[0]?.source).toBe("test");
    // Rewritten in place with the same size and its times put back: only a read would notice.
    await writeFile(path, (await readFile(path, "utf8")).replace('"test"', '"TEST"'));
    await utimes(path, 1_000_000, 1_000_000);
    expect((await state.listNetworks())[0]?.source).toBe("test");
    expect((await new StateStore(dir).listNetworks())[0]?.source).toBe("TEST");
  });
  it("keeps a copy of what it wrote, not the caller's object, and still sees another process's write after it", async () => {
    const dir = await stateDir();
    const state = new StateStore(dir);
    const rec = network("n1");
    await state.putNetwork(rec);
    rec.source = "changed by the writer after the put";
    expect((await state.getNetwork("n1"))?.source).toBe("test");
    // Another process's write is a new file (a rename): seen at once.
    await new StateStore(dir).putNetwork({ ...network("n1"), source: "other" });
    expect((await state.getNetwork("n1"))?.source).toBe("other");
    await state.putNetwork(network("n1"));
    expect((await new StateStore(dir).getNetwork("n1"))?.source).toBe("test");
  });
});

describe("records written by older versions", () => {
  it("reads a network record and an endpoint record from before attach strategies: the endpoint is a staging hand-out", async () => {
    const dir = await stateDir();
    await mkdir(join(dir, "networks"));
    await mkdir(join(dir, "endpoints"));
    const conflist = { cniVersion: "1.0.0", name: "pods", plugins: [{ type: "bridge", bridge: "cni0", ipam: { type: "host-local", ranges: [[{ subnet: "10.88.0.0/16" }]] } }, { type: "portmap", capabilities: { portMappings: true } }] };
    const net = { id: "n1", mode: "named", conflist, source: "/etc/cni/net.d/10-pods.conflist", internal: false, createdAt: "2026-01-01T00:00:00.000Z" };
    const ep = {
      id: "e".repeat(64),
      networkId: "n1",
      phase: "joined",
      cniContainerId: "e".repeat(64),
      ifName: "eth0",
      stagingNetns: "cni-shim-eeeeeeeeeeee",
      tmpName: "cseeeeeeeeeeee",
      portMappings: [],
      cniArgs: [],
      capabilityArgs: {},
      sandboxKey: "/var/run/docker/netns/0123456789ab",
      createdAt: "2026-01-01T00:00:00.000Z",
    };
    await writeFile(join(dir, "networks", "n1.json"), JSON.stringify(net));
    await writeFile(join(dir, "endpoints", `${ep.id}.json`), JSON.stringify(ep));
    const store = new StateStore(dir);
    const readNet = await store.getNetwork("n1");
    expect(readNet?.conflist).toEqual(conflist);
    expect(readNet?.conflist.plugins.map((p) => p.type)).toEqual(["bridge", "portmap"]);
    expect(await store.getEndpoint(ep.id)).toEqual({ ...ep, attach: "staging-handoff" });
  });

  it("refuses a network record whose list is not a CNI network list", async () => {
    const dir = await stateDir();
    await mkdir(join(dir, "networks"));
    await writeFile(join(dir, "networks", "bad.json"), JSON.stringify({ ...network("bad"), conflist: { name: "n" } }));
    await expect(new StateStore(dir).getNetwork("bad")).rejects.toThrow(/bad\.json is damaged .*conflist/);
  });
});
