// CniShimDriver's endpoint paths with fakes for CNI, host and teardown (no root, no Docker):
// rollback of a failed CreateEndpoint, waiting for background teardowns, idempotent delete,
// recovery, and taking an address or a fixed host port back from a stale record.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ADD_LEFT_STATE } from "../../src/cni/errors.js";
import { setLogLevel } from "../../src/util/log.js";
import { endpointRequest, gate, harness, hexId, settlesWithin, NET_ID, OTHER_NET_ID, putEndpoint, putNetwork, type Harness } from "../helpers/driver-fakes.js";
import { READY_WINDOW_MS } from "../../src/driver/ready-memo.js";

setLogLevel("error");

const A = hexId(0xa);
const B = hexId(0xb);
const C = hexId(0xc);

let h: Harness;
afterEach(async () => h?.cleanup());

describe("CreateEndpoint rollback", () => {
  beforeEach(async () => {
    h = await harness();
    await putNetwork(h.state);
  });

  it("a failed ADD leaves no record and no staging namespace (the runtime undid the chain)", async () => {
    h.cni.addError = new Error("plugin bridge failed");
    await expect(h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }))).rejects.toThrow(/could not attach the container to CNI network "testnet": plugin bridge failed/);
    expect(h.cni.adds).toHaveLength(1);
    expect(await h.state.listEndpoints()).toEqual([]);
    expect(h.host.namespaces.size).toBe(0);
    expect(h.teardown.targets).toEqual([]);
  });

  it("a failed ADD whose own cleanup failed too is torn down with a full DEL and leaves no record", async () => {
    h.cni.addError = Object.assign(new Error('plugin vrf failed (cleanup with DEL also failed: plugin vrf DEL failed)'), { [ADD_LEFT_STATE]: true });
    await expect(h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }))).rejects.toThrow(/could not attach the container to CNI network "testnet": plugin vrf failed/);
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(await h.state.listEndpoints()).toEqual([]);
  });

  it("a result without Docker's address is torn down with a full DEL and leaves no record", async () => {
    h.cni.resultFor = (att) => ({ cniVersion: "1.0.0", interfaces: [{ name: att.ifName }], ips: [{ address: "10.9.9.9/24", interface: 0 }] });
    await expect(h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }))).rejects.toThrow(/Docker assigned 10\.1\.0\.5\/24/);
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(h.teardown.targets[0]!.intendedAddresses).toEqual(["10.1.0.5/24"]);
    expect(await h.state.listEndpoints()).toEqual([]);
  });

  it("a failed hand-out is torn down with a full DEL and leaves no record", async () => {
    h.host.handOutError = new Error("ip link set: no such device");
    await expect(h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }))).rejects.toThrow(/no such device/);
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(h.teardown.targets[0]!.stagingNetns).toBe(`cni-shim-${A.slice(0, 12)}`);
    expect(await h.state.listEndpoints()).toEqual([]);
  });

  it("a rollback that fails keeps the record (phase adding) for reconciliation, and the first error is reported", async () => {
    h.host.handOutError = new Error("hand-out failed");
    h.teardown.failFor.set(A, new Error("DEL failed too"));
    await expect(h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }))).rejects.toThrow(/hand-out failed/);
    expect((await h.state.listEndpoints()).map((e) => [e.id, e.phase])).toEqual([[A, "adding"]]);
  });

  it("a successful CreateEndpoint records a ready endpoint with the result and fills in the MAC made of its address", async () => {
    const reply = await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(reply).toEqual({ Interface: { MacAddress: "02:42:0a:01:00:05" } });
    expect(h.cni.adds[0]?.capabilityArgs?.mac).toBe("02:42:0a:01:00:05");
    const rec = await h.state.getEndpoint(A);
    expect(rec?.phase).toBe("ready");
    expect(rec?.attach).toBe("staging-handoff");
    expect(rec?.result?.ips?.[0]?.address).toBe("10.1.0.5/24");
    expect(h.host.hostLinks.has(rec!.tmpName)).toBe(true);
  });

  it("runs the chain in a prepared namespace when one is ready, names it in the record, and makes none itself", async () => {
    h.host.prepared.push("cni-shim-p4242-1");
    const made: string[] = [];
    const ensure = h.host.ensureNetns;
    h.host.ensureNetns = async (name: string) => (made.push(name), ensure(name));
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const rec = await h.state.getEndpoint(A);
    expect(rec?.stagingNetns).toBe("cni-shim-p4242-1");
    expect(h.cni.adds[0]?.netns).toBe("/run/netns/cni-shim-p4242-1");
    expect(made).toEqual([]);
    // Without one ready: the endpoint's own, made after the record names it.
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    expect((await h.state.getEndpoint(B))?.stagingNetns).toBe(`cni-shim-${B.slice(0, 12)}`);
    expect(made).toEqual([`cni-shim-${B.slice(0, 12)}`]);
  });

  it("keeps the routes the hand-out found on the interface, and Join replays them", async () => {
    h.host.stagingRoutes = [
      { dst: "0.0.0.0/0", gateway: "10.1.0.1", dev: "eth0" },
      { dst: "10.1.0.0/24", gateway: "10.1.0.1", dev: "eth0" },
      { dst: "10.1.0.1", dev: "eth0", scope: "link" },
    ];
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const rec = await h.state.getEndpoint(A);
    expect(rec?.routes).toEqual(h.host.stagingRoutes);
    const join = await h.driver.join({ NetworkID: NET_ID, EndpointID: A, SandboxKey: "/var/run/docker/netns/0123456789ab", Options: {} });
    expect(join.Gateway).toBe("10.1.0.1");
    expect(join.StaticRoutes).toEqual([
      { Destination: "10.1.0.1/32", RouteType: 1 },
      { Destination: "10.1.0.0/25", RouteType: 0, NextHop: "10.1.0.1" },
      { Destination: "10.1.0.128/25", RouteType: 0, NextHop: "10.1.0.1" },
    ]);
  });
});

