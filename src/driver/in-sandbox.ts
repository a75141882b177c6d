// The in-sandbox attach (see attach-strategy.ts), as a kubelet does it: on engines whose
// container namespace exists when Docker calls Join (Docker 28+), the chain's ADD runs at Join
// straight in that namespace (Join's SandboxKey), with the name Docker would give the interface.
// What the chain sets namespace-wide (tuning's sysctls) is the container's.
//
// On --attach auto the interface then goes on to Docker (handToDocker): moved out to the host
// under the endpoint's host-side name and given to Docker in Join's reply, as the hand-out does,
// so Docker names and routes it with its own networks, in any order and on a running container
// (docs/design.md#docker-managed-networks-beside-cni-shims). From there it is a hand-out endpoint.
//
// On --attach sandbox it stays: Docker never sees the interface. Join answers with no
// InterfaceName (Docker then moves and configures nothing) and DisableGatewayService (no
// docker_gwbridge; a Gateway would make Docker add a default route the chain already added: "file
// exists"). Docker's address still reaches the chain (the ips capability), and the MAC is chosen
// at CreateEndpoint and given to Docker in its reply, so `docker inspect` shows eth0's address and
// MAC. Nothing moves between namespaces, so the chain's per-link settings (sbr's rules, a vrf) and
// route table are the container's too. After Leave the namespace is held under our own name
// (/run/netns/cni-shim-<endpoint>), so the teardown's DEL finds the interface with its addresses
// even once Docker has let go of the namespace; the teardown removes the hold. After a crash or
// reboot the hold may be gone: the convergent teardown then works on a stand-in, as for any lost
// interface. A container that has (or starts with) a network cni-shim does not drive takes the
// hand-out there, at each Join where that shows (mixed.ts says why): Docker names and routes only
// the interfaces it moved in itself, so beside its own it must move cni-shim's as well.
//
// On a null-IPAM network Docker needs the address in CreateEndpoint's reply: the chain's IPAM
// alone takes it then (no namespace needed), and Join gives it back and runs the whole chain
// asking for it (docs/design.md#null-ipam).
//
// A Join whose SandboxKey is not a namespace yet (an engine that makes it later, Docker <= 27)
// falls back to the staging hand-out for that endpoint, and tells the choice (attach-choice.ts)
// so that later endpoints on this engine take the hand-out from the start; so does one whose key
// this process cannot look for (host/sandbox-key.ts), which the choice does not take for the
// engine's doing. The record keeps Docker's key; each use opens it where this process sees it (a
// managed plugin: in dockerd's view of the files).
import { randomBytes } from "node:crypto";
import type * as api from "../libnetwork/schemas.js";
import type { LoadedConfList } from "../cni/config.js";
import type { PhaseClock } from "../util/phases.js";
import { log } from "../util/log.js";
import type { AttachStrategy, CreateProgress, TeardownPlace } from "./attach-strategy.js";
import type { CniOps, HostOps } from "./seams.js";
import type { EndpointRecord } from "./state.js";
import type { AttachmentPlan } from "./attachment-plan.js";
import { takesMacCapability } from "./capabilities.js";
import { askForAddresses, chainAddresses } from "./chain-addresses.js";
import { macOfIPv4, withMacArg } from "./endpoint-mac.js";
import { endpointNames } from "./names-from-ids.js";
import { verifyResult } from "./verify-result.js";
import { nextIfName, type LookSession } from "../host/sandbox.js";
import type { SandboxSight } from "../host/sandbox-key.js";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { mixedReason, needsDockerLook, type DockerView } from "./mixed.js";
import { linkBoundReason } from "./link-bound.js";

/** A random locally administered unicast MAC, for an endpoint with no IPv4 address to make one of. */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

