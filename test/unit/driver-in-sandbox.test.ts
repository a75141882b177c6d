// The in-sandbox attach with fakes (no root): the ADD at Join in the container's namespace with
// the next free eth<N>, Docker told the MAC at CreateEndpoint and given no interface or gateway,
// the namespace held after Leave for the teardown, the fall-back to the hand-out when a Join
// finds no namespace, and what the choice of path learns from Joins.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setLogLevel } from "../../src/util/log.js";
import { AttachChoice } from "../../src/driver/attach-choice.js";
import type { DockerView } from "../../src/driver/mixed.js";
import { NET_ID, OTHER_NET_ID, endpointRequest, gate, harness, putNetwork, testConfList, type Harness } from "../helpers/driver-fakes.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const KEY = "/var/run/docker/netns/0123456789ab";

describe("in-sandbox attach", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({ attach: new AttachChoice("sandbox") });
    await putNetwork(h.state);
    h.host.sandboxes.set(KEY, []);
  });
  afterEach(async () => h.cleanup());

  const join = (id: string, key = KEY) => h.driver.join({ NetworkID: "n".repeat(64), EndpointID: id, SandboxKey: key, Options: {} });

  it("adds nothing at CreateEndpoint and tells Docker the MAC the chain will get", async () => {
    const reply = await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(reply).toEqual({ Interface: { MacAddress: "02:42:0a:01:00:05" } });
    expect(h.cni.adds).toEqual([]);
    const rec = await h.state.getEndpoint(A);
    expect(rec).toMatchObject({ phase: "ready", attach: "in-sandbox", macAddress: "02:42:0a:01:00:05" });
    expect(h.host.prepareCalls).toBe(0); // no staging namespace made ahead for this path
  });

  it("runs the ADD at Join in the container's namespace and gives Docker no interface and no gateway", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const reply = await join(A);
    expect(reply).toEqual({ DisableGatewayService: true });
    expect(h.cni.adds).toHaveLength(1);
    expect(h.cni.adds[0]).toMatchObject({ netns: KEY, ifName: "eth0" });
    expect(h.cni.adds[0]?.capabilityArgs?.mac).toBe("02:42:0a:01:00:05");
    expect(await h.state.getEndpoint(A)).toMatchObject({ phase: "joined", sandboxKey: KEY, ifName: "eth0" });
  });

  it("gets the next look ready once CreateEndpoint's reply and once Join's reply are out, not before", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(h.host.lookPrepared).toBe(0); // the fork blocks: the reply goes first
    await new Promise((r) => setImmediate(r));
    expect(h.host.lookPrepared).toBe(1);
    await join(A);
    expect(h.host.lookPrepared).toBe(1);
    await new Promise((r) => setImmediate(r));
    // The next start's look: ready before its CreateEndpoint, whose Join comes a few ms after it.
    expect(h.host.lookPrepared).toBe(2);
    await expect(join("c".repeat(64))).rejects.toThrow(/was not created by cni-shim/);
    await new Promise((r) => setImmediate(r));
    expect(h.host.lookPrepared).toBe(2); // a Join refused before any look took none
  });

  it("looks inside the namespace once per Join, started as the Join arrives; a look that failed that early is made again", async () => {
    const looks: string[] = [];
    const look = h.host.lookInside;
    let failFirst = false;
    h.host.lookInside = (nsFile: string) => {
      looks.push(nsFile);
      if (failFirst) {
        failFirst = false;
        return Promise.reject(new Error("no namespace yet"));
      }
      return look(nsFile);
    };
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await join(A);
    expect(looks).toEqual([KEY]);
    failFirst = true;
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    h.host.sandboxes.set("/var/run/docker/netns/b", []);
    await join(B, "/var/run/docker/netns/b");
    expect(looks).toEqual([KEY, "/var/run/docker/netns/b", "/var/run/docker/netns/b"]);
    expect(h.cni.adds.map((a) => a.ifName)).toEqual(["eth0", "eth0"]);
  });

  it("asks Docker's lists once, as CreateEndpoint replies, for its Join; a container starting with a Docker network takes the hand-out", async () => {
    const looks = gate();
    const order: string[] = [];
    await h.cleanup();
    const views: DockerView[] = [
      { containers: [{ id: "c1", state: "created", networks: [{ key: "cni", networkId: NET_ID }] }], networks: [{ id: NET_ID, name: "cni" }] },
      { containers: [{ id: "c2", state: "created", networks: [{ key: "cni", networkId: "" }, { key: "mybridge", networkId: "" }] }], networks: [{ id: NET_ID, name: "cni" }, { id: "d".repeat(64), name: "mybridge" }] },
    ];
    h = await harness({ attach: new AttachChoice("sandbox"), dockerContainers: { view: () => (order.push("view"), Promise.resolve(views.shift()!)) } });
    const look = h.host.lookInside;
    h.host.lookInside = async (nsFile: string) => {
      order.push("look");
      await looks.promise;
      return look(nsFile);
    };
    await putNetwork(h.state);
    h.host.sandboxes.set(KEY, []);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(order).toEqual([]); // not beside CreateEndpoint's own steps
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(["view"]); // once it replied, for its Join
    const joined = join(A);
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(["view", "look"]); // not asked again at Join
    looks.open();
    await joined;
    expect(h.cni.adds[0]).toMatchObject({ netns: KEY, ifName: "eth0" }); // cni-shim networks only: in the sandbox
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    await new Promise((r) => setImmediate(r)); // Docker's Join comes after CreateEndpoint's reply
    h.host.sandboxes.set("/var/run/docker/netns/b", []);
    const reply = await join(B, "/var/run/docker/netns/b");
    expect(order).toEqual(["view", "look", "view", "look"]);
    expect(h.cni.adds[1]?.netns).not.toBe("/var/run/docker/netns/b"); // the hand-out: Docker moves it in
    expect(reply.InterfaceName?.DstPrefix).toBe("eth");
  });

  it("asks Docker's lists once when the Join comes before CreateEndpoint's reply has gone", async () => {
    await h.cleanup();
    let views = 0;
    h = await harness({ attach: new AttachChoice("sandbox"), dockerContainers: { view: () => (views++, Promise.resolve({ containers: [], networks: [] })) } });
    await putNetwork(h.state);
    h.host.sandboxes.set(KEY, []);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await join(A);
    await new Promise((r) => setImmediate(r));
    expect(views).toBe(1);
  });

  it("names the interface after cni-shim's own already in the namespace (docker network connect)", async () => {
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    await join(B);
    expect(h.cni.adds[0]?.ifName).toBe("eth0");
    h.host.sandboxLinks.set(KEY, ["lo", "eth0"]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const reply = await join(A);
    expect(h.cni.adds[1]?.ifName).toBe("eth1");
    expect(h.cni.adds[1]?.netns).toBe(KEY);
    expect(reply.InterfaceName).toBeUndefined();
  });

  it("takes the hand-out when Docker's interfaces are in the namespace (a container with a Docker-managed network)", async () => {
    h.host.sandboxLinks.set(KEY, ["lo", "eth0"]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const reply = await join(A);
    expect(h.cni.adds[0]?.netns).not.toBe(KEY);
    expect(reply.InterfaceName?.DstPrefix).toBe("eth");
    expect(reply.InterfaceName?.SrcName).toBeTruthy();
  });

  it("asks a chain without the mac capability for the MAC in CNI_ARGS, and sets it after the ADD, through the look, only where no plugin did", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await join(A);
    expect(h.cni.adds[0]?.args).toContainEqual(["MAC", "02:42:0a:01:00:05"]);
    // The fake chain's result has a MAC of its own (as ptp's): set after the ADD.
    expect(h.host.macsSet).toEqual([{ nsFile: KEY, ifName: "eth0", mac: "02:42:0a:01:00:05" }]);
    // A chain that took MAC= (bridge, tuning) reports it: nothing more to do.
    const chainOwn = h.cni.resultFor;
    h.cni.resultFor = (att) => ({ ...chainOwn(att), interfaces: [{ name: att.ifName, mac: "02:42:0a:01:00:06", sandbox: att.netns }] });
    h.host.sandboxes.set("/var/run/docker/netns/b", []);
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    await join(B, "/var/run/docker/netns/b");
    expect(h.host.macsSet).toHaveLength(1);
  });

  it("fails the Join with advice when the interface takes no MAC after the ADD", async () => {
    h.host.afterAddError = new Error("RTNETLINK answers: Device or resource busy");
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await expect(join(A)).rejects.toThrow(/eth0 took no MAC while up \(RTNETLINK answers: Device or resource busy\): add \{"type": "tuning"/);
  });

  it("gives a chain with tuning's mac capability the MAC as the capability alone (no MAC= in CNI_ARGS)", async () => {
    await h.cleanup();
    h = await harness({ attach: new AttachChoice("sandbox") });
    const list = testConfList();
    await putNetwork(h.state, OTHER_NET_ID, { ...list, plugins: [...list.plugins, { type: "tuning", capabilities: { mac: true } }] });
    h.host.sandboxes.set(KEY, []);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24", networkId: OTHER_NET_ID }));
    await join(A);
    expect(h.cni.adds[0]?.args?.some(([k]) => k === "MAC")).toBe(false);
    expect(h.cni.adds[0]?.capabilityArgs?.mac).toBe("02:42:0a:01:00:05");
  });

  it("leaves the default route to the network that had it", async () => {
    const withDefault = h.cni.resultFor;
    h.cni.resultFor = (att) => ({ ...withDefault(att), routes: [{ dst: "0.0.0.0/0", gw: "10.1.0.1" }] });
    h.host.sandboxDefaults.set(KEY, [4]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await join(A);
    expect(h.host.defaultRoutesDeleted).toEqual([{ nsFile: KEY, ifName: "eth0", families: [4] }]);
    // Alone in its namespace, the chain's default route stays.
    h.host.sandboxDefaults.delete(KEY);
    h.host.sandboxes.set("/var/run/docker/netns/other", []);
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    await join(B, "/var/run/docker/netns/other");
    expect(h.host.defaultRoutesDeleted).toHaveLength(1);
  });

  it("holds the namespace after Leave and tears the endpoint down there", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await join(A);
    await h.driver.leave({ NetworkID: "n".repeat(64), EndpointID: A });
    expect(h.host.held.get(`cni-shim-${A.slice(0, 12)}`)).toBe(KEY);
    await h.driver.deleteEndpoint({ NetworkID: "n".repeat(64), EndpointID: A });
    const target = h.teardown.targets.at(-1)!;
    expect(target.stagingNetns).toBe(`cni-shim-${A.slice(0, 12)}`);
    expect(target.liveNetns).toBeUndefined();
    expect(target.attachment.ifName).toBe("eth0");
    expect(await h.state.getEndpoint(A)).toBeUndefined();
  });

  it("falls back to the hand-out when the namespace does not exist at Join", async () => {
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    const reply = await join(B, "/var/run/docker/netns/not-there");
    expect(reply.InterfaceName).toEqual({ SrcName: `cs${B.slice(0, 12)}`, DstPrefix: "eth" });
    const rec = await h.state.getEndpoint(B);
    expect(rec).toMatchObject({ attach: "staging-handoff", phase: "joined", stagingNetns: `cni-shim-${B.slice(0, 12)}` });
    expect(h.cni.adds[0]?.netns).toBe(`/run/netns/cni-shim-${B.slice(0, 12)}`);
  });
});