describe("DeleteEndpoint", () => {
  it("replies before the DEL when no teardown mode is given: background is the default, as the CLI's", async () => {
    h = await harness({ teardownMode: undefined });
    await putNetwork(h.state);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const held = gate();
    h.teardown.holdFor.set(A, held.promise);
    expect(await settlesWithin(h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A }))).toBe(true);
    expect((await h.state.getEndpoint(A))?.phase).toBe("deleting");
    held.open();
    await h.driver.settle();
    expect(await h.state.getEndpoint(A)).toBeUndefined();
  });

  it("is idempotent in the foreground: unknown endpoints and a second delete do nothing", async () => {
    h = await harness({ teardownMode: "sync" });
    await putNetwork(h.state);
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: B });
    expect(h.teardown.targets).toEqual([]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(await h.state.getEndpoint(A)).toBeUndefined();
  });

  it("is idempotent in the background: a delete while the teardown runs starts no second one", async () => {
    h = await harness({ teardownMode: "background" });
    await putNetwork(h.state);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const held = gate();
    h.teardown.holdFor.set(A, held.promise);
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    expect((await h.state.getEndpoint(A))?.phase).toBe("deleting"); // marked before the reply
    // The second delete queues on the endpoint's lock behind the teardown, then finds nothing to do.
    const again = h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    held.open();
    await again;
    await h.driver.settle();
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(await h.state.getEndpoint(A)).toBeUndefined();
  });
});

describe("background teardown", () => {
  beforeEach(async () => {
    h = await harness({ teardownMode: "background" });
    await putNetwork(h.state);
  });

  it("keeps the record (phase deleting) when the teardown fails, for reconciliation to retry", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    h.teardown.failFor.set(A, new Error("DEL failed"));
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    await h.driver.settle();
    expect((await h.state.getEndpoint(A))?.phase).toBe("deleting");
    // Nothing is pending any more: a later delete starts a new teardown, which succeeds.
    h.teardown.failFor.clear();
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    await h.driver.settle();
    expect(h.teardown.containerIds()).toEqual([A, A]);
    expect(await h.state.getEndpoint(A)).toBeUndefined();
  });

  it("removes only the incarnation it was given: a CreateEndpoint that got the lock first keeps its new record", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    // Hold DeleteEndpoint (and so its lock) just before it marks the record "deleting", so a
    // retried CreateEndpoint of the same id queues on the lock ahead of the background teardown.
    const held = gate();
    const put = h.state.putEndpoint;
    h.state.putEndpoint = async (rec) => {
      if (rec.phase === "deleting") await held.promise;
      return put(rec);
    };
    const deleting = h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    await settlesWithin(deleting);
    h.clock.ms += 1_000;
    const creating = h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    await settlesWithin(creating);
    held.open();
    await deleting;
    await creating;
    await h.driver.settle();
    const rec = await h.state.getEndpoint(A);
    expect(rec?.phase).toBe("ready");
    expect(rec?.createdAt).toBe(new Date(h.clock.ms).toISOString());
    // Once by the CreateEndpoint (it converged the "deleting" record), never by the stale teardown.
    expect(h.teardown.containerIds()).toEqual([A]);
  });
});

