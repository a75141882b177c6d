// One teardown for every kind of attachment (driver endpoints, `cni-shim attach`, orphan cache
// entries), built to converge: whatever part of the attachment's state is already gone (the
// interface, the namespace, an iptables chain, the IP reservation, the cache file), it ends
// with the address released and nothing of the attachment left. The reference plugins (1.1.1)
// are not idempotent in DEL, so the runtime gives them what their DEL needs and, when a DEL
// still fails, removes what the plugin would have removed itself, then says so once.
//
// It drives both the CNI runtime (cni/) and the host (host/), so it lives above both: neither
// of them calls back up into the other.
import { rm } from "node:fs/promises";
import type { CniRuntime, Attachment } from "../cni/runtime.js";
import type { LoadedConfList } from "../cni/config.js";
import type { Result } from "../cni/schemas.js";
import { containerAddresses } from "../cni/result.js";
import { hostLocalReservations } from "../cni/host-local.js";
import { usesDhcp } from "../cni/dhcp.js";
import * as netns from "../host/netns.js";
import * as ipt from "../host/iptables.js";
import { log } from "../util/log.js";
import { phaseClock } from "../util/phases.js";

export interface TeardownTarget {
  /** The list the attachment was added with; undefined when it is lost (then: local resources only). */
  list?: LoadedConfList;
  attachment: Omit<Attachment, "netns">;
  /** The ADD result, for the addresses the stand-in interface must carry. */
  result?: Result;
  /**
   * Addresses (CIDR) the attachment was meant to get, when there is no result (an ADD cut
   * short): a result is made up from them, and what the plugins leave is swept afterwards.
   */
  intendedAddresses?: string[];
  /** A namespace that still holds the interface (a running container's); DEL runs there. */
  liveNetns?: string;
  /**
   * Our own named namespace to DEL in when there is no live one (created if missing, always
   * removed): the staging namespace the chain ran in, or a stand-in for one.
   */
  stagingNetns: string;
  /** The temporary host-side name the interface may have now (handed to Docker and given back after Leave). */
  tmpName?: string;
  /** Whether another attachment holds an address: its IP-only firewall rules are never swept. Asked only when a sweep runs. */
  addressInUse?: () => Promise<(ip: string) => boolean>;
  /** Who this is, for the log. */
  label: Record<string, unknown>;
}

export interface TeardownOutcome {
  /** Empty when the plugins' own DEL did it all; otherwise what the runtime had to do itself. */
  forced: string[];
}

const bareIP = (cidr: string) => cidr.split("/")[0]!;

/** The least a DEL needs of a result: the container interface and its addresses. */
function standInResult(ifName: string, addresses: string[]): Result {
  return { cniVersion: "1.0.0", interfaces: [{ name: ifName, sandbox: "stand-in" }], ips: addresses.map((address) => ({ address, interface: 0 })) };
}

/** Bridge plugins of the list with ipMasq: their DEL needs the masquerade chain to exist. */
function masqBridges(list: LoadedConfList): boolean {
  return list.conflist.plugins.some((p) => p.type === "bridge" && p.ipMasq === true);
}

/** Put the interface where DEL looks for it: the stand-in namespace, with its addresses. */
async function prepareStandIn(t: TeardownTarget, addresses: string[]): Promise<void> {
  const ns = t.stagingNetns;
  const ifName = t.attachment.ifName;
  await netns.ensureNetns(ns);
  // The usual case first (after Leave the interface is back on the host): no look inside the namespace.
  if (t.tmpName && (await netns.linkExists(t.tmpName))) {
    try {
      return await netns.takeBack(ns, ifName, t.tmpName, addresses);
    } catch (err) {
      // e.g. a stand-in of an earlier try already holds the name: go on as below, with that one.
      log.debug("taking the interface back failed; looking inside the namespace", { ...t.label, error: (err as Error).message });
    }
  }
  if (!(await netns.linkExists(ifName, ns))) {
    if (t.tmpName && (await netns.linkExists(t.tmpName, ns))) await netns.renameLink(ns, t.tmpName, ifName); // a hand-out cut short
    else await netns.addStandIn(ns, ifName);
  }
  await netns.restoreAddresses(ns, ifName, addresses);
}

/**
 * DEL the attachment until nothing of it is left. Throws only when something could not be
 * removed even by force (then the caller keeps its record and retries later).
 */
