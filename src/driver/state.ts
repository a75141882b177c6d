// Network, endpoint and attachment records under the state dir, one JSON file each, written
// atomically, so a restarted plugin (or a restarted dockerd, which never replays CreateNetwork)
// loses nothing. A damaged file is skipped when listing, so it never blocks the others.
import type { Stats } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfList, PortMapping, Result } from "../cni/schemas.js";
import { KernelRoute } from "../host/routes.js";
import { readdirIfExists, readFileIfExists, removeFile, statIfExists, writeFileAtomic } from "../util/fs.js";
import { describeIssues } from "../util/zod.js";
import { log } from "../util/log.js";

export const DEFAULT_STATE_DIR = "/var/lib/cni-shim";

export const NetworkRecord = z.object({
  id: z.string(),
  /** "default": the embedded template instantiated for this network; "named": -o cni.network. */
  mode: z.enum(["default", "named"]),
  /** The resolved network list, frozen at CreateNetwork (validated as a list again on every read). */
  conflist: ConfList,
  source: z.string(),
  /** Bridge cni-shim created for this network and removes with it (default mode only). */
  ownedBridge: z.string().optional(),
  ipv4: z.object({ pool: z.string(), gateway: z.string().optional() }).optional(),
  ipv6: z.object({ pool: z.string(), gateway: z.string().optional() }).optional(),
  /**
   * Who picks the addresses: "docker" (Docker's IPAM; the chain is given them) or "cni" (a
   * network made with --ipam-driver null: the chain's own IPAM, whose address Docker is told in
   * CreateEndpoint's reply). Absent (records of versions before null IPAM): "docker".
   */
  addresses: z.enum(["docker", "cni"]).optional(),
  internal: z.boolean(),
  createdAt: z.string(),
});
export type NetworkRecord = z.infer<typeof NetworkRecord>;

export const EndpointRecord = z.object({
  id: z.string(),
  networkId: z.string(),
  /**
   * adding: CNI ADD may have started; ready: created, waiting for Join (staging hand-out: the
   * interface is in the host ns); joined: given to Docker; deleting: Docker deleted it, the
   * teardown has not finished (resumed after a crash).
   */
  phase: z.enum(["adding", "ready", "joined", "deleting"]),
  /**
   * Which attach strategy made the endpoint (attach-strategy.ts), and so undoes it. Records of
   * versions before strategies had one way only: the staging hand-out.
   */
  attach: z.enum(["staging-handoff", "in-sandbox"]).default("staging-handoff"),
  /** The kernel boot the record was made in: kernel state of another boot no longer exists. */
  bootId: z.string().optional(),
  cniContainerId: z.string(),
  ifName: z.string(),
  /** Our own namespace where the chain ran (staging hand-out) and where its teardown runs when no live one holds the interface. */
  stagingNetns: z.string(),
  /** The interface's temporary name in the host namespace, between the hand-out and Docker's move into the container. */
  tmpName: z.string(),
  address: z.string().optional(),
  addressIPv6: z.string().optional(),
  macAddress: z.string().optional(),
  portMappings: z.array(PortMapping),
  /**
   * The endpoint that publishes this container's ports (its first network's, see reclaim.ts);
   * this one publishes none, and Join checks it joins the same container.
   */
  portsWith: z.string().optional(),
  /** When Join was answered (hand-out): a joined interface still on the host is only dead some time after. */
  joinedAt: z.string().optional(),
  cniArgs: z.array(z.tuple([z.string(), z.string()])),
  capabilityArgs: z.record(z.string(), z.unknown()),
  result: Result.optional(),
  /** The routes the chain left on the interface in the staging namespace, replayed at Join. */
  routes: z.array(KernelRoute).optional(),
  sandboxKey: z.string().optional(),
  /**
   * Null IPAM, in-sandbox: the chain's IPAM alone took the address at CreateEndpoint, for this
   * CNI ifName; Join gives it back and runs the whole chain asking for it (in-sandbox.ts).
   */
  ipamHeld: z.string().optional(),
  /**
   * Chains whose IPAM is dhcp: where the dhcp daemon keeps the lease. "staging" after the ADD;
   * "container" once it was taken again in the container's namespace, which is then bound at
   * the staging namespace's path (dhcp-leases.ts).
   */
  dhcpLease: z.enum(["staging", "container"]).optional(),
  createdAt: z.string(),
});
export type EndpointRecord = z.infer<typeof EndpointRecord>;

/** The record directories of a state dir, one per kind: what requests create. */
export const RECORD_KINDS = ["networks", "endpoints", "attachments"] as const;
type Kind = (typeof RECORD_KINDS)[number];

/** Identifies one version of a file: every write is a rename of a new file (a new inode). */
const versionOf = (st: Stats) => `${st.ino}:${st.mtimeMs}:${st.size}`;