describe("CreateEndpoint waits for a colliding background teardown (settle filters)", () => {
  beforeEach(async () => {
    h = await harness({ teardownMode: "background" });
    await putNetwork(h.state);
    await putNetwork(h.state, OTHER_NET_ID);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24", hostPort: 8080 }));
  });

  async function heldTeardownOfA() {
    const held = gate();
    h.teardown.holdFor.set(A, held.promise);
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    return held;
  }

  it.each([
    ["the same endpoint id", () => endpointRequest(A, { address: "10.1.0.7/24" })],
    ["the same address", () => endpointRequest(B, { address: "10.1.0.5/24" })],
    ["the same host port", () => endpointRequest(B, { address: "10.1.0.6/24", hostPort: 8080 })],
  ])("%s waits until the teardown finished", async (_what, request) => {
    const held = await heldTeardownOfA();
    const creating = h.driver.createEndpoint(request());
    expect(await settlesWithin(creating)).toBe(false);
    expect(h.cni.adds).toHaveLength(1); // only A's own ADD
    held.open();
    await creating;
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(h.cni.adds).toHaveLength(2);
  });

  it("waits outside the new endpoint's own lock (a background teardown takes locks of its own)", async () => {
    const held = await heldTeardownOfA();
    const creating = h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.5/24" }));
    await settlesWithin(creating);
    // B's lock is free while B waits: another call on B is not held up behind A's teardown.
    expect(await settlesWithin(h.driver.leave({ NetworkID: NET_ID, EndpointID: B }), 5_000)).toBe(true);
    held.open();
    await creating;
  });

  it.each([
    ["another address and port", () => endpointRequest(C, { address: "10.1.0.9/24", hostPort: 9090 })],
    ["the same address on another network", () => endpointRequest(C, { address: "10.1.0.5/24", networkId: OTHER_NET_ID })],
  ])("%s does not wait", async (_what, request) => {
    const held = await heldTeardownOfA();
    const creating = h.driver.createEndpoint(request());
    expect(await settlesWithin(creating, 5_000)).toBe(true);
    await creating;
    expect((await h.state.getEndpoint(C))?.phase).toBe("ready");
    expect((await h.state.getEndpoint(A))?.phase).toBe("deleting");
    held.open();
    await h.driver.settle();
  });
});

describe("recover()", () => {
  it("tears down records left in adding or deleting, or from another boot, and keeps live ones", async () => {
    h = await harness({ teardownMode: "background" });
    await putNetwork(h.state);
    const adding = hexId(1), deleting = hexId(2), otherBoot = hexId(3), ready = hexId(4), joined = hexId(5), noBoot = hexId(6);
    await putEndpoint(h.state, { id: adding, phase: "adding" });
    await putEndpoint(h.state, { id: deleting, phase: "deleting" });
    await putEndpoint(h.state, { id: otherBoot, phase: "joined", bootId: "an-earlier-boot" });
    await putEndpoint(h.state, { id: ready, phase: "ready" });
    await putEndpoint(h.state, { id: joined, phase: "joined" });
    await putEndpoint(h.state, { id: noBoot, phase: "ready", bootId: undefined });
    expect(await h.driver.recover()).toBe(3);
    await h.driver.settle();
    expect(h.teardown.containerIds().sort()).toEqual([adding, deleting, otherBoot].sort());
    expect((await h.state.listEndpoints()).map((e) => e.id).sort()).toEqual([ready, joined, noBoot].sort());
    // Prepared namespaces of earlier processes are swept, except those a record names.
    expect(h.host.swept).toHaveLength(1);
    expect([...h.host.swept[0]!].sort()).toEqual([adding, deleting, otherBoot, ready, joined, noBoot].map((id) => `cni-shim-${id.slice(0, 12)}`).sort());
  });

  it("makes a CreateEndpoint of a recovered endpoint's id wait for its teardown", async () => {
    h = await harness({ teardownMode: "background" });
    await putNetwork(h.state);
    await putEndpoint(h.state, { id: A, phase: "deleting", address: "10.1.0.5/24" });
    const held = gate();
    h.teardown.holdFor.set(A, held.promise);
    await h.driver.recover();
    const creating = h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(await settlesWithin(creating)).toBe(false);
    held.open();
    await creating;
    expect(h.teardown.containerIds()).toEqual([A]);
    expect((await h.state.getEndpoint(A))?.phase).toBe("ready");
  });
});

