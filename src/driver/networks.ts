// The network calls of the driver: CreateNetwork freezes the CNI network list a Docker network
// uses (a named conflist as is, or the embedded template made concrete); DeleteNetwork removes
// its endpoints and what the plugins leave after the last one.
import type * as api from "../libnetwork/schemas.js";
import { findConfList } from "../cni/config.js";
import type { ConfList } from "../cni/schemas.js";
import { hostLocalDir, hostLocalRanges } from "../cni/host-local.js";
import { log } from "../util/log.js";
import { kindForNetwork } from "./attach-choice.js";
import type { AttachKind } from "./attach-strategy.js";
import type { EndpointTeardown } from "./endpoint-teardown.js";
import { networkConfList } from "./network-conf.js";
import type { ForwardAccept } from "./forward-accept.js";
import type { Clock, CniOps, DhcpOps, HostOps } from "./seams.js";
import { usesDhcp } from "../cni/dhcp.js";
import type { NetworkRecord, StateStore } from "./state.js";
import type { TeardownQueue } from "./teardown-queue.js";
import { addressesFromChain, checkChainAddresses } from "./chain-addresses.js";
import { instantiateDefault } from "./default-conflist.js";
import { namespaceWideSettings } from "./namespace-wide-settings.js";
import { networkOptions, type NetworkOptions } from "./network-options.js";
import { checkPoolsMatch } from "./pools-match.js";
import { checkSwarmNetwork } from "./swarm-network.js";
import { TranslationError } from "./translation-error.js";

const DEFAULT_TEMPLATE = "cni-shim-default";

/** A plugin answered STATUS with an error: the network takes no ADD now (spec 1.1). */
export function notReady(listName: string, err: Error): Error {
  return new Error(`CNI network "${listName}" is not ready (STATUS): ${err.message}; try again once the plugin says it is ready`, { cause: err });
}

export interface NetworksDeps {
  state: StateStore;
  /** Where -o cni.network=NAME and the default template are looked up, in order. */
  confDirs: string[];
  runtime: Pick<CniOps, "prepare" | "status">;
  host: HostOps;
  queue: Pick<TeardownQueue, "settle">;
  endpoints: EndpointTeardown;
  now: Clock;
  /** The attach path new endpoints take (attach-choice.ts); none: the hand-out. */
  attachKind?: () => AttachKind;
  /** cni-shim's forward chain (none: the driver leaves forwarding alone). */
  forward?: ForwardAccept;
  /** Chains with the dhcp IPAM: its daemon (none: not checked). */
  dhcp?: Pick<DhcpOps, "ensureDaemon">;
}

interface ResolvedList {
  list: ConfList;
  source: string;
  mode: NetworkRecord["mode"];
}

export class Networks {
  constructor(private readonly deps: NetworksDeps) {}

  async create(req: api.CreateNetworkRequest): Promise<void> {
    checkSwarmNetwork(req);
    const opts = networkOptions(req);
    const chainPicks = addressesFromChain(req);
    const { list, source, mode } = await this.resolve(req, opts, chainPicks);
    if (chainPicks) checkChainAddresses(list, mode);
    else if (req.IPv6Data.length && hostLocalRanges(list)?.every((r) => !r.subnet.includes(":"))) {
      throw new Error(`CNI network "${list.name}" has no IPv6 range but the Docker network has IPv6 enabled: drop --ipv6 or add an IPv6 range to the conflist`);
    }
    // Missing plugin binaries, version mismatches and a plugin not ready (STATUS) fail here, at `docker network create`.
    await this.deps.runtime.prepare(list);
    await this.deps.runtime.status(list).catch((err: Error) => Promise.reject(notReady(list.name, err)));
    if (usesDhcp(list)) {
      if (!chainPicks) {
        throw new TranslationError(
          `CNI network "${list.name}" uses the dhcp IPAM, which takes its address from a DHCP server, not from Docker's IPAM: create the network with --ipam-driver null (and no --subnet)`,
        );
      }
      await this.deps.dhcp?.ensureDaemon(list);
    }
    // Only the hand-out leaves them behind.
    const handsOut = kindForNetwork(this.deps.attachKind?.() ?? "staging-handoff", chainPicks, list) === "staging-handoff";
    for (const setting of handsOut ? namespaceWideSettings(list) : []) {
      log.warn("setting cannot reach the container", {
        network: list.name,
        setting,
        why: "the chain runs in a staging namespace and only the interface moves into the container; pass it with docker run --sysctl instead",
      });
    }
    const ownedBridge = await this.bridgeToOwn(req.NetworkID, list, mode);
    // Null IPAM's pools (0.0.0.0/0, ::/0) say nothing: the chain's IPAM knows the subnets.
    const first4 = chainPicks ? undefined : req.IPv4Data[0];
    const first6 = chainPicks ? undefined : req.IPv6Data[0];
    await this.deps.state.putNetwork({
      id: req.NetworkID,
      mode,
      conflist: list,
      source,
      ownedBridge,
      ipv4: first4 ? { pool: first4.Pool, gateway: first4.Gateway } : undefined,
      ipv6: first6 ? { pool: first6.Pool, gateway: first6.Gateway } : undefined,
      addresses: chainPicks ? "cni" : "docker",
      internal: opts.internal,
      createdAt: new Date(this.deps.now()).toISOString(),
    });
    // After the record, which is what the chain follows: a network whose forwarding cannot be
    // accepted is not created, rather than created and silently cut off.
    try {
      await this.deps.forward?.converge();
    } catch (err) {
      await this.deps.state.deleteNetwork(req.NetworkID);
      await this.deps.forward?.converge().catch(() => undefined);
      throw new Error(`cannot accept this network's forwarding in iptables chain CNI-SHIM-FORWARD (${(err as Error).message}): fix iptables, or serve with --accept-forwarding false and accept it yourself`, { cause: err });
    }
    log.info("network created", { network: req.NetworkID.slice(0, 12), cniNetwork: list.name, mode, source, addresses: chainPicks ? "the chain's IPAM (--ipam-driver null)" : "Docker's IPAM" });
  }

