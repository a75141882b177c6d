// What live Docker endpoints and running containers hold on this host, for the leak checks of the
// soak and the e2e tests. They share the host with the user's own networks and containers (the
// README quick start), and a dockerd crash restarts the user's --restart always containers with
// new endpoints, veths, addresses and chains: what something live holds is never a leak of the
// run that checks, which has removed its own containers by the time it looks.

/** Runs a command and gives its stdout, or "" when it fails. */
export type Exec = (file: string, args: string[]) => Promise<string>;

export interface LiveOwners {
  /** Endpoint ids Docker knows (cni-shim's CNI container id is the endpoint id). */
  endpointIds: Set<string>;
  /** Host ifindexes of veth peers inside running containers. */
  vethPeers: Set<number>;
  /** The addresses of those endpoints (no prefix length), which the firewall plugin's rules name. */
  addresses: Set<string>;
}

export async function liveOwners(exec: Exec, dockerCli: string): Promise<LiveOwners> {
  const endpointIds = new Set<string>();
  const vethPeers = new Set<number>();
  const addresses = new Set<string>();
  const nets = (await exec(dockerCli, ["network", "ls", "-q"])).split("\n").filter(Boolean);
  if (nets.length) {
    const format = "{{range .Containers}}{{.EndpointID}} {{.IPv4Address}} {{.IPv6Address}}\n{{end}}";
    for (const line of (await exec(dockerCli, ["network", "inspect", "--format", format, ...nets])).split("\n")) {
      const [id, ...addrs] = line.trim().split(/\s+/);
      if (!id) continue;
      endpointIds.add(id);
      for (const a of addrs) if (a) addresses.add(a.split("/")[0]!);
    }
  }
  const running = (await exec(dockerCli, ["ps", "-q"])).split("\n").filter(Boolean);
  const pids = running.length ? (await exec(dockerCli, ["inspect", "--format", "{{.State.Pid}}", ...running])).split("\n").map(Number).filter((p) => p > 0) : [];
  for (const pid of pids) {
    const links = JSON.parse((await exec("nsenter", ["-t", String(pid), "-n", "ip", "-j", "link", "show"])) || "[]") as Array<{ link_index?: number }>;
    for (const l of links) if (l.link_index) vethPeers.add(l.link_index);
  }
  return { endpointIds, vethPeers, addresses };
}

/** Does a namespace name carry a live endpoint's short id (cni-shim-<12 hex>)? */
export const netnsOfLive = (name: string, live: LiveOwners) => [...live.endpointIds].some((id) => name.includes(id.slice(0, 12)));

/** The CNI container ids named by an iptables-save line's comment (`id: "<id>"`). */
export const ruleOwner = (line: string) => /id: \\?"([0-9a-f]{12,})\\?"/.exec(line)?.[1];

/** Is an iptables-save rule held by something live: its id comment, or a /32 or /128 of a live address (the firewall plugin's per-address rules)? */
export function ruleOfLive(line: string, live: LiveOwners): boolean {
  const id = ruleOwner(line);
  if (id) return live.endpointIds.has(id);
  return [...line.matchAll(/ -[sd] ([0-9a-f.:]+)\/(32|128)\b/g)].some((m) => live.addresses.has(m[1]!));
}

/** Per-attachment chains (bridge's ipMasq CNI-<hex>, portmap's CNI-DN-<hex>) with the ids the rules jumping to them name. */
export function chainsWithOwners(iptablesSave: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  const lines = iptablesSave.split("\n");
  for (const l of lines) {
    const c = l.startsWith(":") ? l.slice(1).split(" ")[0]! : "";
    if (/^CNI-(DN-)?[0-9a-f]{12,}$/.test(c)) chains.set(c, []);
  }
  for (const l of lines) {
    const target = / -j (CNI-(DN-)?[0-9a-f]{12,})\b/.exec(l)?.[1];
    const id = ruleOwner(l);
    if (target && id && chains.has(target)) chains.get(target)!.push(id);
  }
  return chains;
}

/** The engines' and swarm nodes' namespaces of scripts/engine.sh and scripts/swarm.sh (another run's may come and go): never a plugin's. */
export const HARNESS_NETNS = /^(cni-shim-eng-|cs-sw-)/;
