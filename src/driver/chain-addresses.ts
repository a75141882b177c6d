// Networks whose chain picks the addresses (Docker's null IPAM): what their list needs, the
// addresses it gave, and asking for them again (pure).
import type { ConfList, Result } from "../cni/schemas.js";
import { ipamPlugin } from "../cni/host-local.js";
import { containerAddresses } from "../cni/result.js";
import type * as api from "../libnetwork/schemas.js";
import { canonicalIP, isWholeFamily, parseCidr } from "../util/ip.js";
import { takesIpsCapability } from "./capabilities.js";
import type { EndpointRecord } from "./state.js";
import { TranslationError } from "./translation-error.js";

/**
 * Docker's null IPAM driver (`--ipam-driver null`) sends the pools 0.0.0.0/0 and ::/0 and no
 * gateway, and no address at CreateEndpoint: the chain's own IPAM picks the addresses.
 */
export function addressesFromChain(req: api.CreateNetworkRequest): boolean {
  const pools = [...req.IPv4Data, ...req.IPv6Data];
  return pools.length > 0 && pools.every((d) => isWholeFamily(d.Pool) && !d.Gateway);
}

/** What a network whose chain picks the addresses needs of its list (an IPAM, and no --ip). */
export function checkChainAddresses(list: ConfList | undefined, mode: "default" | "named"): void {
  if (mode === "default") {
    throw new TranslationError(
      "--ipam-driver null needs a conflist with its own IPAM: give -o cni.network=NAME (a conflist in the conf dir, e.g. a cluster profile: kind, k3s, kubeadm); the embedded default config takes its subnet from Docker's IPAM, so drop --ipam-driver null to use it",
    );
  }
  if (!list || !ipamPlugin(list)?.ipam?.type) {
    throw new TranslationError(
      `CNI network "${list?.name}" has no IPAM (no plugin has an "ipam" section with a "type"), and with --ipam-driver null nothing else picks the addresses: add an IPAM (e.g. "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]]}) or drop --ipam-driver null`,
    );
  }
}

/**
 * The addresses the chain's IPAM gave the container (a network with null IPAM): the first of
 * each family, as Docker records one address of each per endpoint.
 */
export function chainAddresses(result: Result, ifName: string, networkName: string): { address?: string; addressIPv6?: string } {
  const all = containerAddresses(result, ifName);
  const address = all.find((a) => parseCidr(a)?.family === 4);
  const addressIPv6 = all.find((a) => parseCidr(a)?.family === 6);
  if (!address && !addressIPv6) {
    throw new TranslationError(`CNI network "${networkName}" gave the container no address (its IPAM returned none), and with --ipam-driver null Docker has no other: check the chain's IPAM (its ranges, its daemon for dhcp) or drop --ipam-driver null`);
  }
  return { address, addressIPv6 };
}

/**
 * A null-IPAM endpoint may take its address ahead (in-sandbox.ts): the chain's IPAM alone at
 * CreateEndpoint, where Docker needs the address, and the whole chain at Join in the container's
 * namespace, asking for that address again. That takes an IPAM that hands out a requested
 * address: host-local, through the `ips` capability, or `IP=` when no plugin takes it (one
 * address only, so one range set). Other IPAMs (dhcp, cluster IPAMs) take the hand-out.
 */
export function ipamAhead(list: ConfList): boolean {
  const ipam = ipamPlugin(list)?.ipam as { type?: unknown; ranges?: unknown[] } | undefined;
  if (ipam?.type !== "host-local" || list.plugins.filter((p) => p.ipam).length !== 1) return false;
  return takesIpsCapability(list) || (ipam.ranges?.length ?? 1) === 1;
}

/**
 * The CNI inputs that ask the chain for the addresses the IPAM gave ahead, as planAttachment
 * asks for Docker's: the `ips` capability, or `IP=` in CNI_ARGS when no plugin takes it.
 */
export function askForAddresses(rec: Pick<EndpointRecord, "address" | "addressIPv6" | "cniArgs" | "capabilityArgs">, list: ConfList): Pick<EndpointRecord, "cniArgs" | "capabilityArgs"> {
  const ips = [rec.address, rec.addressIPv6].filter((a): a is string => !!a);
  if (takesIpsCapability(list)) return { cniArgs: rec.cniArgs, capabilityArgs: { ...rec.capabilityArgs, ips } };
  return { cniArgs: [["IP", canonicalIP(ips[0]!)!], ...rec.cniArgs.filter(([k]) => k !== "IP")], capabilityArgs: rec.capabilityArgs };
}
