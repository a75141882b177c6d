// Reconciliation with fakes for Docker, CNI, host and teardown (no root, no dockerd): the grace
// period, networks Docker does not answer for or has removed, orphan cache entries, and the
// CNI container ids GC asks about mapped to the endpoints that own them.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setLogLevel } from "../../src/util/log.js";
import { CniShimDriver } from "../../src/driver/driver.js";
import { CNI_NETWORK, endpointRequest, gate, harness, hexId, NET_ID, OTHER_NET_ID, putEndpoint, putNetwork, settlesWithin, testConfList, type Harness } from "../helpers/driver-fakes.js";

setLogLevel("error");

const A = hexId(0xa);
const B = hexId(0xb);
const GRACE = 60_000;

let h: Harness;
beforeEach(async () => {
  h = await harness({ reconcileGraceMs: GRACE, teardownMode: "background" });
  await putNetwork(h.state);
});
afterEach(async () => h.cleanup());

describe("reconcile grace", () => {
  it("never reaps an endpoint younger than the grace period, even when Docker does not list it", async () => {
    h.docker.views.set(NET_ID, []);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    h.clock.ms += GRACE - 1;
    const report = await h.driver.reconcile();
    expect(report.endpointsRemoved).toEqual([]);
    expect(await h.state.getEndpoint(A)).toBeDefined();
    expect(h.teardown.targets).toEqual([]);
  });

  it("reaps an endpoint older than the grace period that Docker no longer lists", async () => {
    h.docker.views.set(NET_ID, []);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    h.clock.ms += GRACE;
    const report = await h.driver.reconcile();
    expect(report.endpointsRemoved).toEqual([A]);
    expect(h.teardown.containerIds()).toEqual([A]);
    expect(await h.state.getEndpoint(A)).toBeUndefined();
  });

  it("keeps an old endpoint Docker still lists", async () => {
    h.docker.views.set(NET_ID, [A]);
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    h.clock.ms += GRACE * 10;
    expect((await h.driver.reconcile()).endpointsRemoved).toEqual([]);
    expect(await h.state.getEndpoint(A)).toBeDefined();
  });

  it("skips an old endpoint being torn down in the background, without waiting for it", async () => {
    h.docker.views.set(NET_ID, []);
    await putEndpoint(h.state, { id: A });
    const held = gate();
    h.teardown.holdFor.set(A, held.promise);
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    const reconciling = h.driver.reconcile();
    expect(await settlesWithin(reconciling, 5_000)).toBe(true);
    expect((await reconciling).endpointsRemoved).toEqual([]);
    held.open();
    await h.driver.settle();
    expect(h.teardown.containerIds()).toEqual([A]);
  });

  it("reports an endpoint whose teardown fails and keeps its record", async () => {
    h.docker.views.set(NET_ID, []);
    await putEndpoint(h.state, { id: A });
    h.teardown.failFor.set(A, new Error("DEL failed"));
    const report = await h.driver.reconcile();
    expect(report.endpointsRemoved).toEqual([]);
    expect(report.errors).toEqual([`endpoint ${A.slice(0, 12)}: DEL failed`]);
    expect(await h.state.getEndpoint(A)).toBeDefined();
  });
});

describe("networks", () => {
  it("leaves a network Docker does not answer for alone, endpoints included", async () => {
    h.docker.views.set(NET_ID, Object.assign(new Error("connect ECONNREFUSED"), { statusCode: 500 }));
    await putEndpoint(h.state, { id: A });
    const report = await h.driver.reconcile();
    expect(report.errors).toEqual([`network ${NET_ID.slice(0, 12)}: Docker did not answer (connect ECONNREFUSED); left alone`]);
    expect(report.endpointsRemoved).toEqual([]);
    expect(report.networksRemoved).toEqual([]);
    expect(await h.state.getEndpoint(A)).toBeDefined();
    expect(await h.state.getNetwork(NET_ID)).toBeDefined();
    expect(h.teardown.targets).toEqual([]);
  });

  it("removes a network Docker no longer has once its endpoints are gone", async () => {
    await putNetwork(h.state, OTHER_NET_ID, testConfList("othernet", "/tmp/cni-test-store"));
    h.docker.views.set(NET_ID, []);
    h.docker.views.set(OTHER_NET_ID, "gone");
    await putEndpoint(h.state, { id: A, networkId: OTHER_NET_ID });
    const report = await h.driver.reconcile();
    expect(report.endpointsRemoved).toEqual([A]);
    expect(report.networksRemoved).toEqual([OTHER_NET_ID]);
    expect(await h.state.getNetwork(OTHER_NET_ID)).toBeUndefined();
    expect(await h.state.getNetwork(NET_ID)).toBeDefined();
    expect(h.host.hostLocalDirsCleaned).toEqual(["/tmp/cni-test-store/othernet"]);
  });

  it("keeps a removed network while one of its endpoints is still in its grace period", async () => {
    h.docker.views.set(NET_ID, "gone");
    await h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    const report = await h.driver.reconcile();
    expect(report.networksRemoved).toEqual([]);
    expect(await h.state.getNetwork(NET_ID)).toBeDefined();
    h.clock.ms += GRACE;
    expect(await h.driver.reconcile()).toMatchObject({ endpointsRemoved: [A], networksRemoved: [NET_ID] });
  });

  it("keeps a network younger than the grace period that Docker does not have (yet: Docker stores it after CreateNetwork)", async () => {
    await putNetwork(h.state, OTHER_NET_ID, testConfList("othernet", "/tmp/cni-test-store"));
    const young = { ...(await h.state.getNetwork(OTHER_NET_ID))!, createdAt: new Date(h.clock.ms - GRACE + 1).toISOString() };
    await h.state.putNetwork(young);
    h.docker.views.set(NET_ID, []);
    h.docker.views.set(OTHER_NET_ID, "gone");
    expect((await h.driver.reconcile()).networksRemoved).toEqual([]);
    expect(await h.state.getNetwork(OTHER_NET_ID)).toBeDefined();
    h.clock.ms += 1;
    expect((await h.driver.reconcile()).networksRemoved).toEqual([OTHER_NET_ID]);
  });

  it("tears down endpoints whose network record is missing", async () => {
    await putEndpoint(h.state, { id: A, networkId: hexId(0x1234) });
    expect((await h.driver.reconcile()).endpointsRemoved).toEqual([A]);
  });
});