export interface InSandboxDeps {
  runtime: Pick<CniOps, "add" | "addIpam" | "delIpam">;
  host: HostOps;
  /** The hand-out, for a Join that finds no namespace. */
  fallback: AttachStrategy;
  /** Told at each Join what its SandboxKey showed (attach-choice.ts). */
  observe(sight: SandboxSight): void;
  /** The links cni-shim made itself (in-sandbox endpoints joined) in the namespace of this SandboxKey. */
  ownLinks(sandboxKey: string): Promise<string[]>;
  /** The Docker networks cni-shim drives. */
  cniShimNetworks(): Promise<ReadonlySet<string>>;
  /**
   * Whether a fresh namespace's interface goes on to Docker after the ADD (handToDocker): on
   * `--attach auto`; `--attach sandbox` keeps it where the chain made it (a Docker network
   * connected to the running container later then fails).
   */
  dockerNames(): boolean;
  /** Docker's containers and their networks; none: no Docker to ask (the namespace alone decides). */
  dockerView?: () => Promise<DockerView>;
}

export class InSandbox implements AttachStrategy {
  readonly kind = "in-sandbox" as const;
  /** `create` only chooses the MAC: CreateEndpoint writes the "ready" record and no "adding" one before it. */
  readonly addsAtCreate = false;

  /** Looks started when Join arrived, before its record was read (prefetch), by endpoint id. */
  private readonly prefetched = new Map<string, { nsFile: string; look: Promise<LookSession>; view?: Promise<DockerView | Error> }>();

  /** Endpoints whose Join needs Docker's lists (mixed.ts), asked once CreateEndpoint replied. */
  private readonly viewWanted = new Set<string>();

  /** Docker's lists asked at CreateEndpoint (askAtCreate), by endpoint id, for its Join. */
  private readonly askedAtCreate = new Map<string, Promise<DockerView | Error>>();

  /** Address allocations of null-IPAM networks, by CNI network name (allocating). */
  private readonly allocations = new KeyedMutex();

  constructor(private readonly deps: InSandboxDeps) {}

  /**
   * Nothing to make before Join. The names are those of the endpoint: where the namespace is
   * held after Leave, and the hand-out's if a Join falls back to it.
   */
  reserve(plan: AttachmentPlan): Promise<Pick<EndpointRecord, "stagingNetns" | "tmpName">> {
    return Promise.resolve({ stagingNetns: plan.stagingNetns, tmpName: plan.tmpName });
  }

  release(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * The MAC Docker is told now and the chain gets at Join; on a null-IPAM network also the
   * address, which Docker needs in this reply: the chain's IPAM alone takes it now (no namespace
   * is needed for that), and Join gives it back and asks the whole chain for it. Only for an
   * IPAM that hands out a requested address (ipamAhead; driver.ts sends the others to the hand-out).
   */
  async create(rec: EndpointRecord, list: LoadedConfList, progress: CreateProgress): Promise<EndpointRecord> {
    if (!this.deps.dockerNames() || linkBoundReason(list.conflist)) this.viewWanted.add(rec.id);
    const ahead = progress.chainPicksAddresses ? await this.takeAddressAhead(rec, list, progress) : rec;
    const mac = ahead.macAddress ?? macOfIPv4(ahead.address) ?? randomMac();
    // A chain whose plugins take no mac capability may still take MAC= (withMacArg): no step after the ADD then.
    const cniArgs = takesMacCapability(list.conflist) ? ahead.cniArgs : withMacArg(ahead.cniArgs, mac);
    return { ...ahead, phase: "ready", macAddress: mac, cniArgs, capabilityArgs: { ...ahead.capabilityArgs, mac } };
  }

  /**
   * Between giving an address back at Join and the chain's IPAM taking it again, no other
   * allocation of the network may run: host-local hands out the address after the last one it
   * reserved, and taking a requested address again moves that mark back, so another endpoint's
   * address given back just then would be next in line (seen in the soak: two endpoints, one
   * address). So on a network, the IPAM's ADDs ahead and each Join's give-back-and-ADD run one at
   * a time (in this process: one serve owns a network's endpoints).
   */
  private allocating<T>(rec: EndpointRecord, list: LoadedConfList, fn: () => Promise<T>): Promise<T> {
    return rec.ipamHeld ? this.allocations.run(list.conflist.name, fn) : fn();
  }