  /**
   * The default config's bridge, ours when it is not there yet. A swarm worker creates the same
   * network again at each first task: a bridge an earlier round of it made and left (its
   * removal failed) is still ours.
   */
  private async bridgeToOwn(networkId: string, list: ConfList, mode: NetworkRecord["mode"]): Promise<string | undefined> {
    if (mode !== "default") return undefined;
    const bridge = list.plugins.find((p) => p.type === "bridge")?.bridge as string | undefined;
    if (!bridge) return undefined;
    if (!(await this.deps.host.linkExists(bridge))) return bridge;
    return (await this.deps.state.getNetwork(networkId))?.ownedBridge === bridge ? bridge : undefined;
  }

  /** -o cni.network=NAME as found in the conf dirs, or the default template made concrete. */
  private async resolve(req: api.CreateNetworkRequest, opts: NetworkOptions, chainPicks: boolean): Promise<ResolvedList> {
    if (opts.cniNetwork) {
      const found = await findConfList(this.deps.confDirs, opts.cniNetwork);
      if (!chainPicks) checkPoolsMatch(found.conflist, req);
      return { list: found.conflist, source: found.source, mode: "named" };
    }
    if (chainPicks) checkChainAddresses(undefined, "default");
    const template = await findConfList(this.deps.confDirs, DEFAULT_TEMPLATE);
    return { list: instantiateDefault(template.conflist, req, opts), source: `${template.source} (instantiated)`, mode: "default" };
  }

  async delete(networkId: string): Promise<void> {
    const { state, queue, endpoints } = this.deps;
    const net = await state.getNetwork(networkId);
    if (!net) return;
    await queue.settle((rec) => rec.networkId === networkId);
    for (const ep of (await state.listEndpoints()).filter((e) => e.networkId === networkId)) await endpoints.removeUnderLock(ep.id, net);
    await this.removeResources(net);
    await state.deleteNetwork(networkId);
    await this.convergeForward();
  }

  /** The forward chain after a network is gone (here or in reconciliation); a failure waits for the next reconciliation. */
  async convergeForward(): Promise<void> {
    await this.deps.forward?.converge().catch((err: Error) => log.warn("could not update the forward chain; the next reconciliation retries", { error: err.message }));
  }

  /** What the plugins leave after the last container: the bridge we named, host-local's dir. */
  async removeResources(net: NetworkRecord): Promise<void> {
    const list = networkConfList(net).conflist;
    const others = (await this.deps.state.listNetworks()).filter((n) => n.id !== net.id);
    if (net.ownedBridge && !others.some((n) => n.ownedBridge === net.ownedBridge)) {
      await this.deps.host.removeBridgeIfUnused(net.ownedBridge).catch((err: Error) => log.warn("could not remove bridge", { bridge: net.ownedBridge, error: err.message }));
    }
    const dir = hostLocalDir(list);
    if (dir && !others.some((n) => n.conflist.name === list.name)) {
      await this.deps.host.removeHostLocalDirIfEmpty(dir).catch((err: Error) => log.warn("could not clean host-local dir", { dir, error: err.message }));
    }
  }
}