describe("CNI cache entries and GC", () => {
  const list = testConfList();
  const stagingOf = (id: string) => `/run/netns/cni-shim-${id.slice(0, 12)}`;

  it("tears down a cache entry of ours with no record, and leaves other runtimes' entries to them", async () => {
    h.docker.views.set(NET_ID, []);
    const attached = hexId(0xc);
    h.cni.putEntry({ list, networkName: CNI_NETWORK, containerId: A, ifName: "eth0", netns: stagingOf(A) });
    h.cni.putEntry({ list, networkName: CNI_NETWORK, containerId: attached, ifName: "eth0", netns: "/proc/4242/ns/net" });
    const report = await h.driver.reconcile();
    expect(report.cacheEntriesRemoved).toBe(1);
    expect(h.teardown.targets.map((t) => [t.attachment.containerId, t.stagingNetns])).toEqual([[A, `cni-shim-${A.slice(0, 12)}`]]);
    expect(h.cni.gcCalls).toHaveLength(1);
    expect(h.cni.gcCalls[0]!.valid).toEqual([{ containerId: attached, ifName: "eth0" }]);
  });

  it("leaves a cache entry alone while its endpoint is being created", async () => {
    h.docker.views.set(NET_ID, []);
    // An ADD that finished (cache written) while the CreateEndpoint is still running: no record yet of "ready".
    h.cni.putEntry({ list, networkName: CNI_NETWORK, containerId: B, ifName: "eth0", netns: stagingOf(B) });
    const held = gate();
    h.host.handOut = async () => {
      await held.promise;
      return [];
    };
    const creating = h.driver.createEndpoint(endpointRequest(B, { address: "10.1.0.6/24" }));
    await settlesWithin(creating);
    await h.state.deleteEndpoint(B); // as if the record were not written yet: only the lock protects it
    const report = await h.driver.reconcile();
    expect(report.cacheEntriesRemoved).toBe(0);
    expect(h.cni.gcCalls[0]!.inUse!(B)).toBe(true);
    held.open();
    await creating;
  });

  it("asks GC about CNI container ids and answers through the endpoint that owns them", async () => {
    h.docker.views.set(NET_ID, [A]);
    // A record whose CNI container id is not its endpoint id: locks and teardowns go by endpoint id.
    const cniId = hexId(0xd);
    await putEndpoint(h.state, { id: A, cniContainerId: cniId });
    const held = gate();
    h.teardown.holdFor.set(cniId, held.promise);
    await h.driver.deleteEndpoint({ NetworkID: NET_ID, EndpointID: A });
    await settlesWithin(h.driver.settle());
    await h.driver.reconcile();
    const inUse = h.cni.gcCalls[0]!.inUse!;
    expect(inUse(cniId)).toBe(true);
    expect(inUse(hexId(0xe))).toBe(false);
    held.open();
    await h.driver.settle();
    await h.driver.reconcile();
    expect(h.cni.gcCalls[1]!.inUse!(cniId)).toBe(false);
  });
});