  private async takeAddressAhead(rec: EndpointRecord, list: LoadedConfList, progress: CreateProgress): Promise<EndpointRecord> {
    // CNI_NETNS is required for every ADD, and the container's namespace does not exist yet:
    // host-local never opens it, and this path (where the namespace is held after Leave) names
    // no namespace now, so an IPAM that would use it fails rather than act on the host's.
    const netns = this.deps.host.netnsPath(rec.stagingNetns);
    const result = await this.allocations.run(list.conflist.name, () =>
      this.deps.runtime.addIpam(list, { containerId: rec.cniContainerId, netns, ifName: rec.ifName, args: rec.cniArgs, capabilityArgs: rec.capabilityArgs }),
    );
    // From here a teardown is needed to undo it (the chain's DEL gives the address back).
    progress.added = true;
    progress.clock.mark("ipam");
    return { ...rec, ...chainAddresses(result, rec.ifName, list.conflist.name), ipamHeld: rec.ifName };
  }

  /**
   * Join of an endpoint whose address the IPAM took ahead: give it back, and ask the chain for it
   * (host-local hands it out again: it gives the next address from the last one it reserved, so
   * no other container gets this one in between unless the whole range went round).
   */
  private async giveBackAhead(rec: EndpointRecord, list: LoadedConfList, clock: PhaseClock): Promise<EndpointRecord> {
    if (!rec.ipamHeld) return rec;
    await this.deps.runtime.delIpam(list, { containerId: rec.cniContainerId, ifName: rec.ipamHeld, args: rec.cniArgs, capabilityArgs: rec.capabilityArgs });
    clock.mark("release");
    return { ...rec, ...askForAddresses(rec, list.conflist), ipamHeld: undefined };
  }

  /**
   * After CreateEndpoint's reply: Docker's lists for its Join are asked now (their reply is
   * parsed while Docker works towards the Join, not beside the CreateEndpoint's own steps), and
   * the next look is got ready (sandbox-look.ts; a fork, which blocks: the request goes first).
   */
  afterCreate(endpointId: string): void {
    if (this.viewWanted.delete(endpointId)) this.askAtCreate(endpointId);
    this.deps.host.prepareLook();
  }

  /**
   * The next start's look is got ready once this Join's reply is out: forked at the next
   * CreateEndpoint's reply only, it was still starting when that Join came, a few ms later
   * (Node's fork blocks its event loop, then perl starts): 2.7-4.9 ms of the Join's look phase.
   */
  afterJoin(): void {
    this.deps.host.prepareLook();
  }

  async join(rec: EndpointRecord, req: api.JoinRequest, list: LoadedConfList, clock: PhaseClock): Promise<{ rec: EndpointRecord; reply: api.JoinResponse; addedInSandbox?: true }> {
    const { host } = this.deps;
    const key = req.SandboxKey;
    const sight: SandboxSight = key ? await host.sandboxSight(key) : { kind: "missing" };
    this.deps.observe(sight);
    if (sight.kind !== "visible") return this.fallBack(rec, req, list, clock, undefined, sight);
    const nsFile = sight.path;
    clock.mark("netns");
    const ahead = this.takePrefetched(rec.id, key);
    const before = await (ahead?.look ?? this.look(key));
    clock.mark("look");
    try {
      // The chain's interface goes on to Docker (handToDocker says why), unless a move would drop
      // what the chain set on it (link-bound.ts), or the namespace has interfaces cni-shim made
      // there itself, which Docker does not number.
      if (this.deps.dockerNames() && !linkBoundReason(list.conflist) && !(await this.hasOwnLinks(key, before.links))) {
        return await this.handToDocker(rec, req, list, clock, { nsFile, before });
      }
      const mixed = await this.mixedReason(rec.networkId, key, before.links, ahead?.view);
      clock.mark("mixed");
      if (mixed) {
        await before.finish();
        log.info("a container with networks cni-shim does not drive: this endpoint takes the staging hand-out", { endpoint: rec.id.slice(0, 12), why: mixed });
        return await this.fallBack(rec, req, list, clock, mixed);
      }
      return { rec: await this.addInside(rec, list, { key, nsFile }, before, clock), reply: { DisableGatewayService: true } };
    } finally {
      // A no-op once finished (its failure, if any, is the Join's already): lets the look's ip go on failure.
      await before.finish().catch(() => undefined);
    }
  }

