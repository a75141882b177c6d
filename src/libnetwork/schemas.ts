// The libnetwork remote driver wire format (moby libnetwork drivers/remote/api), as Docker
// 20.10+ sends it. Docker matches field names case-insensitively and ignores unknown ones; we
// accept Docker's exact casing and pass unknown fields through.
import { z } from "zod";

export const PLUGIN_CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

const id = z.string().regex(/^[0-9a-f]{64}$/, "must be a 64-character hex id as Docker sends it");
/** Swarm's ids (swarmkit identity.NewID): 25 characters of base 36, lowercase. */
const SWARM_ID = /^[0-9a-z]{25}$/;
/** A network is a local one (64 hex) or, on a swarm node, a swarm network (25 base-36 characters). */
const networkId = z
  .string()
  .refine((v) => /^[0-9a-f]{64}$/.test(v) || SWARM_ID.test(v), "must be a 64-character hex id or a 25-character swarm network id as Docker sends it");

/** Is this network id one of swarm's (a network created with --scope swarm on a manager)? */
export const isSwarmNetworkId = (networkId: string) => SWARM_ID.test(networkId);
const cidr = z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, "must be an address with prefix length, like 10.1.0.0/24");
const options = z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? {});

const IPAMData = z.looseObject({
  AddressSpace: z.string().optional(),
  Pool: cidr,
  Gateway: cidr.optional(),
  AuxAddresses: z.record(z.string(), cidr).nullish(),
});
type IPAMData = z.infer<typeof IPAMData>;

export const CreateNetworkRequest = z.looseObject({
  NetworkID: networkId,
  Options: options,
  IPv4Data: z.array(IPAMData).nullish().transform((v) => v ?? []),
  IPv6Data: z.array(IPAMData).nullish().transform((v) => v ?? []),
});
export type CreateNetworkRequest = z.infer<typeof CreateNetworkRequest>;

export const NetworkRequest = z.looseObject({ NetworkID: networkId });
export const EndpointRequest = z.looseObject({ NetworkID: networkId, EndpointID: id });
export type EndpointRequest = z.infer<typeof EndpointRequest>;

const EndpointInterface = z.looseObject({
  Address: z.union([cidr, z.literal("")]).optional(),
  AddressIPv6: z.union([cidr, z.literal("")]).optional(),
  MacAddress: z.union([z.string().regex(/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/, "must be a MAC like 02:42:ac:11:00:02"), z.literal("")]).optional(),
});

export const CreateEndpointRequest = z.looseObject({
  NetworkID: networkId,
  EndpointID: id,
  Interface: EndpointInterface.nullish(),
  Options: options,
});
export type CreateEndpointRequest = z.infer<typeof CreateEndpointRequest>;

export const JoinRequest = z.looseObject({
  NetworkID: networkId,
  EndpointID: id,
  SandboxKey: z.string().min(1, "must be the container's network namespace path"),
  Options: options,
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const ProgramExternalConnectivityRequest = z.looseObject({ NetworkID: networkId, EndpointID: id, Options: options });

/**
 * DiscoverNew / DiscoverDelete (drivers/remote/api DiscoveryNotification). Docker forwards only
 * node discovery (type 1, {Address, BindAddress, Self}) and only to a driver whose connectivity
 * scope is global, on a swarm node.
 */
export const DiscoveryNotification = z.looseObject({
  DiscoveryType: z.number().int(),
  DiscoveryData: z.unknown().optional(),
});

/** Items of com.docker.network.portmap (libnetwork types.PortBinding). Proto: 6 tcp, 17 udp, 132 sctp. */
const PortBinding = z.looseObject({
  Proto: z.number().int(),
  IP: z.string().optional(),
  Port: z.number().int().min(0).max(65535),
  HostIP: z.string().optional(),
  HostPort: z.number().int().min(0).max(65535),
  HostPortEnd: z.number().int().min(0).max(65535).optional(),
});
type PortBinding = z.infer<typeof PortBinding>;
export const PortBindings = z.array(PortBinding).nullish().transform((v) => v ?? []);

// Replies.
export const CreateEndpointResponse = z.object({
  Interface: z.object({ Address: z.string().optional(), AddressIPv6: z.string().optional(), MacAddress: z.string().optional() }).optional(),
});
export type CreateEndpointResponse = z.infer<typeof CreateEndpointResponse>;

export const StaticRoute = z.object({
  Destination: cidr,
  RouteType: z.union([z.literal(0), z.literal(1)]), // 0 = via NextHop, 1 = connected
  NextHop: z.string().optional(),
});
export type StaticRoute = z.infer<typeof StaticRoute>;

export const JoinResponse = z.object({
  InterfaceName: z.object({ SrcName: z.string(), DstPrefix: z.string() }).optional(),
  Gateway: z.string().optional(),
  GatewayIPv6: z.string().optional(),
  StaticRoutes: z.array(StaticRoute).optional(),
  DisableGatewayService: z.boolean().optional(),
});
export type JoinResponse = z.infer<typeof JoinResponse>;

/** Well-known option keys Docker puts in the Options maps. */
export const OPT = {
  generic: "com.docker.network.generic",
  enableIPv6: "com.docker.network.enable_ipv6",
  internal: "com.docker.network.internal",
  portmap: "com.docker.network.portmap",
  exposedPorts: "com.docker.network.endpoint.exposedports",
  macAddress: "com.docker.network.endpoint.macaddress",
} as const;

/** cni-shim's own `-o` options (docker network create -o key=value). */
export const SHIM_OPT = {
  network: "cni.network",
  bridge: "cni.bridge",
  mtu: "cni.mtu",
} as const;
