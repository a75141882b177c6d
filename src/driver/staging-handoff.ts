// The staging hand-out (see attach-strategy.ts): the chain runs in a staging namespace of ours
// at CreateEndpoint, its interface moves to the host under a temporary name, Join gives that
// name to Docker (which moves the interface into the container and names it eth<N>), and after
// Leave Docker moves it back to the host, where the teardown takes it back into staging.
import type * as api from "../libnetwork/schemas.js";
import type { LoadedConfList } from "../cni/config.js";
import { isPreparedNetns } from "../host/netns-pool.js";
import type { AttachmentPlan } from "./attachment-plan.js";
import { joinResponse } from "./join-response.js";
import { verifyResult } from "./verify-result.js";
import type { CniOps, HostOps } from "./seams.js";
import type { EndpointRecord } from "./state.js";
import type { AttachStrategy, CreateProgress, TeardownPlace } from "./attach-strategy.js";
import type { PhaseClock } from "../util/phases.js";

/** How long after Join an interface may still wait on the host for its container's namespace. */
const START_GRACE_MS = 60_000;

export class StagingHandoff implements AttachStrategy {
  readonly kind = "staging-handoff" as const;
  readonly addsAtCreate = true;

  constructor(private readonly deps: { runtime: Pick<CniOps, "add">; host: HostOps; now?: () => number }) {}

  /** A namespace prepared off the critical path, else one of the endpoint's own name (made in `create`). */
  async reserve(plan: AttachmentPlan): Promise<Pick<EndpointRecord, "stagingNetns" | "tmpName">> {
    const prepared = await this.deps.host.takePreparedNetns();
    return { stagingNetns: prepared ?? plan.stagingNetns, tmpName: plan.tmpName };
  }

  async release(rec: EndpointRecord): Promise<void> {
    await this.deps.host.deleteNetns(rec.stagingNetns);
  }

  async create(rec: EndpointRecord, list: LoadedConfList, progress: CreateProgress): Promise<EndpointRecord> {
    const { host, runtime } = this.deps;
    const { clock } = progress;
    if (!isPreparedNetns(rec.stagingNetns)) await host.ensureNetns(rec.stagingNetns); // a prepared one exists already
    clock.mark("netns");
    const out = await runtime.add(list, {
      containerId: rec.cniContainerId,
      netns: host.netnsPath(rec.stagingNetns),
      ifName: rec.ifName,
      args: rec.cniArgs,
      capabilityArgs: rec.capabilityArgs,
    });
    progress.added = true;
    clock.mark("add");
    const { mac } = verifyResult(out.result, rec.ifName, [rec.address, rec.addressIPv6], list.conflist.name);
    // The move to the host drops the interface's routes: Join replays the ones read before it.
    const routes = await host.handOut(rec.stagingNetns, rec.ifName, rec.tmpName);
    clock.mark("handOut");
    return { ...rec, phase: "ready", result: out.result, routes, macAddress: rec.macAddress ?? mac };
  }

  afterCreate(): void {
    this.deps.host.prepareNetns();
  }

  afterJoin(): void {
    // The staging namespace is taken at CreateEndpoint, whose afterCreate made the next one.
  }

  async join(rec: EndpointRecord, req: api.JoinRequest, _list: LoadedConfList, clock: PhaseClock): Promise<{ rec: EndpointRecord; reply: api.JoinResponse }> {
    if (!(await this.deps.host.linkExists(rec.tmpName))) {
      throw new Error(`interface ${rec.tmpName} of endpoint ${req.EndpointID.slice(0, 12)} is not in the host namespace (already joined elsewhere?): disconnect and connect the container again`);
    }
    clock.mark("link");
    const joinedAt = new Date((this.deps.now ?? Date.now)()).toISOString();
    return { rec: { ...rec, phase: "joined", sandboxKey: req.SandboxKey, joinedAt }, reply: joinResponse(rec) };
  }

  /** Docker moves the interface back to the host namespace itself; DeleteEndpoint does the rest. */
  leave(rec: EndpointRecord): Promise<EndpointRecord> {
    return Promise.resolve({ ...rec, phase: "ready", sandboxKey: undefined });
  }

  /** Back on the host (after Leave), still in staging (a failed hand-out), or gone with its container. */
  placeOf(rec: EndpointRecord): Promise<TeardownPlace> {
    return Promise.resolve({ stagingNetns: rec.stagingNetns, tmpName: rec.tmpName });
  }

  async isGone(rec: EndpointRecord): Promise<boolean> {
    const { host } = this.deps;
    if (rec.phase === "ready") return !(await host.linkExists(rec.tmpName)) && !(await host.netnsExists(rec.stagingNetns));
    // Joined, yet in the host namespace under our name: Docker tore the sandbox down (it moves
    // interfaces back on the way out) without Leave, e.g. across a dockerd crash; or the
    // container is still starting: on Docker <= 27 its namespace is made after every network's
    // Join (a container with two networks, a compose service), and the interface waits on the
    // host until then. Seconds, not a minute.
    if (await host.linkExists(rec.tmpName)) return !rec.joinedAt || (this.deps.now ?? Date.now)() - Date.parse(rec.joinedAt) > START_GRACE_MS;
    if (!rec.sandboxKey || !(await host.sandboxExists(rec.sandboxKey))) return true;
    // The sandbox is there: live only if our address is still in it.
    return rec.address ? !(await host.addressInNamespaceFile(rec.sandboxKey, rec.address)) : false;
  }

  namespacesOf(rec: EndpointRecord): string[] {
    return [rec.stagingNetns];
  }
}
