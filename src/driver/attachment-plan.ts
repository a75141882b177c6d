// CreateEndpoint's plan: names and CNI inputs for one endpoint (pure).
import type { CniArg } from "../cni/args.js";
import type { PortMapping } from "../cni/schemas.js";
import type * as api from "../libnetwork/schemas.js";
import { canonicalIP } from "../util/ip.js";
import { endpointMac } from "./endpoint-mac.js";
import { endpointNames, shortId } from "./names-from-ids.js";

export interface AttachmentPlan {
  cniContainerId: string;
  ifName: string;
  stagingNetns: string;
  tmpName: string;
  cniArgs: CniArg[];
  capabilityArgs: Record<string, unknown>;
}

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