export async function convergentDel(runtime: CniRuntime, t: TeardownTarget): Promise<TeardownOutcome> {
  const { list, attachment } = t;
  const forced: string[] = [];
  const guessed = !t.result && !!t.intendedAddresses?.length;
  if (guessed) t = { ...t, result: standInResult(attachment.ifName, t.intendedAddresses!) };
  const createdChains: Array<[ipt.Family, string]> = [];
  const addresses = t.result ? containerAddresses(t.result, attachment.ifName) : [];
  const clock = phaseClock();
  try {
    if (!t.liveNetns) await prepareStandIn(t, addresses);
    clock.mark("standIn");
    const nsPath = t.liveNetns ?? netns.netnsPath(t.stagingNetns);
    if (!list) {
      forced.push("no network config: only local resources removed");
    } else {
      if (masqBridges(list)) {
        const chain = ipt.masqChain(list.conflist.name, attachment.containerId);
        for (const family of new Set(addresses.map((a) => a.includes(":") ? 6 : 4))) {
          if (await ipt.ensureChain(family, "nat", chain)) createdChains.push([family, chain]);
        }
        clock.mark("masqChain");
      }
      if (usesDhcp(list.conflist)) await releaseDhcpFirst(runtime, list, t, nsPath);
      try {
        await delRetryingOnce(runtime, list, { ...attachment, netns: nsPath }, t);
        clock.mark("del");
        // Made-up result: the plugins may have had more state than it described.
        if (guessed) await sweep(list, t, addresses, forced);
      } catch (err) {
        // A live namespace still has the interface: freeing its address by force would let
        // it be handed out twice. Only a stand-in (nothing left to protect) is forced.
        if (t.liveNetns) throw err;
        forced.push(`chain DEL failed: ${(err as Error).message}`);
        await forceRemove(runtime, list, t, addresses, forced);
      }
    }
  } finally {
    for (const [family, chain] of createdChains) await ipt.deleteChainIfUnused(family, "nat", chain);
    // The plugins' DEL removed the interface; after a forced teardown the stand-in may be left.
    if (!t.liveNetns && forced.length) await netns.deleteLinkIfExists(attachment.ifName, t.stagingNetns).catch(() => undefined);
    await netns.finishTeardown(t.liveNetns ? undefined : t.stagingNetns, addresses);
    clock.mark("finish");
  }
  log.debug("teardown steps", { ...t.label, ms: clock.done() });
  if (forced.length) log.warn("teardown forced: a plugin's DEL could not finish on its own", { ...t.label, network: list?.conflist.name, forced });
  return { forced };
}

/**
 * The chain's DEL, and once more when it fails, as a kubelet retries a failed teardown: DEL is
 * idempotent (CNI spec), and a plugin may fail a first DEL on state its own DEL left half done
 * (ptp 1.9.1 with ipMasq on two IPv4 ranges: "CHAIN_DEL failed (Device or resource busy)", then
 * a second DEL succeeds). Only the second failure counts.
 */
async function delRetryingOnce(runtime: CniRuntime, list: LoadedConfList, attachment: Parameters<CniRuntime["del"]>[1], t: TeardownTarget): Promise<void> {
  try {
    await runtime.del(list, attachment, t.result);
  } catch (err) {
    log.info("the chain's DEL failed once; running it again", { ...t.label, network: list.conflist.name, error: (err as Error).message });
    await runtime.del(list, attachment, t.result);
  }
}

/**
 * The dhcp daemon sends its DHCPRELEASE through the interface, from the namespace it took the
 * lease in; the main plugins (bridge, macvlan, ptp 1.1.1) delete the interface before they call
 * their IPAM's DEL, so the release would never leave. The IPAM's DEL runs first here, with the
 * interface up (a namespace move left it down); the chain's own DEL then finds no lease (a no-op).
 * Best effort: the server frees an unreleased lease when it expires.
 */
async function releaseDhcpFirst(runtime: CniRuntime, list: LoadedConfList, t: TeardownTarget, nsPath: string): Promise<void> {
  try {
    if (!t.liveNetns) await netns.linkUp(t.stagingNetns, t.attachment.ifName);
    await runtime.delIpam(list, { ...t.attachment, netns: nsPath });
  } catch (err) {
    log.warn("dhcp release before the chain's DEL failed; the chain's DEL releases the lease in the daemon, the server when it expires", { ...t.label, error: (err as Error).message });
  }
}

/** iptables state of the attachment that no plugin removed. */
async function sweep(list: LoadedConfList, t: TeardownTarget, addresses: string[], forced: string[]): Promise<void> {
  const { containerId } = t.attachment;
  const inUse = (await t.addressInUse?.()) ?? (() => false);
  const swept = await ipt.sweepAttachment({
    containerId,
    chains: [ipt.masqChain(list.conflist.name, containerId), ipt.dnatChain(list.conflist.name, containerId)],
    firewallIps: addresses.map(bareIP).filter((ip) => !inUse(ip)),
  });
  if (swept.length) forced.push(`removed ${swept.length} iptables rules/chains of the attachment`);
}

/** What a failed chain DEL would have removed: the IP reservation, iptables state, the cache file. */
async function forceRemove(runtime: CniRuntime, list: LoadedConfList, t: TeardownTarget, addresses: string[], forced: string[]): Promise<void> {
  const { containerId, ifName } = t.attachment;
  try {
    const ran = await runtime.delIpam(list, { ...t.attachment, netns: undefined });
    if (ran.length) forced.push(`released the address with ${ran.join(", ")} DEL`);
  } catch (err) {
    forced.push(`IPAM DEL failed: ${(err as Error).message}`);
  }
  // host-local's own files, when its DEL could not run: the reservation names the container.
  for (const file of await hostLocalReservations(list.conflist, containerId, ifName)) {
    await rm(file, { force: true });
    forced.push(`removed host-local reservation ${file}`);
  }
  await sweep(list, t, addresses, forced);
  await runtime.cache.remove(list.conflist.name, containerId, ifName);
  const left = await hostLocalReservations(list.conflist, containerId, ifName);
  if (left.length) throw new Error(`teardown of ${containerId.slice(0, 12)} could not release ${left.join(", ")}`);
}
