// How an endpoint's interface gets into its container: the part of the endpoint lifecycle that
// depends on what the Docker engine allows. Everything else (records, locks, addresses and
// ports, reclaims, rollback, background teardown, reconciliation) is the same for every way and
// lives in endpoints.ts, reclaim.ts and endpoint-teardown.ts.
//
// There are two. The staging hand-out (staging-handoff.ts): CreateEndpoint runs the chain in a
// namespace of ours and moves the interface to the host under a temporary name; Join hands that
// name to Docker, which moves it into the container; after Leave Docker moves it back, and the
// teardown takes it into the staging namespace again for the DEL. The in-sandbox attach
// (in-sandbox.ts), for engines whose container namespace exists at Join (Docker 28+): reserve
// and create do next to nothing, join runs the ADD in the container's namespace, leave holds the
// namespace for the DEL. attach-choice.ts says which one new endpoints get.
//
// Each endpoint record says which strategy made it (EndpointRecord.attach): that one undoes it.
import type * as api from "../libnetwork/schemas.js";
import type { LoadedConfList } from "../cni/config.js";
import type { TeardownTarget } from "../teardown/convergent.js";
import type { PhaseClock } from "../util/phases.js";
import type { EndpointRecord } from "./state.js";
import type { AttachmentPlan } from "./attachment-plan.js";

export type AttachKind = EndpointRecord["attach"];

/** How far CreateEndpoint got, which decides how a failure is rolled back. */
export interface CreateProgress {
  /** The chain's ADD succeeded: undoing the endpoint takes a full teardown. */
  added: boolean;
  clock: PhaseClock;
  /** A null-IPAM network: the chain's IPAM picks the addresses, and Docker needs them in CreateEndpoint's reply. */
  chainPicksAddresses?: boolean;
}

/** Where a teardown finds the interface (the rest of its target is the same for every strategy). */
export type TeardownPlace = Pick<TeardownTarget, "liveNetns" | "stagingNetns" | "tmpName">;

export interface AttachStrategy {
  readonly kind: AttachKind;
  /**
   * Whether `create` changes anything outside the state dir (the chain's ADD at CreateEndpoint).
   * Only then, or on a null-IPAM network (where every strategy runs an IPAM at CreateEndpoint),
   * is an "adding" record written before it, for a crash half-way to be undone.
   */
  readonly addsAtCreate: boolean;

  /**
   * CreateEndpoint, before the record is written: the namespace and host-side name the record
   * keeps. Whatever this takes is given back by `release` when the endpoint goes no further.
   */
  reserve(plan: AttachmentPlan): Promise<Pick<EndpointRecord, "stagingNetns" | "tmpName">>;
  /** Give back what `reserve` took (CreateEndpoint failed before anything was added). */
  release(rec: EndpointRecord): Promise<void>;
  /**
   * CreateEndpoint, once the "adding" record is written: what has to happen before Docker's
   * Join. Returns the record to save as "ready"; sets `progress.added` once the ADD succeeded.
   */
  create(rec: EndpointRecord, list: LoadedConfList, progress: CreateProgress): Promise<EndpointRecord>;
  /** After CreateEndpoint of `endpointId` replied: work for its Join and the next start, off the critical path. */
  afterCreate(endpointId: string): void;
  /** After a Join of this strategy replied: work for the next start, off the critical path. */
  afterJoin(): void;

  /**
   * Join: the record to save as "joined" and Docker's reply. Throws when the endpoint cannot
   * join. Its steps are marked on `clock` (the "endpoint joined" log line's ms phases).
   * `addedInSandbox`: the chain ran in the container's namespace and its interface went on to
   * Docker (the record is then the hand-out's; the log line says where the ADD ran).
   */
  join(rec: EndpointRecord, req: api.JoinRequest, list: LoadedConfList, clock: PhaseClock): Promise<{ rec: EndpointRecord; reply: api.JoinResponse; addedInSandbox?: true }>;
  /** Leave of a joined endpoint: the record to save as "ready" again. */
  leave(rec: EndpointRecord): Promise<EndpointRecord>;

  /** Where a teardown of this record finds the interface. */
  placeOf(rec: EndpointRecord): Promise<TeardownPlace>;
  /**
   * A "ready" or "joined" record that nothing lives for any more, by the kernel's evidence
   * (never asks Docker: this runs inside Docker's calls).
   */
  isGone(rec: EndpointRecord): Promise<boolean>;
  /** Our own namespaces the record names: never swept as leftovers. */
  namespacesOf(rec: EndpointRecord): string[];
}
