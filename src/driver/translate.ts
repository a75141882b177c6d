// Pure translation between Docker's libnetwork requests and CNI: no exec, no files, no netns.
// Docker request -> network list / CNI invocation plan -> Docker reply.
import type { ConfList, Result } from "../cni/schemas.js";
import { hostLocalRanges, ipamPlugin } from "../cni/host-local.js";
import type { CniArg } from "../cni/args.js";
import { containerAddresses, containerInterface } from "../cni/result.js";
import * as api from "../libnetwork/schemas.js";
import type { EndpointRecord } from "./state.js";
import type { PortMapping } from "../cni/schemas.js";
import { joinRoutes } from "./routes.js";
import { canonicalIP, parseCidr, sameIP, subnetOf } from "../util/ip.js";

// doctor reads host-local's ranges from here (they live in cni/host-local.ts).
export { hostLocalRanges };

export class TranslationError extends Error {}

export interface NetworkOptions {
  cniNetwork?: string;
  bridge?: string;
  mtu?: number;
  internal: boolean;
  enableIPv6: boolean;
}

/** The `-o key=value` options of `docker network create` (Docker passes them as strings). */
export function networkOptions(req: api.CreateNetworkRequest): NetworkOptions {
  const rawGeneric = req.Options[api.OPT.generic] ?? {};
  // Docker always sends an object here; anything else would hide the cni.* options from us.
  if (typeof rawGeneric !== "object" || Array.isArray(rawGeneric)) {
    throw new TranslationError(`${api.OPT.generic} must be an object of -o key=value options, not ${Array.isArray(rawGeneric) ? "a list" : typeof rawGeneric}`);
  }
  const generic = rawGeneric as Record<string, unknown>;
  const str = (key: string): string | undefined => {
    const v = generic[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") throw new TranslationError(`option ${key} must be a string`);
    // `-o cni.network=` would silently mean "the default config": say so instead.
    if (v.trim() === "") throw new TranslationError(`-o ${key}= has an empty value: give it a value (-o ${key}=...) or leave the option out`);
    return v;
  };
  const known = new Set<string>(Object.values(api.SHIM_OPT));
  const unknownShim = Object.keys(generic).filter((k) => k.startsWith("cni.") && !known.has(k));
  if (unknownShim.length) {
    throw new TranslationError(`unknown option ${unknownShim.join(", ")}: cni-shim understands ${[...known].map((k) => `-o ${k}=...`).join(", ")}`);
  }
  const cniNetwork = str(api.SHIM_OPT.network);
  if (cniNetwork !== undefined && (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(cniNetwork) || cniNetwork.includes(".."))) {
    throw new TranslationError(`-o ${api.SHIM_OPT.network}="${cniNetwork}" is not a CNI network name: give the "name" of a conflist in the conf dir, not a path`);
  }
  const bridge = str(api.SHIM_OPT.bridge);
  if (bridge !== undefined && (bridge.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(bridge))) {
    throw new TranslationError(`-o ${api.SHIM_OPT.bridge}="${bridge}" is not a valid interface name (at most 15 letters, digits, '_', '.', '-')`);
  }
  const mtuText = str(api.SHIM_OPT.mtu);
  let mtu: number | undefined;
  if (mtuText !== undefined) {
    mtu = /^\d+$/.test(mtuText) ? Number(mtuText) : NaN;
    if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new TranslationError(`-o ${api.SHIM_OPT.mtu}="${mtuText}" must be a whole number between 576 and 65535`);
  }
  if (cniNetwork && (bridge || mtu)) {
    throw new TranslationError(`-o ${api.SHIM_OPT.bridge} and -o ${api.SHIM_OPT.mtu} apply to the embedded default config only; with -o ${api.SHIM_OPT.network} edit the conflist instead`);
  }
  return { cniNetwork, bridge, mtu, internal: req.Options[api.OPT.internal] === true, enableIPv6: req.Options[api.OPT.enableIPv6] === true };
}

const shortId = (id: string) => id.slice(0, 12);
export const defaultNetworkName = (networkId: string) => `cni-shim-${shortId(networkId)}`;
const defaultBridgeName = (networkId: string) => `cs-${shortId(networkId)}`;

/**
 * The embedded template made concrete for one Docker network: Docker's pools and gateways as
 * host-local ranges, a bridge name of its own (two networks never share a bridge).
 */
export function instantiateDefault(template: ConfList, req: api.CreateNetworkRequest, opts: NetworkOptions): ConfList {
  const list = structuredClone(template);
  list.name = defaultNetworkName(req.NetworkID);
  const bridge = list.plugins.find((p) => p.type === "bridge");
  const ipamHolder = ipamPlugin(list);
  if (!bridge || !ipamHolder?.ipam || ipamHolder.ipam.type !== "host-local") {
    throw new TranslationError(`the embedded default config ${template.name} must have a bridge plugin with host-local IPAM`);
  }
  bridge.bridge = opts.bridge ?? defaultBridgeName(req.NetworkID);
  if (opts.mtu) bridge.mtu = opts.mtu;
  if (opts.internal) bridge.ipMasq = false;
  const rangeSets: unknown[] = [];
  const routes: Array<{ dst: string }> = [];
  for (const [data, defaultRoute] of [[req.IPv4Data, "0.0.0.0/0"], [req.IPv6Data, "::/0"]] as const) {
    const first = data[0];
    if (!first) continue;
    rangeSets.push(
      data.map((d) => {
        const range: Record<string, string> = { subnet: subnetOf(d.Pool) ?? d.Pool };
        if (d.Gateway) range.gateway = canonicalIP(d.Gateway)!;
        return range;
      }),
    );
    // Docker's bridge driver gives internal networks no default route; do the same.
    if (!opts.internal) routes.push({ dst: defaultRoute });
  }
  if (!rangeSets.length) throw new TranslationError("Docker sent no IPv4 or IPv6 pool for this network");
  ipamHolder.ipam = { ...ipamHolder.ipam, ranges: rangeSets, routes };
  return list;
}

/**
 * A named conflist is used as is, so Docker's IPAM must hand out addresses from the same
 * subnet with the same gateway; otherwise say exactly which flags make them agree.
 */
export function checkPoolsMatch(list: ConfList, req: api.CreateNetworkRequest): void {
  const ranges = hostLocalRanges(list);
  if (!ranges) return; // other IPAM: each address is verified against the CNI result instead
  for (const [family, data] of [[4, req.IPv4Data], [6, req.IPv6Data]] as const) {
    const mine = ranges.filter((r) => parseCidr(r.subnet)?.family === family);
    if (!mine.length || !data.length) continue;
    const d = data[0]!;
    const pool = subnetOf(d.Pool);
    const gw = d.Gateway ? canonicalIP(d.Gateway) : undefined;
    const match = mine.find((r) => r.subnet === pool);
    if (!match || (gw && gw !== match.gateway)) {
      const want = match ?? mine[0]!;
      const flag = family === 6 ? "--ipv6 --subnet" : "--subnet";
      throw new TranslationError(
        `CNI network "${list.name}" hands out addresses from ${want.subnet} (gateway ${want.gateway}), but Docker's pool is ${d.Pool}${gw ? ` (gateway ${gw})` : ""}: ` +
          `create the network with ${flag} ${want.subnet} --gateway ${want.gateway}`,
      );
    }
  }
  if (req.IPv4Data.length && !ranges.some((r) => parseCidr(r.subnet)?.family === 4)) {
    throw new TranslationError(`CNI network "${list.name}" has no IPv4 range but Docker assigns IPv4 addresses: add an IPv4 range to the conflist`);
  }
}

/**
 * Docker's null IPAM driver (`--ipam-driver null`) sends the pools 0.0.0.0/0 and ::/0 and no
 * gateway, and no address at CreateEndpoint: the chain's own IPAM picks the addresses.
 */
export function addressesFromChain(req: api.CreateNetworkRequest): boolean {
  const pools = [...req.IPv4Data, ...req.IPv6Data];
  return pools.length > 0 && pools.every((d) => (d.Pool === "0.0.0.0/0" || d.Pool === "::/0") && !d.Gateway);
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

/** The MAC Docker's bridge driver gave up to 26 (02:42 and the IPv4 address), or none for no IPv4 address. */
export function macOfIPv4(address: string | undefined): string | undefined {
  const v4 = address ? canonicalIP(address) : undefined;
  if (!v4 || !/^\d+\.\d+\.\d+\.\d+$/.test(v4)) return undefined;
  return ["02", "42", ...v4.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":");
}

/** Settings a chain applies to the whole (staging) namespace; they cannot follow the interface. */
export function namespaceWideSettings(list: ConfList): string[] {
  const out: string[] = [];
  for (const p of list.plugins) {
    const sysctl = (p as { sysctl?: Record<string, unknown> }).sysctl;
    if (sysctl && typeof sysctl === "object") {
      for (const key of Object.keys(sysctl)) out.push(`${p.type} sysctl ${key}`);
    }
  }
  return out;
}

const PROTOCOLS: Record<number, PortMapping["protocol"]> = { 6: "tcp", 17: "udp", 132: "sctp" };

export interface PortRequest {
  protocol: PortMapping["protocol"];
  containerPort: number;
  hostIP?: string;
  /** First and last acceptable host port; 0/0 = any free port. */
  hostPortStart: number;
  hostPortEnd: number;
}

/** com.docker.network.portmap -> what to publish; host ports still to be chosen for 0 and ranges. */
export function portRequests(options: Record<string, unknown>): PortRequest[] {
  const parsed = api.PortBindings.safeParse(options[api.OPT.portmap]);
  if (!parsed.success) throw new TranslationError(`${api.OPT.portmap} is malformed`);
  return parsed.data.map((b) => {
    const protocol = PROTOCOLS[b.Proto];
    if (!protocol) throw new TranslationError(`published port ${b.Port} uses IP protocol ${b.Proto}; only tcp, udp and sctp can be published`);
    const start = b.HostPort;
    const end = Math.max(b.HostPortEnd ?? 0, start);
    const hostIP = b.HostIP && b.HostIP !== "0.0.0.0" && b.HostIP !== "::" ? b.HostIP : undefined;
    return { protocol, containerPort: b.Port, hostIP, hostPortStart: start, hostPortEnd: end };
  });
}

/** A user-set MAC (--mac-address) arrives in the interface and, base64, in the options. */
export function requestedMac(req: api.CreateEndpointRequest): string | undefined {
  if (req.Interface?.MacAddress) return req.Interface.MacAddress.toLowerCase();
  const b64 = req.Options[api.OPT.macAddress];
  if (typeof b64 === "string" && b64) {
    const bytes = Buffer.from(b64, "base64");
    if (bytes.length === 6) return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
  }
  return undefined;
}

/**
 * The MAC an endpoint gets: the user's (--mac-address), else one made of its IPv4 address the
 * way Docker's bridge driver made them up to Docker 26 (02:42 and the address's four bytes).
 * The same address then always has the same MAC, so after a container restart its peers'
 * neighbour entries stay right; with the chain's random MAC they pointed at the old one until
 * they aged out (tens of seconds without a ping reply; Docker 28 announces a moved interface
 * with gratuitous ARP, Docker <= 27 does not). No IPv4 address: the chain's own.
 */
export function endpointMac(req: api.CreateEndpointRequest): string | undefined {
  return requestedMac(req) ?? macOfIPv4(req.Interface?.Address || undefined);
}

export interface AttachmentPlan {
  cniContainerId: string;
  ifName: string;
  stagingNetns: string;
  tmpName: string;
  cniArgs: CniArg[];
  capabilityArgs: Record<string, unknown>;
}

/** Our names for an endpoint's namespace and host-side interface, from its (CNI container) id. */
export const endpointNames = (endpointId: string) => ({ stagingNetns: `cni-shim-${shortId(endpointId)}`, tmpName: `cs${shortId(endpointId)}` });

/** Does a plugin of the chain (tuning) set the interface's MAC from the `mac` capability? */
export const takesMacCapability = (list: ConfList) => list.plugins.some((p) => (p.capabilities as Record<string, unknown> | undefined)?.mac === true);

/** Does a plugin of the chain take requested addresses as the `ips` capability? */
export const takesIpsCapability = (list: ConfList) => list.plugins.some((p) => (p.capabilities as Record<string, unknown> | undefined)?.ips === true);

/**
 * Names and CNI inputs for one endpoint. The endpoint id is the CNI container id. Docker's
 * address travels as the `ips` capability; `IP=` in CNI_ARGS (the older convention host-local
 * reads, as a bare address) only when no plugin takes the capability: static IPAM, for one,
 * refuses a bare `IP=`.
 */
export function planAttachment(req: api.CreateEndpointRequest, ports: PortMapping[], opts: { podName?: string; ipsCapability?: boolean } = {}): AttachmentPlan {
  const { podName } = opts;
  const address = req.Interface?.Address || undefined;
  const addressV6 = req.Interface?.AddressIPv6 || undefined;
  const cniArgs: CniArg[] = [];
  if (address && !opts.ipsCapability) cniArgs.push(["IP", canonicalIP(address)!]);
  cniArgs.push(["K8S_POD_NAMESPACE", "docker"], ["K8S_POD_NAME", podName ?? `endpoint-${shortId(req.EndpointID)}`], ["K8S_POD_INFRA_CONTAINER_ID", req.EndpointID]);
  const capabilityArgs: Record<string, unknown> = {};
  const ips = [address, addressV6].filter((a): a is string => !!a);
  if (ips.length) capabilityArgs.ips = ips;
  if (ports.length) capabilityArgs.portMappings = ports;
  const mac = endpointMac(req);
  if (mac) capabilityArgs.mac = mac;
  return {
    cniContainerId: req.EndpointID,
    ifName: "eth0",
    ...endpointNames(req.EndpointID),
    cniArgs,
    capabilityArgs,
  };
}

/** The container-side MAC, after checking the chain gave the container Docker's addresses. */
export function verifyResult(result: Result, ifName: string, wanted: Array<string | undefined>, networkName: string): { mac?: string } {
  const iface = containerInterface(result, ifName);
  const index = iface ? result.interfaces!.indexOf(iface) : -1;
  const ips = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === index);
  for (const want of wanted) {
    if (!want) continue;
    const got = ips.find((ip) => sameIP(ip.address, want));
    if (!got) {
      const had = ips.map((ip) => ip.address).join(", ") || "no address";
      throw new TranslationError(
        `CNI network "${networkName}" gave the container ${had}, but Docker assigned ${want}: the conflist's IPAM must honour the requested address (host-local does, via the "ips" capability and IP= in CNI_ARGS) and use the same subnet as the Docker network`,
      );
    }
    if (parseCidr(got.address)?.prefix !== parseCidr(want)?.prefix) {
      throw new TranslationError(`CNI network "${networkName}" gave the container ${got.address}, but Docker assigned ${want}: the prefix lengths differ; create the Docker network with the conflist's subnet`);
    }
  }
  return { mac: iface?.mac?.toLowerCase() };
}

/**
 * Join reply: the interface by its temporary host-side name for Docker to move in and name
 * eth<N>, the CNI routes as Gateway/StaticRoutes, and no docker_gwbridge behind CNI's back.
 */
export function joinResponse(ep: Pick<EndpointRecord, "tmpName" | "result" | "ifName" | "routes" | "address" | "addressIPv6">): api.JoinResponse {
  const reply: api.JoinResponse = { InterfaceName: { SrcName: ep.tmpName, DstPrefix: "eth" }, DisableGatewayService: true };
  if (!ep.routes) return reply; // read at the hand-out: a record without them never had one
  // What the chain really left in the namespace.
  const docker = [ep.address, ep.addressIPv6].filter((a): a is string => !!a);
  const r = joinRoutes(ep.routes, docker.length ? docker : ep.result ? containerAddresses(ep.result, ep.ifName) : []);
  if (r.gateway) reply.Gateway = r.gateway;
  if (r.gatewayIPv6) reply.GatewayIPv6 = r.gatewayIPv6;
  if (r.staticRoutes.length) reply.StaticRoutes = r.staticRoutes;
  return reply;
}
