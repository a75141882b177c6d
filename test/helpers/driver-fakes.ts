// Fakes for the driver's seams (CNI runtime, host, teardown, Docker, clock) and a driver wired
// to them over a real StateStore in a temp dir: the driver's concurrency runs without root.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadedConfList } from "../../src/cni/config.js";
import type { Attachment, AddOutcome } from "../../src/cni/runtime.js";
import type { CacheEntry, ConfList, Result } from "../../src/cni/schemas.js";
import type { HostLocalReservation } from "../../src/cni/host-local.js";
import type { TeardownTarget } from "../../src/teardown/convergent.js";
import type { KernelRoute } from "../../src/host/routes.js";
import type { AfterAdd, LookSession } from "../../src/host/sandbox.js";
import type { SandboxSight } from "../../src/host/sandbox-key.js";
import { CniShimDriver, type TeardownMode } from "../../src/driver/driver.js";
import type { AttachChoice } from "../../src/driver/attach-choice.js";
import { StateStore, type EndpointRecord, type NetworkRecord } from "../../src/driver/state.js";
import type { CniOps, DockerContainers, DockerNetworks, HostOps } from "../../src/driver/seams.js";
import { currentBootId } from "../../src/host/boot.js";
import type * as api from "../../src/libnetwork/schemas.js";

/** A promise with its resolve outside, to hold a fake step until the test lets it go. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Has the promise settled within `ms` (file I/O of the code under test included)? */
export async function settlesWithin(p: Promise<unknown>, ms = 200): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let waited = 0; !settled && waited < ms; waited += 10) await sleep(10);
  return settled;
}

/** 64-hex ids whose first 12 characters (our netns and link names) differ by `n`. */
export const hexId = (n: number) => n.toString(16).padStart(12, "0").padEnd(64, "a");

class FakeCni implements CniOps {
  readonly entries = new Map<string, CacheEntry>();
  readonly adds: Attachment[] = [];
  readonly gcCalls: Array<{ network: string; valid: Array<{ containerId: string; ifName: string }>; inUse?: (cniContainerId: string) => boolean }> = [];
  /** Make the next ADDs fail with this. */
  addError?: Error;
  /** The result ADD returns (default: the interface with the addresses asked for in the "ips" capability). */
  resultFor: (att: Attachment) => Result = (att) => ({
    cniVersion: "1.0.0",
    interfaces: [{ name: att.ifName, mac: "02:00:00:00:00:01", sandbox: att.netns }],
    ips: ((att.capabilityArgs?.ips as string[] | undefined) ?? []).map((address) => ({ address, interface: 0 })),
  });

  private key = (net: string, containerId: string, ifName: string) => `${net}/${containerId}/${ifName}`;

  readonly cache = {
    read: (net: string, containerId: string, ifName: string) => Promise.resolve(this.entries.get(this.key(net, containerId, ifName))),
    list: (net: string) => Promise.resolve([...this.entries.values()].filter((e) => e.networkName === net)),
  };

  putEntry(entry: Omit<CacheEntry, "kind" | "config" | "result"> & { list: ConfList }): void {
    const { list, ...rest } = entry;
    this.entries.set(this.key(rest.networkName, rest.containerId, rest.ifName), {
      kind: "cniCacheV1",
      config: Buffer.from(JSON.stringify(list)).toString("base64"),
      result: { cniVersion: "1.0.0" },
      ...rest,
    });
  }

  removeEntry(net: string, containerId: string, ifName: string): void {
    this.entries.delete(this.key(net, containerId, ifName));
  }

  prepare(): Promise<unknown> {
    return Promise.resolve({});
  }

  /** While set, STATUS fails with it (a plugin not ready). */
  statusError?: Error;
  statusCalls = 0;

  status(): Promise<void> {
    this.statusCalls++;
    return this.statusError ? Promise.reject(this.statusError) : Promise.resolve();
  }

  /** CHECK calls, and what the next ones answer (a complaint throws). */
  readonly checks: Array<{ att: Attachment; prevResult: Record<string, unknown> }> = [];
  checkError?: Error;

  check(_net: LoadedConfList, att: Attachment, prevResult: Record<string, unknown>): Promise<string | undefined> {
    this.checks.push({ att, prevResult });
    return this.checkError ? Promise.reject(this.checkError) : Promise.resolve(undefined);
  }

  /** While set, ADDs wait for it (to interleave calls). */
  addGate?: Promise<void>;