  /** The chain's ADD in the namespace, then what follows it there (the MAC, default routes) through the look's own ip. */
  private async addInside(rec: EndpointRecord, list: LoadedConfList, at: { key: string; nsFile: string }, before: LookSession, clock: PhaseClock): Promise<EndpointRecord> {
    const { nsFile } = at;
    const ifName = nextIfName(before.links);
    const { asking, out } = await this.allocating(rec, list, async () => {
      const asking = await this.giveBackAhead(rec, list, clock);
      return { asking, out: await this.deps.runtime.add(list, { containerId: rec.cniContainerId, netns: nsFile, ifName, args: asking.cniArgs, capabilityArgs: asking.capabilityArgs }) };
    });
    clock.mark("add");
    const { mac } = verifyResult(out.result, ifName, [rec.address, rec.addressIPv6], list.conflist.name);
    // A chain no plugin of which took the MAC (the mac capability, MAC= in CNI_ARGS) left its own.
    const setMac = rec.macAddress && mac !== rec.macAddress ? rec.macAddress : undefined;
    // As on Docker's own networks, a network connected later does not take the default route
    // from the one that has it (the chain's default route goes; its other routes stay).
    const deleteDefaults = before.defaultRoutes.filter((f) => (out.result.routes ?? []).some((r) => r.dst === (f === 4 ? "0.0.0.0/0" : "::/0")));
    if (setMac || deleteDefaults.length) {
      await before.finish({ ifName, ...(setMac ? { mac: setMac } : {}), deleteDefaults }).catch((err: Error) => {
        throw new Error(setMac ? `${ifName} took no MAC while up (${err.message}): add {"type": "tuning", "capabilities": {"mac": true}} to the chain, or run cni-shim with --attach handoff` : err.message);
      });
      clock.mark(setMac ? "mac" : "routes");
    }
    return { ...asking, phase: "joined", ifName, sandboxKey: at.key, result: out.result };
  }

  /**
   * The chain's ADD in the container's namespace as above, then its interface handed to Docker:
   * out to the host under its host-side name, which Join gives Docker, and Docker moves it back,
   * names it in its own numbering with the others it moved in, and sets its address, MAC and the
   * chain's routes (Gateway, StaticRoutes). So networks of either kind, in any order and connected
   * to a running container too, get unique names, and Docker's gateway priority places the
   * default route (docs/design.md#docker-managed-networks-beside-cni-shims). What the chain set
   * namespace-wide stays the container's. From here the endpoint is the hand-out's (Leave, and the
   * teardown in a namespace of its own, where the interface's CNI name is free).
   */
  private async handToDocker(rec: EndpointRecord, req: api.JoinRequest, list: LoadedConfList, clock: PhaseClock, at: { nsFile: string; before: LookSession }): Promise<{ rec: EndpointRecord; reply: api.JoinResponse; addedInSandbox: true }> {
    const { runtime, fallback } = this.deps;
    const { nsFile, before } = at; // nsFile: where this process opens the SandboxKey
    const ifName = nextIfName(before.links);
    const { asking, out } = await this.allocating(rec, list, async () => {
      const asking = await this.giveBackAhead(rec, list, clock);
      return { asking, out: await runtime.add(list, { containerId: rec.cniContainerId, netns: nsFile, ifName, args: asking.cniArgs, capabilityArgs: asking.capabilityArgs }) };
    });
    clock.mark("add");
    const { mac } = verifyResult(out.result, ifName, [rec.address, rec.addressIPv6], list.conflist.name);
    // Through the look's ip, still in the namespace: no exec of its own (sandbox-look.ts).
    const routes = await before.handOut(ifName, rec.tmpName);
    clock.mark("handOut");
    const handed: EndpointRecord = { ...asking, attach: fallback.kind, phase: "ready", ifName, result: out.result, routes, macAddress: rec.macAddress ?? mac };
    return { ...(await fallback.join(handed, req, list, clock)), addedInSandbox: true };
  }