describe("stale-address reclaim", () => {
  beforeEach(async () => {
    h = await harness();
    await putNetwork(h.state);
    await putNetwork(h.state, OTHER_NET_ID);
  });

  it("Docker reassigning an address one of our records holds tears that record down first", async () => {
    await putEndpoint(h.state, { id: A, phase: "joined", address: "10.1.0.5/24" });
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.5/24" }));
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(await h.state.getEndpoint(A)).toBeUndefined();
    expect((await h.state.getEndpoint(B))?.phase).toBe("ready");
  });

  it("the same address on another network is not reclaimed", async () => {
    await putEndpoint(h.state, { id: A, phase: "joined", address: "10.1.0.5/24", networkId: OTHER_NET_ID });
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.5/24" }));
    expect(h.teardown.targets).toEqual([]);
    expect((await h.state.getEndpoint(A))?.phase).toBe("joined");
  });
});

describe("fixed host port held by another record", () => {
  beforeEach(async () => {
    h = await harness();
    await putNetwork(h.state);
  });
  const port8080 = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" as const }];

  it("a dead record (ready, its interface and namespace gone) is removed and the port taken over", async () => {
    await putEndpoint(h.state, { id: A, phase: "ready", address: "10.1.0.5/24", portMappings: port8080 });
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24", hostPort: 8080 }));
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(await h.state.getEndpoint(A)).toBeUndefined();
    expect((await h.state.getEndpoint(B))?.portMappings).toEqual(port8080);
  });

  it("a joined record whose sandbox lacks its address is dead", async () => {
    await putEndpoint(h.state, { id: A, phase: "joined", address: "10.1.0.5/24", portMappings: port8080, sandboxKey: "/run/docker/netns/x" });
    h.host.sandboxes.set("/run/docker/netns/x", ["10.1.0.99/24"]);
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24", hostPort: 8080 }));
    expect(h.teardown.containerIds()).toEqual([A]);
  });

  it.each([
    ["ready, its interface in the host namespace", { phase: "ready" as const }, (host: Harness["host"]) => host.hostLinks.add(`cs${A.slice(0, 12)}`)],
    [
      "joined, its address in the sandbox, publishing other ports too",
      { phase: "joined" as const, sandboxKey: "/run/docker/netns/x", portMappings: [...port8080, { hostPort: 9090, containerPort: 90, protocol: "tcp" as const }] },
      (host: Harness["host"]) => host.sandboxes.set("/run/docker/netns/x", ["10.1.0.5/24"]),
    ],
  ])("a live record (%s) keeps the port: the new endpoint is refused", async (_what, over, live) => {
    await putEndpoint(h.state, { id: A, address: "10.1.0.5/24", portMappings: port8080, ...over });
    live(h.host);
    await expect(h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24", hostPort: 8080 }))).rejects.toThrow(/0\.0\.0\.0:8080 failed: port is already allocated/);
    expect(h.teardown.targets).toEqual([]);
    expect(await h.state.getEndpoint(A)).toBeDefined();
    expect(await h.state.getEndpoint(B)).toBeUndefined();
    expect(h.cni.adds).toEqual([]);
  });

  describe("a joined record with exactly these ports (the same container connected to another network)", () => {
    const other = { networkId: OTHER_NET_ID };
    beforeEach(async () => {
      await putNetwork(h.state, OTHER_NET_ID);
      await putEndpoint(h.state, { id: A, phase: "joined", address: "10.1.0.5/24", portMappings: port8080, sandboxKey: "/run/docker/netns/x" });
      h.host.sandboxes.set("/run/docker/netns/x", ["10.1.0.5/24"]);
      await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24", hostPort: 8080, ...other }));
    });

    it("keeps the ports: the new endpoint publishes none and names the one that does", async () => {
      const rec = await h.state.getEndpoint(B);
      expect(rec?.portMappings).toEqual([]);
      expect(rec?.portsWith).toBe(A);
      expect(h.cni.adds[0]?.capabilityArgs?.portMappings).toBeUndefined();
      expect(h.teardown.targets).toEqual([]);
    });

    it("joins the same container", async () => {
      await expect(h.driver.join({ NetworkID: OTHER_NET_ID, EndpointID: B, SandboxKey: "/run/docker/netns/x", Options: {} })).resolves.toBeDefined();
    });

    it("refuses to join another container, with Docker's port-in-use message", async () => {
      await expect(h.driver.join({ NetworkID: OTHER_NET_ID, EndpointID: B, SandboxKey: "/run/docker/netns/y", Options: {} })).rejects.toThrow(/0\.0\.0\.0:8080 failed: port is already allocated \(endpoint [0-9a-f]{12} publishes it\)/);
    });
  });
});

describe("fixed host port held by a record being torn down", () => {
  const port8080 = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" as const }];
  beforeEach(async () => {
    h = await harness({ reconcileGraceMs: 0 });
    await putNetwork(h.state);
    await putNetwork(h.state, OTHER_NET_ID);
    // A joined record that looks live (its address still in its sandbox) and that Docker no
    // longer lists: the container's previous start, as after a dockerd crash.
    await putEndpoint(h.state, { id: A, phase: "joined", address: "10.1.0.5/24", portMappings: port8080, sandboxKey: "/run/docker/netns/x" });
    h.host.sandboxes.set("/run/docker/netns/x", ["10.1.0.5/24"]);
    h.docker.views.set(NET_ID, []);
    h.docker.views.set(OTHER_NET_ID, [B]);
  });

  it("waits for the teardown, then publishes the ports itself (not left to the record going away)", async () => {
    const held = gate();
    h.teardown.holdFor.set(A, held.promise);
    const reconciling = h.driver.reconcile();
    await new Promise((r) => setTimeout(r, 50)); // reconciliation holds A's lock in its DEL
    expect(h.teardown.containerIds()).toContain(A);
    const creating = h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24", hostPort: 8080, networkId: OTHER_NET_ID }));
    expect(await settlesWithin(creating)).toBe(false);
    held.open();
    await creating;
    await reconciling;
    const rec = await h.state.getEndpoint(B);
    expect(rec?.portMappings).toEqual(port8080);
    expect(rec?.portsWith).toBeUndefined();
    await expect(h.driver.join({ NetworkID: OTHER_NET_ID, EndpointID: B, SandboxKey: "/run/docker/netns/y", Options: {} })).resolves.toBeDefined();
  });
});

describe("STATUS before CreateEndpoint", () => {
  beforeEach(async () => {
    h = await harness();
    await putNetwork(h.state);
  });

  it("a plugin not ready fails the call with its message; nothing is reserved, added or recorded", async () => {
    h.cni.statusError = new Error('CNI plugin "bridge" STATUS failed (code 50): the bridge is being rebuilt');
    await expect(h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }))).rejects.toThrow(/CNI network "testnet" is not ready \(STATUS\): CNI plugin "bridge" STATUS failed \(code 50\): the bridge is being rebuilt/);
    expect(h.cni.adds).toEqual([]);
    expect(await h.state.listEndpoints()).toEqual([]);
    expect(h.host.namespaces.size).toBe(0);
    h.cni.statusError = undefined;
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    expect(h.cni.statusCalls).toBe(2);
  });

  it("asks once for starts within a short window (ready-memo.ts); a plugin not ready fails the first CreateEndpoint a window later", async () => {
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    h.cni.statusError = new Error('CNI plugin "bridge" STATUS failed (code 50): the bridge is being rebuilt');
    h.clock.ms += READY_WINDOW_MS - 1;
    await h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    expect(h.cni.statusCalls).toBe(1);
    h.clock.ms += 1;
    await expect(h.driver.createEndpoint(endpointRequest(C, { address: "10.1.0.7/24" }))).rejects.toThrow(/is not ready \(STATUS\)/);
    expect(h.cni.statusCalls).toBe(2);
  });
});