  async add(net: LoadedConfList, att: Attachment): Promise<AddOutcome> {
    this.adds.push(att);
    if (this.addGate) await this.addGate;
    if (this.addError) return Promise.reject(this.addError);
    const result = this.resultFor(att);
    this.putEntry({ list: net.conflist, networkName: net.conflist.name, containerId: att.containerId, ifName: att.ifName, netns: att.netns, cniArgs: att.args, capabilityArgs: att.capabilityArgs });
    return Promise.resolve({ result, raw: result, cniVersion: "1.0.0" });
  }

  /** IPAM-only calls (null IPAM in the sandbox takes the address ahead): "ADD <ifName>" / "DEL <ifName>". */
  readonly ipamCalls: Array<{ command: "ADD" | "DEL"; containerId: string; ifName: string }> = [];
  /** What an IPAM-only ADD returns (default: no address). */
  ipamResultFor: (att: Attachment) => Result = () => ({ cniVersion: "1.0.0", ips: [] });

  addIpam(_net: LoadedConfList, att: Attachment): Promise<Result> {
    this.ipamCalls.push({ command: "ADD", containerId: att.containerId, ifName: att.ifName });
    // As the plugins' skel: CNI_NETNS is required for every ADD.
    if (!att.netns) return Promise.reject(new Error("required env variables [CNI_NETNS] missing"));
    return Promise.resolve(this.ipamResultFor(att));
  }

  delIpam(_net: LoadedConfList, att: Attachment): Promise<string[]> {
    this.ipamCalls.push({ command: "DEL", containerId: att.containerId, ifName: att.ifName });
    return Promise.resolve(["host-local"]);
  }

  /** What unheldReservations answers, and what it was asked. */
  unheld: HostLocalReservation[] = [];
  readonly unheldCalls: Array<{ network: string; valid: Array<{ containerId: string; ifName: string }>; minAgeMs: number }> = [];

  unheldReservations(list: ConfList, valid: Array<{ containerId: string; ifName: string }>, minAgeMs: number): Promise<HostLocalReservation[]> {
    this.unheldCalls.push({ network: list.name, valid, minAgeMs });
    return Promise.resolve(this.unheld);
  }

  gc(net: LoadedConfList, valid: Array<{ containerId: string; ifName: string }>, inUse?: (cniContainerId: string) => boolean): Promise<CacheEntry[]> {
    this.gcCalls.push({ network: net.conflist.name, valid, inUse });
    return Promise.resolve([]);
  }
}

/** Namespaces and host links as sets; hand-out moves the interface to the host under its temporary name. */
class FakeHost implements HostOps {
  readonly namespaces = new Set<string>();
  readonly hostLinks = new Set<string>();
  /** Docker sandboxes (namespace files) that exist, with the addresses on their interfaces. */
  readonly sandboxes = new Map<string, string[]>();
  readonly hostLocalDirsCleaned: string[] = [];
  handOutError?: Error;
  /** The routes a hand-out finds on the interface (as the chain would leave them). */
  stagingRoutes: KernelRoute[] = [];