export class StateStore {
  /**
   * Parsed records by path, with the version of the file they were read from. CreateEndpoint
   * lists every endpoint record: reading and parsing 50 files cost ~15 ms there, stat'ing them
   * ~3 ms. Validated by stat, not trusted: other processes (compare, gc) write here too.
   */
  private readonly parsed = new Map<string, { version: string; record: unknown }>();

  constructor(readonly dir: string = DEFAULT_STATE_DIR) {}

  private file(kind: Kind, id: string): string {
    if (!/^[0-9a-zA-Z_.-]+$/.test(id)) throw new Error(`invalid id "${id}"`);
    return join(this.dir, kind, `${id}.json`);
  }

  private async read<T>(schema: z.ZodType<T>, path: string, st?: Stats): Promise<T | undefined> {
    st ??= await statIfExists(path);
    if (!st) return void this.parsed.delete(path);
    const cached = this.parsed.get(path);
    // A copy: callers get records they may change without changing the cache.
    if (cached?.version === versionOf(st)) return structuredClone(cached.record) as T;
    const text = await readFileIfExists(path);
    if (text === undefined) return void this.parsed.delete(path);
    const damaged = (why: string) => new Error(`state file ${path} is damaged (${why}): move it away and run "cni-shim gc"`);
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw damaged((err as Error).message);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw damaged(describeIssues(parsed.error));
    // The version stat'ed before the read: a write in between is read again next time.
    this.parsed.set(path, { version: versionOf(st), record: structuredClone(parsed.data) });
    return parsed.data;
  }

  private async readAll<T>(schema: z.ZodType<T>, kind: Kind): Promise<T[]> {
    const dir = join(this.dir, kind);
    const names = (await readdirIfExists(dir)).filter((n) => n.endsWith(".json") && !n.startsWith("."));
    const stats = await Promise.all(names.map((n) => statIfExists(join(dir, n)).catch(() => undefined)));
    const listed = new Set(names.map((n) => join(dir, n)));
    for (const path of this.parsed.keys()) if (path.startsWith(`${dir}/`) && !listed.has(path)) this.parsed.delete(path);
    const out: T[] = [];
    for (const [i, name] of names.entries()) {
      if (!stats[i]) continue; // removed since the listing
      try {
        const rec = await this.read(schema, join(dir, name), stats[i]);
        if (rec) out.push(rec);
      } catch (err) {
        log.error("skipping unreadable state file", { file: name, error: (err as Error).message });
      }
    }
    return out;
  }

  /**
   * A write keeps what it wrote as the parsed copy of the new file's version: a Join reads the
   * record CreateEndpoint just wrote.
   */
  private async put(path: string, rec: unknown, durable = true): Promise<void> {
    this.parsed.delete(path);
    const st = await writeFileAtomic(path, JSON.stringify(rec, null, 2), { durable });
    this.parsed.set(path, { version: versionOf(st), record: structuredClone(rec) });
  }
  /** Removals forget the parsed copy. */
  private async remove(path: string): Promise<void> {
    this.parsed.delete(path);
    await removeFile(path);
  }

  // async, so that an invalid id rejects like every other failure instead of throwing at the call.
  getNetwork = async (id: string) => this.read(NetworkRecord, this.file("networks", id));
  putNetwork = async (rec: NetworkRecord) => this.put(this.file("networks", rec.id), rec);
  deleteNetwork = async (id: string) => this.remove(this.file("networks", id));
  listNetworks = async () => this.readAll(NetworkRecord, "networks");

  getEndpoint = async (id: string) => this.read(EndpointRecord, this.file("endpoints", id));
  /**
   * Not fsync'ed (0.5 ms each, two or three on every start's path): a record is atomic, so a
   * crashed process leaves the old or the new one, which is what recovery needs. Only a power
   * loss could lose the last seconds of records: the kernel state they describe is gone with it,
   * and the state on disk they guard (host-local's reservations, the CNI result cache) is written
   * without fsync by its owners too, so it is lost or kept alike.
   */
  putEndpoint = async (rec: EndpointRecord) => this.put(this.file("endpoints", rec.id), rec, false);
  deleteEndpoint = async (id: string) => this.remove(this.file("endpoints", id));
  listEndpoints = async () => this.readAll(EndpointRecord, "endpoints");

  /** Attachment records by key: their schema and keys are src/attach's (attach/record.ts). */
  attachments<T>(schema: z.ZodType<T>) {
    return {
      put: async (key: string, rec: T) => this.put(this.file("attachments", key), rec),
      remove: async (key: string) => this.remove(this.file("attachments", key)),
      list: async () => this.readAll(schema, "attachments"),
    };
  }
}
