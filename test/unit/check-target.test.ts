// What CHECK of a joined endpoint runs with (driver/check-target.ts): the cached result placed
// in the container's namespace, and the endpoints that cannot be checked, with why.
import { describe, expect, it } from "vitest";
import { checkTarget } from "../../src/driver/check-target.js";
import { checkEndpoint, type EndpointCheckDeps } from "../../src/driver/endpoint-check.js";
import type { Attachment } from "../../src/cni/runtime.js";
import type { NetworkRecord } from "../../src/driver/state.js";
import type { CacheEntry } from "../../src/cni/schemas.js";
import type { EndpointRecord } from "../../src/driver/state.js";

const staging = "/run/netns/cni-shim-p123-4";
const sandbox = "/var/run/docker/netns/0123abcd";
const rec: EndpointRecord = {
  id: "e".repeat(64),
  networkId: "n".repeat(64),
  phase: "joined",
  attach: "staging-handoff",
  cniContainerId: "e".repeat(64),
  ifName: "eth0",
  stagingNetns: "cni-shim-p123-4",
  tmpName: "cseeeeeeeeeeee",
  macAddress: "02:42:0a:01:00:05",
  portMappings: [],
  cniArgs: [["K8S_POD_NAME", "endpoint-eee"]],
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
  sandboxKey: sandbox,
  createdAt: "2026-01-01T00:00:00Z",
};
const entry: CacheEntry = {
  kind: "cniCacheV1",
  containerId: rec.cniContainerId,
  config: "",
  ifName: "eth0",
  networkName: "net",
  netns: staging,
  cniArgs: [["IgnoreUnknown", "1"], ["K8S_POD_NAME", "endpoint-eee"]],
  capabilityArgs: rec.capabilityArgs,
  result: { cniVersion: "1.1.0", interfaces: [{ name: "cs-net" }, { name: "veth1" }, { name: "eth0", mac: "1a:65:6d:24:09:dd", sandbox: staging }], ips: [{ address: "10.1.0.5/24", interface: 2 }] },
};

describe("checkTarget", () => {
  it("runs in the container's namespace, with the ADD's args and its result's interface moved there, with the MAC Docker gave it", () => {
    const t = checkTarget(rec, entry, "eth0");
    expect(t).toEqual({
      kind: "check",
      attachment: { containerId: rec.cniContainerId, netns: sandbox, ifName: "eth0", args: entry.cniArgs, capabilityArgs: entry.capabilityArgs },
      prevResult: { ...entry.result, interfaces: [{ name: "cs-net" }, { name: "veth1" }, { name: "eth0", mac: rec.macAddress, sandbox }] },
    });
  });

  it("gives the plugins the namespace where this process opens it (a managed plugin: in dockerd's view)", () => {
    const opened = `/proc/4242/root${sandbox}`;
    const t = checkTarget(rec, entry, "eth0", opened);
    expect(t.kind === "check" && t.attachment.netns).toBe(opened);
    expect(t.kind === "check" && (t.prevResult.interfaces as Array<{ sandbox?: string }>)[2]?.sandbox).toBe(opened);
  });

  it("skips an endpoint not in a container, and one whose interface Docker named otherwise", () => {
    expect(checkTarget({ ...rec, phase: "ready", sandboxKey: undefined }, entry, undefined)).toMatchObject({ kind: "skip", why: "not in a container (ready)" });
    const other = checkTarget(rec, entry, "eth1");
    expect(other.kind).toBe("skip");
    expect(other.kind === "skip" && other.why).toMatch(/is eth1 in the container/);
  });

  it("fails one whose cached result or interface is gone", () => {
    const noCache = checkTarget(rec, undefined, "eth0");
    expect(noCache.kind === "fail" && noCache.why).toMatch(/no cached CNI result/);
    expect(checkTarget(rec, entry, undefined)).toMatchObject({ kind: "fail", why: "no interface with MAC 02:42:0a:01:00:05 in the container" });
  });
});

describe("checkEndpoint where the namespace opens", () => {
  const net = { id: rec.networkId, conflist: { cniVersion: "1.0.0", name: "net", plugins: [{ type: "bridge" }] } } as unknown as NetworkRecord;
  const deps = (sight: EndpointCheckDeps["sight"], checked: Attachment[]): EndpointCheckDeps => ({
    cni: {
      cache: { read: () => Promise.resolve(entry) } as unknown as EndpointCheckDeps["cni"]["cache"],
      check: (_list, att) => (checked.push(att), Promise.resolve(undefined)),
    },
    linkByMac: () => Promise.resolve("eth0"),
    sight,
  });

  it("checks in dockerd's view of the key when that is where this process sees it, and skips (no drift) when it cannot look", async () => {
    const checked: Attachment[] = [];
    const opened = `/proc/4242/root${sandbox}`;
    expect(await checkEndpoint(deps(() => Promise.resolve({ kind: "visible", path: opened }), checked), rec, net)).toMatchObject({ status: "ok" });
    expect(checked.map((a) => a.netns)).toEqual([opened]);
    const unseen = await checkEndpoint(deps(() => Promise.resolve({ kind: "unseen", why: "no CAP_SYS_PTRACE" }), checked), rec, net);
    expect(unseen).toMatchObject({ status: "skipped", message: "cannot open the container's namespace: no CAP_SYS_PTRACE" });
    expect(checked).toHaveLength(1);
  });
});