  netnsPath = (name: string) => `/run/netns/${name}`;
  /** Links by MAC in each sandbox (namespace file → MAC → name), for CHECK. */
  readonly macLinks = new Map<string, Map<string, string>>();
  linkNameByMac = (nsFile: string, mac: string) => Promise.resolve(this.macLinks.get(nsFile)?.get(mac));
  ensureNetns = (name: string) => {
    this.namespaces.add(name);
    return Promise.resolve();
  };
  /** Prepared namespaces handed out first, as the real pool does. */
  readonly prepared: string[] = [];
  takePreparedNetns = () => {
    const name = this.prepared.shift();
    if (name) this.namespaces.add(name);
    return Promise.resolve(name);
  };
  prepareCalls = 0;
  prepareNetns = () => void this.prepareCalls++;
  drainNetns = () => {
    for (const name of this.prepared.splice(0)) this.namespaces.delete(name);
    return Promise.resolve();
  };
  readonly swept: Array<Set<string>> = [];
  sweepPreparedNetns = (referenced: Set<string>) => {
    this.swept.push(referenced);
    return Promise.resolve([]);
  };
  deleteNetns = (name: string) => {
    this.namespaces.delete(name);
    return Promise.resolve();
  };
  netnsExists = (name: string) => Promise.resolve(this.namespaces.has(name));
  linkExists = (name: string, netns?: string) => Promise.resolve(netns ? false : this.hostLinks.has(name));
  handOut = (_staging: string, _ifName: string, tmpName: string) => {
    if (this.handOutError) return Promise.reject(this.handOutError);
    this.hostLinks.add(tmpName);
    return Promise.resolve(this.stagingRoutes);
  };
  /** Hand-outs from a container's own namespace: where from and which CNI name. */
  readonly handedOutOf: Array<{ nsFile: string; ifName: string; tmpName: string }> = [];
  private handOutOf = (nsFile: string, ifName: string, tmpName: string) => {
    if (this.handOutError) return Promise.reject(this.handOutError);
    this.handedOutOf.push({ nsFile, ifName, tmpName });
    this.hostLinks.add(tmpName);
    return Promise.resolve(this.stagingRoutes);
  };
  sandboxExists = (sandboxKey: string) => Promise.resolve(this.sandboxes.has(sandboxKey));
  /** Why sandbox keys cannot be looked for (a managed plugin without dockerd's view); none: they can. */
  keysUnseen?: string;
  /** Where a sandbox key opens when not as given (a managed plugin: under dockerd's root). */
  readonly openedAt = new Map<string, string>();
  sandboxSight = (key: string): Promise<SandboxSight> =>
    Promise.resolve(this.sandboxes.has(key) ? { kind: "visible", path: this.openedAt.get(key) ?? key } : this.keysUnseen ? { kind: "unseen", why: this.keysUnseen } : { kind: "missing" });
  describeSandboxKeys = () => Promise.resolve(this.keysUnseen ? { open: false, how: this.keysUnseen } : { open: true, how: "as given" });
  /** Link names inside each sandbox (besides lo). */
  readonly sandboxLinks = new Map<string, string[]>();
  /** Families with a default route in each sandbox. */
  readonly sandboxDefaults = new Map<string, Array<4 | 6>>();
  /** When the next look was got ready (after which reply: the test records what it awaits). */
  lookPrepared = 0;
  prepareLook = () => void this.lookPrepared++;
  /** The look, and what the Join does after its ADD through it (the MAC, default routes), as the real session does. */
  lookInside = (nsFile: string): Promise<LookSession> =>
    Promise.resolve({
      links: ["lo", ...(this.sandboxLinks.get(nsFile) ?? [])],
      defaultRoutes: this.sandboxDefaults.get(nsFile) ?? [],
      finish: (after?: AfterAdd) => {
        if (after && this.afterAddError) return Promise.reject(this.afterAddError);
        if (after?.mac) this.macsSet.push({ nsFile, ifName: after.ifName, mac: after.mac });
        if (after?.deleteDefaults.length) this.defaultRoutesDeleted.push({ nsFile, ifName: after.ifName, families: after.deleteDefaults });
        return Promise.resolve();
      },
      // From where the key opens, as the real look's ip entered it.
      handOut: (ifName: string, tmpName: string) => this.handOutOf(this.openedAt.get(nsFile) ?? nsFile, ifName, tmpName),
    });
  /** Make what follows the ADD in the namespace fail with this. */
  afterAddError?: Error;
  readonly defaultRoutesDeleted: Array<{ nsFile: string; ifName: string; families: Array<4 | 6> }> = [];
  readonly macsSet: Array<{ nsFile: string; ifName: string; mac: string }> = [];
  /** Namespaces held after Leave: name -> the sandbox it holds. */
  readonly held = new Map<string, string>();
  holdNetns = (nsFile: string, name: string) => {
    this.held.set(name, nsFile);
    this.namespaces.add(name);
    return Promise.resolve();
  };
  /** MACs of links inside each sandbox, by name. */
  readonly sandboxMacs = new Map<string, Record<string, string>>();
  linkMacIn = (nsFile: string, ifName: string) => Promise.resolve(this.sandboxMacs.get(nsFile)?.[ifName]);
  addressInNamespaceFile = (nsFile: string, address: string) => Promise.resolve((this.sandboxes.get(nsFile) ?? []).some((a) => a.split("/")[0] === address.split("/")[0]));
  removeBridgeIfUnused = async () => {};
  removeHostLocalDirIfEmpty = (dir: string) => {
    this.hostLocalDirsCleaned.push(dir);
    return Promise.resolve();
  };
}

/** Records every teardown; fails or waits as the test says; on success the cache entry goes, as with a real DEL. */
class FakeTeardown {
  constructor(private readonly cni?: FakeCni) {}

  readonly targets: TeardownTarget[] = [];
  /** Fail teardowns of this CNI container id (all when "*"). */
  failFor = new Map<string, Error>();
  /** Hold teardowns of this CNI container id until the gate opens. */
  holdFor = new Map<string, Promise<void>>();

