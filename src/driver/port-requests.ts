// CreateEndpoint's published ports, as what to publish (pure).
import type { PortMapping } from "../cni/schemas.js";
import * as api from "../libnetwork/schemas.js";
import { TranslationError } from "./translation-error.js";

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