describe("in-sandbox attach where keys open elsewhere (a managed plugin)", () => {
  let h: Harness;
  const choice = new AttachChoice("auto");
  beforeEach(async () => {
    h = await harness({ attach: choice });
    await choice.setEngine("28.5.2");
    await putNetwork(h.state);
  });
  afterEach(async () => h.cleanup());
  const join = (id: string) => h.driver.join({ NetworkID: "n".repeat(64), EndpointID: id, SandboxKey: KEY, Options: {} });

  it("on auto runs the chain where the key opens and hands the interface to Docker from there", async () => {
    const opened = "/proc/42/root/run/docker/netns/0123456789ab";
    h.host.sandboxes.set(KEY, []);
    h.host.openedAt.set(KEY, opened);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect((await join(A)).InterfaceName).toEqual({ SrcName: `cs${A.slice(0, 12)}`, DstPrefix: "eth" });
    expect(h.cni.adds[0]).toMatchObject({ netns: opened, ifName: "eth0" });
    expect(h.host.handedOutOf).toEqual([{ nsFile: opened, ifName: "eth0", tmpName: `cs${A.slice(0, 12)}` }]);
  });

  it("on --attach sandbox runs the chain where the key opens, keeps Docker's key in the record, and holds that namespace after Leave", async () => {
    const sandboxChoice = new AttachChoice("sandbox");
    await sandboxChoice.setEngine("28.5.2");
    await h.cleanup();
    h = await harness({ attach: sandboxChoice });
    await putNetwork(h.state);
    const opened = "/proc/42/root/run/docker/netns/0123456789ab";
    h.host.sandboxes.set(KEY, []);
    h.host.openedAt.set(KEY, opened);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(await join(A)).toEqual({ DisableGatewayService: true });
    expect(h.cni.adds[0]).toMatchObject({ netns: opened, ifName: "eth0" });
    expect(await h.state.getEndpoint(A)).toMatchObject({ attach: "in-sandbox", sandboxKey: KEY });
    await h.driver.leave({ NetworkID: "n".repeat(64), EndpointID: A });
    expect(h.host.held.get(`cni-shim-${A.slice(0, 12)}`)).toBe(opened);
  });

  it("takes the hand-out for a key it cannot look for, without taking the engine for one that makes the namespace late", async () => {
    h.host.keysUnseen = "dockerd's view is closed";
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    const reply = await join(B);
    expect(reply.InterfaceName).toEqual({ SrcName: `cs${B.slice(0, 12)}`, DstPrefix: "eth" });
    expect(choice.decide()).toMatchObject({ kind: "staging-handoff", joinsWithout: 0, why: expect.stringContaining("dockerd's view is closed") as string });
  });
});

