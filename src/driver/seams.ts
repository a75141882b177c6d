// What the driver needs of the CNI runtime, the host, Docker and the clock, as small interfaces
// (as libcni injects Exec): the real implementations by default, fakes in unit tests.
import { access } from "node:fs/promises";
import type { CacheEntry, ConfList } from "../cni/schemas.js";
import type { LoadedConfList } from "../cni/config.js";
import type { ResultCache } from "../cni/cache.js";
import type { AddOutcome, Attachment } from "../cni/runtime.js";
import type { Result } from "../cni/schemas.js";
import type { TeardownTarget } from "../teardown/convergent.js";
import * as netns from "../host/netns.js";
import * as sandbox from "../host/sandbox.js";
import type { LookSession } from "../host/sandbox.js";
import { NetnsPool } from "../host/netns-pool.js";
import { SandboxLooker, sweepLookLinks } from "../host/sandbox-look.js";
import { SandboxKeys, type KeysOpened, type SandboxSight } from "../host/sandbox-key.js";
import type { KernelRoute } from "../host/routes.js";
import type { DockerView } from "./mixed.js";
import { removeBridgeIfUnused } from "../host/leftovers.js";
import { linkNameByMac } from "../host/link-by-mac.js";
import { removeHostLocalDirIfEmpty, type HostLocalReservation } from "../cni/host-local.js";

/** The part of CniRuntime the driver calls itself (DEL goes through the teardown). */
export interface CniOps {
  readonly cache: Pick<ResultCache, "read" | "list">;
  /** Resolve plugins and version; throws before anything runs when the chain cannot work. */
  prepare(list: ConfList): Promise<unknown>;
  /** STATUS of each plugin (lists at 1.1.0+): throws with the first not-ready plugin's message. */
  status(list: ConfList): Promise<void>;
  /** CHECK of the chain with `prevResult`; returns why nothing was checked, or throws the first complaint. */
  check(net: LoadedConfList, att: Attachment, prevResult: Record<string, unknown>): Promise<string | undefined>;
  add(net: LoadedConfList, att: Attachment): Promise<AddOutcome>;
  /** The list's IPAM plugins alone, called as their main plugin calls them: ADD ... */
  addIpam(net: LoadedConfList, att: Attachment): Promise<Result>;
  /** ... and DEL. */
  delIpam(net: LoadedConfList, att: Attachment): Promise<string[]>;
  /** `inUse(cniContainerId)`: attachments of that CNI container id are being worked on: leave them. */
  gc(net: LoadedConfList, valid: Array<{ containerId: string; ifName: string }>, inUse?: (cniContainerId: string) => boolean): Promise<CacheEntry[]>;
  /** host-local reservations of the list no attachment holds (not valid, not cached), at least `minAgeMs` old. */
  unheldReservations(list: ConfList, valid: Array<{ containerId: string; ifName: string }>, minAgeMs: number): Promise<HostLocalReservation[]>;
}

/** What chains whose IPAM is dhcp need besides the chain's ADD and DEL (dhcp-leases.ts). */
export interface DhcpOps {
  /** A dhcp daemon answers on every socket the list's dhcp IPAMs use: one is started when none does (throws when it cannot be). */
  ensureDaemon(list: ConfList): Promise<void>;
  /** The list's IPAM plugins alone: ADD in `att.netns` (the daemon takes the lease there) ... */
  addIpam(net: LoadedConfList, att: Attachment): Promise<Result>;
  /** ... and DEL (the daemon releases it and stops renewing). */
  delIpam(net: LoadedConfList, att: Attachment): Promise<string[]>;
}

/** Remove one attachment until nothing of it is left (convergentDel); throws when it could not. */
export type Teardown = (target: TeardownTarget) => Promise<unknown>;

/**
 * Host state the driver creates, moves and inspects: namespaces, links, leftovers of a network.
 * Where a method takes Docker's SandboxKey (sandboxKey, or an nsFile that may be one), the real
 * host opens it where this process sees it (host/sandbox-key.ts: a managed plugin, in dockerd's view).
 */
