// Join's reply to Docker from an endpoint record (pure).
import { containerAddresses } from "../cni/result.js";
import type * as api from "../libnetwork/schemas.js";
import { joinRoutes } from "./routes.js";
import type { EndpointRecord } from "./state.js";

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