  readonly run = async (t: TeardownTarget): Promise<void> => {
    this.targets.push(t);
    const id = t.attachment.containerId;
    await this.holdFor.get(id);
    const err = this.failFor.get(id) ?? this.failFor.get("*");
    if (err) throw err;
    if (t.list) this.cni?.removeEntry(t.list.conflist.name, id, t.attachment.ifName);
  };

  containerIds(): string[] {
    return this.targets.map((t) => t.attachment.containerId);
  }
}

/** Docker's view per network: its endpoint ids, "gone" (404), or an error (Docker did not answer). */
class FakeDocker implements DockerNetworks {
  readonly views = new Map<string, string[] | "gone" | Error>();
  inspections = 0;
  inspect(networkId: string) {
    this.inspections++;
    const view = this.views.get(networkId) ?? "gone";
    if (view === "gone") return Promise.reject(Object.assign(new Error(`network ${networkId} not found`), { statusCode: 404 }));
    if (view instanceof Error) return Promise.reject(view);
    return Promise.resolve({ Containers: Object.fromEntries(view.map((id, i) => [`c${i}`, { EndpointID: id }])) });
  }
}

export const NET_ID = hexId(0xffff);
export const OTHER_NET_ID = hexId(0xfffe);
export const CNI_NETWORK = "testnet";

export const testConfList = (name = CNI_NETWORK, dataDir = "/nonexistent/cni-networks"): ConfList => ({
  cniVersion: "1.0.0",
  name,
  plugins: [{ type: "bridge", bridge: "cni-test0", ipam: { type: "host-local", dataDir } }],
});

export interface Harness {
  driver: CniShimDriver;
  state: StateStore;
  cni: FakeCni;
  host: FakeHost;
  teardown: FakeTeardown;
  docker: FakeDocker;
  clock: { ms: number };
  dir: string;
  cleanup(): Promise<void>;
}

export async function harness(o: { teardownMode?: TeardownMode; reconcileGraceMs?: number; attach?: AttachChoice; confDirs?: string[]; dockerContainers?: DockerContainers } = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "cni-shim-driver-"));
  const state = new StateStore(join(dir, "state"));
  const cni = new FakeCni();
  const host = new FakeHost();
  const teardown = new FakeTeardown(cni);
  const docker = new FakeDocker();
  const clock = { ms: Date.parse("2030-01-01T00:00:00Z") };
  const driver = new CniShimDriver({
    runtime: cni,
    teardown: teardown.run,
    host,
    dockerNetworks: docker,
    now: () => clock.ms,
    state,
    confDirs: o.confDirs ?? [],
    reconcileGraceMs: o.reconcileGraceMs ?? 60_000,
    // Sync unless asked (an explicit undefined: the driver's own default).
    teardownMode: "teardownMode" in o ? o.teardownMode : "sync",
    attach: o.attach,
    ...(o.dockerContainers ? { dockerContainers: o.dockerContainers } : {}),
  });
  return {
    driver,
    state,
    cni,
    host,
    teardown,
    docker,
    clock,
    dir,
    async cleanup() {
      await driver.stop(1_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function putNetwork(state: StateStore, id = NET_ID, list: ConfList = testConfList()): Promise<NetworkRecord> {
  const rec: NetworkRecord = { id, mode: "named", conflist: list, source: "test", internal: false, createdAt: new Date(0).toISOString() };
  await state.putNetwork(rec);
  return rec;
}

/** A record written straight to the state store, as an earlier process might have left it. */
export async function putEndpoint(state: StateStore, over: Partial<EndpointRecord> & { id: string }): Promise<EndpointRecord> {
  const short = over.id.slice(0, 12);
  const rec: EndpointRecord = {
    networkId: NET_ID,
    phase: "ready",
    attach: "staging-handoff",
    bootId: currentBootId(),
    cniContainerId: over.id,
    ifName: "eth0",
    stagingNetns: `cni-shim-${short}`,
    tmpName: `cs${short}`,
    portMappings: [],
    cniArgs: [],
    capabilityArgs: {},
    createdAt: new Date(0).toISOString(),
    ...over,
  };
  await state.putEndpoint(rec);
  return rec;
}

export function endpointRequest(endpointId: string, o: { address?: string; hostPort?: number; networkId?: string } = {}): api.CreateEndpointRequest {
  return {
    NetworkID: o.networkId ?? NET_ID,
    EndpointID: endpointId,
    Interface: o.address ? { Address: o.address } : {},
    Options: o.hostPort ? { "com.docker.network.portmap": [{ Proto: 6, Port: 80, HostPort: o.hostPort, HostPortEnd: o.hostPort }] } : {},
  };
}