export interface HostOps {
  netnsPath(name: string): string;
  ensureNetns(name: string): Promise<void>;
  /** A prepared staging namespace, or undefined when none is ready (then the endpoint makes its own). */
  takePreparedNetns(): Promise<string | undefined>;
  /** Prepare the next ones in the background (off the critical path: after a reply). */
  prepareNetns(): void;
  /** Remove the prepared namespaces (shutdown). */
  drainNetns(): Promise<void>;
  /** Remove prepared namespaces (and look links, sandbox-look.ts) earlier processes left, except those records still name. */
  sweepPreparedNetns(referenced: Set<string>): Promise<string[]>;
  deleteNetns(name: string): Promise<void>;
  netnsExists(name: string): Promise<boolean>;
  linkExists(name: string, netns?: string): Promise<boolean>;
  /** Move the chain's interface to the host as `tmpName`; returns the routes it had (the move drops them). */
  handOut(staging: string, ifName: string, tmpName: string): Promise<KernelRoute[]>;
  /** Does Docker's sandbox (a bound namespace file) still exist? */
  sandboxExists(sandboxKey: string): Promise<boolean>;
  /** Is Docker's SandboxKey a namespace (Docker <= 27: not yet at Join), where does this process open it, or why can it not look? */
  sandboxSight(sandboxKey: string): Promise<SandboxSight>;
  /** How this process opens sandbox keys (the serving log, doctor). */
  describeSandboxKeys(): Promise<KeysOpened>;
  /** The links and default routes inside a bound namespace (Docker's SandboxKey); the session's finish (or its hand-out to the host) then acts there after the ADD. */
  /** `ipAhead`: ip is started right after the look, for lines after the ADD (sandbox-look.ts). */
  lookInside(sandboxKey: string, opts?: { ipAhead?: boolean }): Promise<LookSession>;
  /** Get the next lookInside ready ahead (off the critical path: after a reply). */
  prepareLook(): void;
  /** Keep a bound namespace alive as /run/netns/<name> (removed with deleteNetns). */
  holdNetns(nsFile: string, name: string): Promise<void>;
  addressInNamespaceFile(nsFile: string, address: string): Promise<boolean>;
  /** The MAC of the link `ifName` in a bound namespace, or undefined (no such link, not a namespace yet). */
  linkMacIn(nsFile: string, ifName: string): Promise<string | undefined>;
  /** The name of the link with `mac` in a bound namespace, or undefined (none has it, the namespace is gone). */
  linkNameByMac(nsFile: string, mac: string): Promise<string | undefined>;
  removeBridgeIfUnused(bridge: string): Promise<void>;
  removeHostLocalDirIfEmpty(dir: string): Promise<void>;
}

// One pool, one looker and one view of sandbox keys per process: every driver of the process (serve's, compare's) shares them.
const pool = new NetnsPool();
const looker = new SandboxLooker();
const keys = new SandboxKeys();

export const realHost: HostOps = {
  takePreparedNetns: () => pool.take(),
  prepareNetns: () => pool.refill(),
  drainNetns: () => {
    looker.close();
    return pool.drain();
  },
  sweepPreparedNetns: async (referenced) => [...(await NetnsPool.sweepOrphans(referenced)), ...(await sweepLookLinks())],
  netnsPath: netns.netnsPath,
  ensureNetns: netns.ensureNetns,
  deleteNetns: netns.deleteNetns,
  netnsExists: netns.netnsExists,
  linkExists: netns.linkExists,
  handOut: netns.handOut,
  sandboxExists: (sandboxKey) => access(sandboxKey).then(
    () => true,
    async () => (await keys.sight(sandboxKey)).kind === "visible",
  ),
  sandboxSight: (sandboxKey) => keys.sight(sandboxKey),
  describeSandboxKeys: () => keys.describe(),
  lookInside: async (nsFile, opts) => looker.look(await keys.path(nsFile), opts),
  prepareLook: () => looker.prepare(),
  holdNetns: async (nsFile, name) => sandbox.holdNetns(await keys.path(nsFile), name),
  addressInNamespaceFile: async (nsFile, address) => netns.addressInNamespaceFile(await keys.path(nsFile), address),
  linkMacIn: async (nsFile, ifName) => netns.linkMacInNamespaceFile(await keys.path(nsFile), ifName),
  linkNameByMac: async (nsFile, mac) => linkNameByMac(await keys.path(nsFile), mac),
  removeBridgeIfUnused,
  removeHostLocalDirIfEmpty,
};

/** What reconciliation asks Docker: the endpoints of a network. */
export interface DockerNetworks {
  /** Rejects with `statusCode: 404` when Docker has no such network. */
  inspect(networkId: string): Promise<{ Containers?: Record<string, { EndpointID: string }> }>;
}

/** What an in-sandbox Join asks Docker: its containers and their networks, and its networks' names (mixed.ts). */
export interface DockerContainers {
  view(): Promise<DockerView>;
}

/**
 * Told when Docker activates the plugin and after each reconciliation, without waiting: serve's
 * restart recovery (docker/restart-recovery.ts) listens.
 */
export interface DriverEvents {
  activated?(): void;
  reconciled?(): void;
}

/** Milliseconds since the epoch (Date.now); injectable for the reconcile grace period. */
export type Clock = () => number;
