// Choosing host ports for `-p 80` (host port 0) and `-p 8000-8010:80` (a range), which Docker
// leaves to the driver: the first port in range that we can bind right now.
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import type { PortRequest } from "./port-requests.js";
import type { PortMapping } from "../cni/schemas.js";

/** Can we bind this port right now? Resolves with the port bound (useful for port 0). */
export function canBind(protocol: "tcp" | "udp", port: number, host?: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    if (protocol === "tcp") {
      const srv = createServer();
      srv.once("error", () => resolve(undefined));
      srv.listen({ port, host: host ?? "0.0.0.0", exclusive: true }, () => {
        const got = (srv.address() as { port: number }).port;
        srv.close(() => resolve(got));
      });
    } else {
      const sock = createSocket(host?.includes(":") ? "udp6" : "udp4");
      sock.once("error", () => resolve(undefined));
      sock.bind({ port, address: host, exclusive: true }, () => {
        const got = sock.address().port;
        sock.close(() => resolve(got));
      });
    }
  });
}

export async function choosePorts(requests: PortRequest[], taken: Set<string> = new Set()): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  for (const r of requests) {
    const mapping = (hostPort: number): PortMapping => ({ hostPort, containerPort: r.containerPort, protocol: r.protocol, ...(r.hostIP ? { hostIP: r.hostIP } : {}) });
    if (r.hostPortStart !== 0 && r.hostPortStart === r.hostPortEnd) {
      out.push(mapping(r.hostPortStart)); // a fixed port: portmap reports a conflict itself
      continue;
    }
    if (r.protocol === "sctp") throw new Error(`cannot choose a free sctp host port for container port ${r.containerPort}: publish it with an explicit host port`);
    let chosen: number | undefined;
    if (r.hostPortStart === 0) {
      for (let i = 0; i < 20 && chosen === undefined; i++) {
        const p = await canBind(r.protocol, 0, r.hostIP);
        if (p !== undefined && !taken.has(`${r.protocol}/${p}`)) chosen = p;
      }
    } else {
      for (let p = r.hostPortStart; p <= r.hostPortEnd && chosen === undefined; p++) {
        if (!taken.has(`${r.protocol}/${p}`) && (await canBind(r.protocol, p, r.hostIP)) !== undefined) chosen = p;
      }
    }
    if (chosen === undefined) {
      throw new Error(`no free ${r.protocol} host port${r.hostPortStart ? ` in ${r.hostPortStart}-${r.hostPortEnd}` : ""} for container port ${r.containerPort}: free one or publish another range`);
    }
    taken.add(`${r.protocol}/${chosen}`);
    out.push(mapping(chosen));
  }
  return out;
}