describe("running reconciliation", () => {
  it("runs one reconciliation at a time: a second call gets the run in progress", async () => {
    h.docker.views.set(NET_ID, []);
    const [first, second] = await Promise.all([h.driver.reconcile(), h.driver.reconcile()]);
    expect(second).toBe(first); // the same report object: one run
    expect(h.docker.inspections).toBe(1);
  });

  it("tells its listener of Plugin.Activate at once (without waiting) and of each finished reconciliation", async () => {
    const told: string[] = [];
    const driver = new CniShimDriver({ runtime: h.cni, teardown: h.teardown.run, host: h.host, state: h.state, confDirs: [], dockerNetworks: h.docker, events: { activated: () => told.push("activated"), reconciled: () => told.push("reconciled") } });
    h.docker.views.set(NET_ID, []);
    driver.activated();
    expect(told).toEqual(["activated"]); // restart recovery schedules its own run: Activate's reply never waits
    await driver.reconcile();
    expect(told).toEqual(["activated", "reconciled"]);
    h.docker.views.set(NET_ID, new Error("daemon busy"));
    await driver.reconcile().catch(() => undefined);
    expect(told).toEqual(["activated", "reconciled", "reconciled"]); // also after a run Docker did not answer
    await driver.stop(1_000);
  });

  it("without Docker, reconcile refuses and nothing is scheduled", async () => {
    const driver = new CniShimDriver({ runtime: h.cni, teardown: h.teardown.run, host: h.host, state: h.state, confDirs: [] });
    await expect(driver.reconcile()).rejects.toThrow(/needs the Docker API/);
    driver.scheduleReconcile(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.cni.gcCalls).toEqual([]);
  });
});

describe("forgotten attachments (host-local reservations no one holds)", () => {
  const held = (containerId: string, ifName: string, address: string) => ({ containerId, ifName, address, mtimeMs: 0 });

  it("tears each down once, from its addresses, with the grace as the minimum age and every record as valid", async () => {
    h.docker.views.set(NET_ID, [B]);
    await putEndpoint(h.state, { id: B, cniContainerId: B, ifName: "eth0" });
    h.cni.unheld = [held(A, "eth0", "10.1.0.7/24"), held(A, "eth0", "fd00::7/64")];
    const report = await h.driver.reconcile();
    expect(report.reservationsReleased).toEqual(["10.1.0.7/24", "fd00::7/64"]);
    expect(h.cni.unheldCalls).toEqual([{ network: CNI_NETWORK, valid: [{ containerId: B, ifName: "eth0" }], minAgeMs: GRACE }]);
    expect(h.teardown.targets.map((t) => [t.attachment.containerId, t.attachment.ifName, t.intendedAddresses, t.stagingNetns])).toEqual([[A, "eth0", ["10.1.0.7/24", "fd00::7/64"], `cni-shim-${A.slice(0, 12)}`]]);
  });

  it("leaves one whose container id is being worked on, and one that is no container id", async () => {
    h.docker.views.set(NET_ID, []);
    const busy = gate();
    h.cni.addGate = busy.promise;
    const creating = h.driver.createEndpoint(endpointRequest(A, { address: "10.1.0.5/24" }));
    h.cni.unheld = [held(A, "eth0", "10.1.0.5/24"), held("../x", "eth0", "10.1.0.9/24")];
    const report = await h.driver.reconcile();
    expect(report.reservationsReleased).toEqual([]);
    expect(h.teardown.targets).toEqual([]);
    busy.open();
    await creating;
  });

  it("reports a teardown that fails and goes on with the next", async () => {
    h.docker.views.set(NET_ID, []);
    h.cni.unheld = [held(A, "eth0", "10.1.0.7/24"), held(B, "eth0", "10.1.0.8/24")];
    h.teardown.failFor.set(A, new Error("iptables is locked"));
    const report = await h.driver.reconcile();
    expect(report.reservationsReleased).toEqual(["10.1.0.8/24"]);
    expect(report.errors).toEqual([expect.stringMatching(/forgotten attachment testnet\/00000000000a\/eth0: iptables is locked/)]);
  });
});

describe("drift (CHECK of joined endpoints)", () => {
  const sandbox = "/var/run/docker/netns/c0ffee";

  it("logs a joined endpoint Docker has whose CHECK complains, and checks no other", async () => {
    h.docker.views.set(NET_ID, [A, B]);
    const list = testConfList();
    await putEndpoint(h.state, { id: A, cniContainerId: A, phase: "joined", sandboxKey: sandbox, macAddress: "02:00:00:00:00:0a" });
    await putEndpoint(h.state, { id: B, cniContainerId: B, phase: "ready" });
    h.cni.putEntry({ list, networkName: CNI_NETWORK, containerId: A, ifName: "eth0", netns: "/run/netns/x" });
    h.host.macLinks.set(sandbox, new Map([["02:00:00:00:00:0a", "eth0"]]));
    h.cni.checkError = new Error('CNI plugin "bridge" CHECK failed (code 999): Failed to match addr 10.1.0.5/24 on interface eth0');
    const report = await h.driver.reconcile();
    expect(h.cni.checks.map((c) => [c.att.containerId, c.att.netns, c.att.ifName])).toEqual([[A, sandbox, "eth0"]]);
    expect(report.drifted).toEqual([`${A.slice(0, 12)}: CNI plugin "bridge" CHECK failed (code 999): Failed to match addr 10.1.0.5/24 on interface eth0`]);
    expect(report.errors).toEqual([]);
  });
});