  private async hasOwnLinks(nsFile: string, links: string[]): Promise<boolean> {
    if (needsDockerLook(links)) return false; // only lo
    const own = await this.deps.ownLinks(nsFile);
    return own.some((l) => links.includes(l));
  }

  /** Why this Join must take the hand-out (mixed.ts), or undefined. Docker is asked only for a fresh namespace. */
  private async mixedReason(networkId: string, sandboxKey: string, links: string[], askedAhead?: Promise<DockerView | Error>): Promise<string | undefined> {
    const { deps } = this;
    const ask = deps.dockerView && needsDockerLook(links) ? (askedAhead ?? this.askDocker()) : undefined;
    const [ownLinks, cniShimNetworks, docker] = await Promise.all([deps.ownLinks(sandboxKey), deps.cniShimNetworks(), ask]);
    return mixedReason({ links, ownLinks, networkId, cniShimNetworks, docker });
  }

  /** The hand-out at Join: no namespace yet (or none this process can see), or (`mixed`, logged by the caller) a container with a Docker-managed network. */
  private async fallBack(rec: EndpointRecord, req: api.JoinRequest, list: LoadedConfList, clock: PhaseClock, mixed?: string, sight?: SandboxSight): Promise<{ rec: EndpointRecord; reply: api.JoinResponse }> {
    const { fallback } = this.deps;
    if (sight?.kind === "unseen") log.info("cannot look for the container's namespace at Join: this endpoint takes the staging hand-out", { endpoint: rec.id.slice(0, 12), sandboxKey: req.SandboxKey, why: sight.why });
    else if (!mixed) log.info("no container namespace at Join: this endpoint takes the staging hand-out", { endpoint: rec.id.slice(0, 12), sandboxKey: req.SandboxKey });
    // The endpoint's own names (no prepared namespace): a crash half-way leaves a record that names them.
    const progress: CreateProgress = { added: false, clock };
    const ready = await this.allocating(rec, list, async () => {
      const asking = await this.giveBackAhead(rec, list, clock);
      return fallback.create({ ...asking, attach: fallback.kind, ...endpointNames(rec.id), ifName: "eth0" }, list, progress);
    });
    return fallback.join(ready, req, list, clock);
  }

  /**
   * Docker's lists, asked at CreateEndpoint for its Join (mixed.ts): Docker 28 sends an endpoint's
   * Join right after its CreateEndpoint, so the answer is mostly in by then, and its wait is off
   * the Join. As right as asking at Join: the starting container is locked by its start (no
   * connect in between), and a change to another container in between can only make the check
   * take the hand-out where it need not (a container that started meanwhile still counts).
   */
  private askAtCreate(endpointId: string): void {
    const view = this.askDocker();
    if (!view) return;
    this.askedAtCreate.set(endpointId, view);
    if (this.askedAtCreate.size > 16) this.askedAtCreate.delete(this.askedAtCreate.keys().next().value as string);
  }

  private askDocker(): Promise<DockerView | Error> | undefined {
    return this.deps.dockerView?.().catch((err: Error) => err);
  }

