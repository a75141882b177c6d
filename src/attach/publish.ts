import type { PortMapping } from "../cni/schemas.js";

/** `-p [hostIP:]hostPort:containerPort[/tcp|udp|sctp]`, as docker run spells it. */
export function parsePublish(spec: string): PortMapping {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(spec);
  const hostPort = Number(m?.[2]);
  const containerPort = Number(m?.[3]);
  if (!m || !hostPort || hostPort > 65535 || !containerPort || containerPort > 65535) {
    throw new Error(`cannot read -p "${spec}": use hostPort:containerPort[/proto] or hostIP:hostPort:containerPort[/proto], e.g. 8080:80`);
  }
  const hostIP = m[1]?.replace(/^\[|\]$/g, "");
  return { hostPort, containerPort, protocol: (m[4] as PortMapping["protocol"]) ?? "tcp", ...(hostIP ? { hostIP } : {}) };
}