describe("the choice of path", () => {
  it("follows the engine's version until a Join is seen, then the Joins; a Join without namespace wins", async () => {
    const c = new AttachChoice("auto");
    expect(c.decide().kind).toBe("staging-handoff"); // nothing known
    await c.setEngine("28.5.2+dfsg4");
    expect(c.decide().kind).toBe("in-sandbox");
    await c.setEngine("20.10.24+dfsg1");
    expect(c.decide().kind).toBe("staging-handoff");
    c.observe({ kind: "visible" }); // e.g. docker network connect: the namespace exists on every engine
    expect(c.decide().kind).toBe("in-sandbox");
    c.observe({ kind: "missing" }); // a docker run whose namespace came after Join
    c.observe({ kind: "visible" });
    expect(c.decide()).toMatchObject({ kind: "staging-handoff", joinsWithout: 1, joinsWithNamespace: 2 });
    await c.setEngine("28.5.2+dfsg4"); // another engine: learnt afresh
    expect(c.decide()).toMatchObject({ kind: "in-sandbox", joinsWithout: 0 });
  });

  it("is forced by --attach", () => {
    expect(new AttachChoice("handoff").decide().kind).toBe("staging-handoff");
    const s = new AttachChoice("sandbox");
    s.observe({ kind: "missing" });
    expect(s.decide().kind).toBe("in-sandbox");
  });

  it("keeps what it saw across a restart", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const dir = await mkdtemp(path.join(tmpdir(), "cni-shim-choice-"));
    try {
      const first = new AttachChoice("auto", dir);
      await first.setEngine("27.0.3");
      first.observe({ kind: "visible" });
      await new Promise((r) => setTimeout(r, 50)); // the first of a kind is written in the background
      const second = new AttachChoice("auto", dir);
      await second.load();
      expect(second.decide()).toMatchObject({ kind: "in-sandbox", engine: "27.0.3", joinsWithNamespace: 1 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("in-sandbox attach on --attach auto: the interface goes on to Docker", () => {
  let h: Harness;
  let views = 0;
  beforeEach(async () => {
    const choice = new AttachChoice("auto");
    await choice.setEngine("28.5.2+dfsg4");
    views = 0;
    h = await harness({ attach: choice, dockerContainers: { view: () => (views++, Promise.resolve({ containers: [], networks: [] })) } });
    await putNetwork(h.state);
    h.host.sandboxes.set(KEY, []);
    h.host.stagingRoutes = [
      { dst: "0.0.0.0/0", gateway: "10.1.0.1", dev: "eth0" },
      { dst: "10.1.0.0/24", dev: "eth0", scope: "link", protocol: "kernel" },
    ];
  });
  afterEach(async () => h.cleanup());

  const join = (id: string) => h.driver.join({ NetworkID: "n".repeat(64), EndpointID: id, SandboxKey: KEY, Options: {} });

  it("runs the ADD in the container's namespace, hands the interface to Docker with the chain's gateway, and tears it down as a hand-out", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect((await h.state.getEndpoint(A))?.attach).toBe("in-sandbox");
    const reply = await join(A);
    expect(h.cni.adds).toHaveLength(1);
    expect(h.cni.adds[0]).toMatchObject({ netns: KEY, ifName: "eth0" });
    expect(h.host.handedOutOf).toEqual([{ nsFile: KEY, ifName: "eth0", tmpName: `cs${A.slice(0, 12)}` }]);
    expect(reply).toEqual({ InterfaceName: { SrcName: `cs${A.slice(0, 12)}`, DstPrefix: "eth" }, DisableGatewayService: true, Gateway: "10.1.0.1" });
    // Docker sets the MAC and the routes itself; nothing asks Docker's lists.
    expect(h.host.macsSet).toEqual([]);
    expect(h.host.defaultRoutesDeleted).toEqual([]);
    expect(views).toBe(0);
    expect(await h.state.getEndpoint(A)).toMatchObject({ attach: "staging-handoff", phase: "joined", sandboxKey: KEY, ifName: "eth0", macAddress: "02:42:0a:01:00:05" });
    await h.driver.leave({ NetworkID: "n".repeat(64), EndpointID: A });
    expect(h.host.held.size).toBe(0); // Docker gives the interface back to the host: nothing to hold
    await h.driver.deleteEndpoint({ NetworkID: "n".repeat(64), EndpointID: A });
    const target = h.teardown.targets.at(-1)!;
    expect(target).toMatchObject({ stagingNetns: `cni-shim-${A.slice(0, 12)}`, tmpName: `cs${A.slice(0, 12)}` });
    expect(target.liveNetns).toBeUndefined();
    expect(target.attachment.ifName).toBe("eth0");
  });

  it("logs the Join as \"endpoint joined\" with addedIn \"sandbox\" (the soak tells these apart); a Join that falls back to the hand-out without it", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    setLogLevel("info");
    try {
      await join(A);
      await h.driver.join({ NetworkID: "n".repeat(64), EndpointID: B, SandboxKey: "/var/run/docker/netns/notyet", Options: {} }); // no namespace: the staging hand-out
    } finally {
      setLogLevel("error");
      spy.mockRestore();
    }
    const joined = lines.map((l) => JSON.parse(l) as { msg: string; endpoint?: string; addedIn?: string }).filter((l) => l.msg.startsWith("endpoint joined"));
    expect(joined.map(({ msg, endpoint, addedIn }) => ({ msg, endpoint, addedIn }))).toEqual([
      { msg: "endpoint joined", endpoint: A.slice(0, 12), addedIn: "sandbox" },
      { msg: "endpoint joined", endpoint: B.slice(0, 12), addedIn: undefined },
    ]);
  });

  it("beside Docker's interfaces, adds under the next free name and hands it over too", async () => {
    h.host.sandboxLinks.set(KEY, ["eth0"]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const reply = await join(A);
    expect(h.cni.adds[0]).toMatchObject({ netns: KEY, ifName: "eth1" });
    expect(reply.InterfaceName).toEqual({ SrcName: `cs${A.slice(0, 12)}`, DstPrefix: "eth" });
    expect(views).toBe(0);
  });

  it("keeps the interface where the chain made it when a move would drop what the chain set on it (sbr)", async () => {
    const plain = testConfList();
    const net = await putNetwork(h.state, NET_ID, { ...plain, plugins: [...plain.plugins, { type: "sbr" }] });
    await h.state.putNetwork({ ...net, createdAt: new Date(1).toISOString() }); // another network: its list parsed afresh
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(await join(A)).toEqual({ DisableGatewayService: true });
    expect(h.host.handedOutOf).toEqual([]);
    expect(await h.state.getEndpoint(A)).toMatchObject({ attach: "in-sandbox", phase: "joined", ifName: "eth0" });
  });

  it("keeps an interface in the namespace beside cni-shim's own there, which Docker does not number", async () => {
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    const own = await h.state.getEndpoint(B);
    await h.state.putEndpoint({ ...own!, phase: "joined", sandboxKey: KEY, ifName: "eth0" });
    h.host.sandboxLinks.set(KEY, ["eth0"]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const reply = await join(A);
    expect(reply).toEqual({ DisableGatewayService: true });
    expect(h.cni.adds[0]).toMatchObject({ netns: KEY, ifName: "eth1" });
    expect(h.host.handedOutOf).toEqual([]);
    expect((await h.state.getEndpoint(A))?.attach).toBe("in-sandbox");
  });
});