  /**
   * Start Join's look inside the namespace as soon as Join arrives, while the endpoint's lock and
   * record are being taken (about 0.7 ms of a start). Kept for that endpoint's join; a Join
   * that never gets there (an error first) leaves its entry until newer ones push it out.
   */
  prefetch(endpointId: string, nsFile: string | undefined): void {
    if (!nsFile) return;
    const look = this.look(nsFile);
    look.catch(() => undefined); // no namespace (yet): the join looks again, and falls back
    // Docker's lists too (mixed.ts): most Joins are a start's first, which needs them; asked
    // beside the look rather than after it.
    // On --attach auto the lists matter only to a chain that stays in the namespace (link-bound.ts).
    const asked = this.askedAtCreate.get(endpointId);
    this.askedAtCreate.delete(endpointId);
    this.viewWanted.delete(endpointId); // a Join before CreateEndpoint's afterCreate: asked here, once
    this.prefetched.set(endpointId, { nsFile, look, view: asked ?? (this.deps.dockerNames() ? undefined : this.askDocker()) });
    if (this.prefetched.size > 16) {
      const oldest = this.prefetched.keys().next().value as string;
      this.letGo(this.prefetched.get(oldest));
      this.prefetched.delete(oldest);
    }
  }

  /** The look before a Join's ADD; on --attach auto most interfaces go on to Docker, through ip (handToDocker). */
  private look(nsFile: string): Promise<LookSession> {
    return this.deps.host.lookInside(nsFile, { ipAhead: this.deps.dockerNames() });
  }

  /** A look nobody will finish: its ip goes now rather than at the looker's hold timeout. */
  private letGo(hit: { look: Promise<LookSession> } | undefined): void {
    void hit?.look.then((l) => l.finish()).catch(() => undefined);
  }

  private takePrefetched(endpointId: string, nsFile: string): { look: Promise<LookSession>; view?: Promise<DockerView | Error> } | undefined {
    const hit = this.prefetched.get(endpointId);
    this.prefetched.delete(endpointId);
    if (hit && hit.nsFile !== nsFile) this.letGo(hit);
    // A look that failed early (the namespace not there yet) is made again now.
    return hit?.nsFile === nsFile ? { look: hit.look.catch(() => this.look(nsFile)), ...(hit.view ? { view: hit.view } : {}) } : undefined;
  }

  /** What this process sees at the record's SandboxKey (none: not joined). */
  private sightOf(rec: EndpointRecord): Promise<SandboxSight | undefined> {
    return rec.sandboxKey ? this.deps.host.sandboxSight(rec.sandboxKey) : Promise.resolve(undefined);
  }

  /** Where this process opens the record's namespace, while it is one. */
  private async opened(rec: EndpointRecord): Promise<string | undefined> {
    const sight = await this.sightOf(rec);
    return sight?.kind === "visible" ? sight.path : undefined;
  }

  /** Docker let go of the namespace: keep it for the DEL. */
  async leave(rec: EndpointRecord): Promise<EndpointRecord> {
    const { host } = this.deps;
    const nsFile = await this.opened(rec);
    if (nsFile && !(await host.netnsExists(rec.stagingNetns))) await host.holdNetns(nsFile, rec.stagingNetns);
    return { ...rec, phase: "ready" };
  }

  /** Joined: the container's namespace while it lives; else our hold of it (or a stand-in there). */
  async placeOf(rec: EndpointRecord): Promise<TeardownPlace> {
    const { host } = this.deps;
    const nsFile = rec.phase === "joined" && !(await host.netnsExists(rec.stagingNetns)) ? await this.opened(rec) : undefined;
    if (nsFile) return { liveNetns: nsFile, stagingNetns: rec.stagingNetns };
    return { stagingNetns: rec.stagingNetns, tmpName: rec.tmpName };
  }

  /**
   * Ready and held: the container left and DeleteEndpoint never came. Ready and not held: not
   * joined yet (Docker may be mid-start). Joined: gone with its namespace, or when the namespace
   * no longer has our address.
   */
  async isGone(rec: EndpointRecord): Promise<boolean> {
    const { host } = this.deps;
    if (rec.phase === "ready") return host.netnsExists(rec.stagingNetns);
    const sight = await this.sightOf(rec);
    // A key this process cannot look for: nothing says it is gone.
    if (sight?.kind === "unseen") return false;
    if (sight?.kind !== "visible") return true;
    return rec.address ? !(await host.addressInNamespaceFile(sight.path, rec.address)) : false;
  }

  namespacesOf(rec: EndpointRecord): string[] {
    return [rec.stagingNetns];
  }
}
