// Wire formats of the CNI spec (1.0.0, with the 0.3.x/0.4.0 result shape accepted) as zod
// schemas; every CNI type in this project is inferred from here.
import { z } from "zod";

/** Network and container id syntax from the spec. */
export const CNI_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const Capabilities = z.record(z.string(), z.boolean());

export const PluginConf = z.looseObject({
  type: z.string().min(1, "must name the plugin binary").refine((t) => !t.includes("/"), "must be a plugin name without '/'"),
  capabilities: Capabilities.optional(),
  ipam: z.looseObject({ type: z.string().min(1) }).optional(),
  runtimeConfig: z.record(z.string(), z.unknown()).optional(),
});
export type PluginConf = z.infer<typeof PluginConf>;

const version = z.string().regex(/^\d+\.\d+\.\d+$/, "must be a version like 1.0.0");

// libcni 1.2 takes a list with "cniVersions" and no "cniVersion" (spec 1.1.0).
export const ConfList = z
  .looseObject({
    cniVersion: version.optional(),
    cniVersions: z.array(version).optional(),
    name: z.string().regex(CNI_NAME_RE, "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
    disableCheck: z.boolean().optional(),
    disableGC: z.boolean().optional(),
    plugins: z.array(PluginConf).min(1, "must list at least one plugin"),
  })
  .refine((l) => l.cniVersion !== undefined || (l.cniVersions?.length ?? 0) > 0, { message: 'must have "cniVersion" (or a non-empty "cniVersions")', path: ["cniVersion"] });
export type ConfList = z.infer<typeof ConfList>;

/** A single-plugin .conf/.json file. */
export const SingleConf = PluginConf.extend({
  cniVersion: version,
  name: z.string().regex(CNI_NAME_RE, "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
});

const ResultInterface = z.looseObject({
  name: z.string(),
  mac: z.string().optional(),
  mtu: z.number().optional(),
  sandbox: z.string().optional(),
});
const ResultIP = z.looseObject({
  address: z.string(),
  gateway: z.string().optional(),
  interface: z.number().int().nonnegative().optional(),
  version: z.string().optional(), // 0.3.x/0.4.0 only
});
const ResultRoute = z.looseObject({ dst: z.string(), gw: z.string().optional() });
const ResultDNS = z.looseObject({
  nameservers: z.array(z.string()).optional(),
  domain: z.string().optional(),
  search: z.array(z.string()).optional(),
  options: z.array(z.string()).optional(),
});
export const Result = z.looseObject({
  cniVersion: z.string(),
  interfaces: z.array(ResultInterface).optional(),
  ips: z.array(ResultIP).optional(),
  routes: z.array(ResultRoute).optional(),
  dns: ResultDNS.optional(),
});
export type Result = z.infer<typeof Result>;

export const ErrorResult = z.looseObject({
  cniVersion: z.string().optional(),
  code: z.number().int(),
  msg: z.string(),
  details: z.string().optional(),
});
export type ErrorResult = z.infer<typeof ErrorResult>;

export const VersionResult = z.looseObject({
  cniVersion: z.string(),
  supportedVersions: z.array(z.string()),
});

/** libcni's on-disk result cache (pkg libcni, cachedInfo), so `cnitool` and friends can read ours. */
export const CacheEntry = z.object({
  kind: z.literal("cniCacheV1"),
  containerId: z.string(),
  config: z.string(), // base64 of the network list bytes
  ifName: z.string(),
  networkName: z.string(),
  netns: z.string().optional(),
  cniArgs: z.array(z.tuple([z.string(), z.string()])).optional(),
  capabilityArgs: z.record(z.string(), z.unknown()).optional(),
  result: z.record(z.string(), z.unknown()),
});
export type CacheEntry = z.infer<typeof CacheEntry>;

/** One entry of the portMappings capability (portmap's runtimeConfig), as kubelet sends it. */
export const PortMapping = z.object({
  hostPort: z.number().int(),
  containerPort: z.number().int(),
  protocol: z.enum(["tcp", "udp", "sctp"]),
  hostIP: z.string().optional(),
});
export type PortMapping = z.infer<typeof PortMapping>;
