// From the facts of the three columns to the compared rows: what to show, which rows are parity
// rows (cni-shim and attach must agree), which differ and why. Pure: no I/O.
import { canonicalIP, cidrRange, subnetOf } from "../util/ip.js";
import { COLUMN_IDS, type Cell, type ColumnFacts, type Link, type Report, type Route, type Row, type Section } from "./model.js";
import { groupRules, parseRuleLine, servedBy, type IptRule, type RuleContext } from "./rules.js";
import { boundaries, forwarding } from "./forwarding.js";

export type Columns = readonly [ColumnFacts, ColumnFacts, ColumnFacts];

interface RowSpec {
  key: string;
  section: Section;
  label: string;
  parity: boolean;
  get: (f: ColumnFacts) => Cell;
  /** One line on why the values differ; called only when they do. */
  explain?: (values: readonly [Cell, Cell, Cell]) => string | undefined;
}

const NONE = "(none)";
const lines = (xs: string[]) => (xs.length ? xs.join("\n") : NONE);

/** The container's interface on the column's network (eth0 for all three). */
function mainLink(f: ColumnFacts): Link | undefined {
  return f.inside.links.find((l) => l.name === "eth0") ?? f.inside.links.find((l) => l.peerIndex !== undefined) ?? f.inside.links.find((l) => l.name !== "lo");
}

export function mainIPv4(f: ColumnFacts): string | undefined {
  return mainLink(f)?.addrs.find((a) => a.family === "inet")?.cidr;
}

function ruleContext(f: ColumnFacts): RuleContext | undefined {
  const ip = mainIPv4(f);
  if (!ip) return undefined;
  const moreIps = (mainLink(f)?.addrs ?? [])
    .filter((a) => a.family === "inet" && a.cidr !== ip)
    .map((a) => canonicalIP(a.cidr)!);
  return { ip: canonicalIP(ip)!, moreIps, subnet: f.network.subnet, gateway: f.network.gateway, bridge: f.host.bridge?.name ?? f.network.bridge, hostPort: f.publish.hostPort, cniContainerId: f.cniContainerId };
}

function rules(f: ColumnFacts): IptRule[] {
  return f.host.rules.map(parseRuleLine).filter((r): r is IptRule => r !== undefined);
}

function ruleGroup(f: ColumnFacts, group: "masquerade" | "publish" | "filter"): Cell {
  const ctx = ruleContext(f);
  if (!ctx) return null;
  return lines(groupRules(rules(f), ctx)[group]);
}

function routeText(r: Route, ownIP: string | undefined): string {
  const parts = [r.dst];
  if (r.gateway) parts.push(`via ${r.gateway}`);
  if (r.dev) parts.push(`dev ${r.dev}`);
  if (r.protocol && r.protocol !== "boot") parts.push(`proto ${r.protocol}`);
  if (r.scope && r.scope !== "global") parts.push(`scope ${r.scope}`);
  // The source is the container's own address, which differs per container by design.
  if (r.prefsrc) parts.push(`src ${ownIP && canonicalIP(r.prefsrc) === canonicalIP(ownIP) ? "<eth0 address>" : r.prefsrc}`);
  if (r.metric !== undefined) parts.push(`metric ${r.metric}`);
  return parts.join(" ");
}

/** The IPv4 tables the container's own traffic consults, in policy-rule order. */
function tablesInOrder(f: ColumnFacts): Route[][] {
  if (!f.inside.rules4?.length) return [f.inside.routes4];
  const own = mainIPv4(f)?.split("/")[0];
  const ownN = own ? cidrRange(own) : undefined;
  const applies = (src?: string) => {
    if (!src) return true;
    const r = cidrRange(src);
    return !!(r && ownN && r.family === 4 && r.first <= ownN.first && ownN.first <= r.last);
  };
  return [...f.inside.rules4]
    .sort((a, b) => a.priority - b.priority)
    .filter((r) => r.table !== "local" && applies(r.src))
    .map((r) => (r.table === "main" ? f.inside.routes4 : (f.inside.tables4?.[r.table] ?? [])));
}

function rulesText(f: ColumnFacts): Cell {
  const own = mainIPv4(f)?.split("/")[0];
  if (!f.inside.rules4) return null;
  return lines(f.inside.rules4.map((r) => `${r.priority}: from ${r.src ? (own && canonicalIP(r.src) === own ? "<eth0 address>" : r.src) : "all"} lookup ${r.table}`));
}

const isDefault = (r: Route) => r.dst === "default" || r.dst === "0.0.0.0/0" || r.dst === "::/0";

function dockerPorts(f: ColumnFacts): Cell {
  const out: string[] = [];
  for (const [port, bindings] of Object.entries(f.docker.ports).sort()) {
    if (!bindings?.length) out.push(`${port} (no host binding)`);
    else for (const b of bindings) out.push(`${port} -> ${b.HostIp.includes(":") ? `[${b.HostIp}]` : b.HostIp}:${b.HostPort}`);
  }
  return lines(out);
}

/** Does what `docker inspect` says match what is really on eth0? */
export function inspectMatches(f: ColumnFacts): string {
  if (!f.docker.ip) return "n/a: Docker records no address";
  const link = mainLink(f);
  const problems: string[] = [];
  const want = `${f.docker.ip}/${f.docker.prefixLen}`;
  if (!link?.addrs.some((a) => a.cidr === want)) problems.push(`address ${want} not on eth0`);
  if (f.docker.mac && link?.mac?.toLowerCase() !== f.docker.mac.toLowerCase()) problems.push(`MAC ${f.docker.mac} vs ${link?.mac ?? "none"}`);
  const gw = f.inside.routes4.find(isDefault)?.gateway;
  if ((f.docker.gateway || undefined) !== gw) problems.push(`gateway ${f.docker.gateway || "none"} vs ${gw ?? "none"}`);
  return problems.length ? `no: ${problems.join("; ")}` : "yes";
}

function reach(key: string): (f: ColumnFacts) => Cell {
  return (f) => {
    const r = f.reach[key];
    return r ? (r.ok ? "ok" : "failed") : null;
  };
}

function reachDetails(cols: Columns, key: string): string | undefined {
  const failed = cols.filter((c) => c.reach[key] && !c.reach[key].ok).map((c) => `${c.column}: ${c.reach[key]!.detail}`);
  return failed.length ? `failed in ${failed.join("; ")}` : undefined;
}

const SYSCTL_NOTES: Record<string, string> = {
  "net.ipv4.ip_unprivileged_port_start": "Docker sets it to 0 in every container it starts (also --network none); CNI does not touch it",
  "net.ipv4.ping_group_range": "Docker opens unprivileged ping to all groups in its containers; CNI does not touch it",
  "net.ipv6.conf.all.disable_ipv6": "Docker disables IPv6 in containers on networks without IPv6; a CNI chain without an IPv6 range leaves the kernel default",
  "net.ipv6.conf.eth0.disable_ipv6": "Docker disables IPv6 on interfaces of networks without IPv6; a CNI chain without an IPv6 range leaves the kernel default",
};

/**
 * inSandbox: cni-shim ran the chain in the container's own namespace (Docker 28+), so what a
 * chain sets namespace-wide (sysctls, policy rules) must be what the kubelet way gives: parity.
 */
export interface RowOptions {
  inSandbox?: boolean;
}

// eslint-disable-next-line max-lines-per-function -- a table literal: compare's rows, one entry each
function specs(cols: Columns, opts: RowOptions): RowSpec[] {
  // Cut every column's forwarding at the same places (see forwarding.ts).
  const points4 = boundaries(cols.flatMap((c) => tablesInOrder(c)), 4);
  const points6 = boundaries(cols.map((c) => c.inside.routes6), 6);
  const sysctlKeys = [...new Set(cols.flatMap((c) => Object.keys(c.inside.sysctls)))].sort();
  const reachSpec = (key: string, label: string): RowSpec => ({ key: `reach.${key}`, section: "reach", label, parity: true, get: reach(key), explain: () => reachDetails(cols, key) });
  return [
    // ---- inside ------------------------------------------------------------------------------
    { key: "inside.interfaces", section: "inside", label: "interfaces", parity: true, get: (f) => f.inside.links.map((l) => l.name).join(", ") },
    {
      key: "inside.lo",
      section: "inside",
      label: "lo",
      parity: true,
      get: (f) => {
        const lo = f.inside.links.find((l) => l.name === "lo");
        return lo ? `${lo.flags.includes("UP") ? "up" : "DOWN"}, ${lo.addrs.map((a) => a.cidr).join(" ") || "no address"}` : "missing";
      },
    },
    { key: "inside.eth0.flags", section: "inside", label: "eth0 flags", parity: true, get: (f) => mainLink(f)?.flags.join(",") ?? null },
    { key: "inside.eth0.mtu", section: "inside", label: "eth0 MTU", parity: true, get: (f) => (mainLink(f) ? String(mainLink(f)!.mtu) : null) },
    {
      key: "inside.eth0.mac",
      section: "inside",
      label: "eth0 MAC",
      parity: false,
      get: (f) => mainLink(f)?.mac ?? null,
      explain: (v) => (v[0]?.startsWith("02:42:") ? "per container; Docker's bridge derives the MAC from the IP (02:42:...), the CNI bridge plugin keeps the kernel's random one" : "per container"),
    },
    { key: "inside.eth0.addrs", section: "inside", label: "eth0 addresses", parity: false, get: (f) => lines(mainLink(f)?.addrs.map((a) => a.cidr) ?? []), explain: () => "per container: each gets its own address" },
    {
      key: "inside.eth0.subnet",
      section: "inside",
      label: "eth0 IPv4 subnet",
      parity: true,
      get: (f) => lines([...new Set(mainLink(f)?.addrs.filter((a) => a.family === "inet").map((a) => subnetOf(a.cidr)!) ?? [])]),
      explain: (v) => (v[0] !== v[1] ? "Docker's bridge network takes a pool from Docker's default address pools; both CNI columns use the conflist's host-local range" : undefined),
    },
    {
      key: "inside.route.default",
      section: "inside",
      label: "default route",
      parity: true,
      get: (f) => lines(f.inside.routes4.filter(isDefault).map((r) => routeText(r, mainIPv4(f)))),
      explain: (v) => (v[0] !== v[1] ? "the gateway is the bridge address of each network" : undefined),
    },
    {
      key: "inside.routes",
      section: "inside",
      label: "IPv4 forwarding (where each destination goes)",
      parity: true,
      get: (f) => lines(forwarding(tablesInOrder(f), 4, points4)),
      explain: (v) => (v[0] !== v[1] ? "the connected route follows each network's subnet" : undefined),
    },
    {
      key: "inside.routes.table",
      section: "inside",
      label: "other IPv4 routes",
      parity: false,
      get: (f) => lines(f.inside.routes4.filter((r) => !isDefault(r)).map((r) => routeText(r, mainIPv4(f)))),
      explain: (v) =>
        v[1] !== v[2]
          ? "Docker (<= 27) configures the interface itself: the kernel's connected route for the address always comes back, routes are added without source hints, and a subnet the chain routes via the gateway (ptp) gets two halves that win by longest prefix; the forwarding row above is the parity check"
          : v[0] !== v[1]
            ? "the connected route follows each network's subnet"
            : undefined,
    },
    {
      key: "inside.rules",
      section: "inside",
      label: "IPv4 policy rules",
      parity: !!opts.inSandbox,
      get: rulesText,
      explain: (v) =>
        v[1] !== v[2]
          ? "a chain's policy rules (sbr) stay in the staging namespace: Docker's Join installs routes in the main table only, so cni-shim puts the chain's routes there and the container's traffic from its address goes the same way (forwarding row); applied the kubelet way, sbr leaves main without the interface's routes, so an unbound socket (no source address chosen yet) finds no route there, and a lone sbr interface cannot reach its peers or gateway"
          : undefined,
    },
    { key: "inside.forwarding6", section: "inside", label: "IPv6 forwarding (global)", parity: true, get: (f) => lines(forwarding([f.inside.routes6], 6, points6)) },
    { key: "inside.routes6", section: "inside", label: "IPv6 routes", parity: false, get: (f) => lines(f.inside.routes6.map((r) => routeText(r, undefined))) },
    { key: "inside.eth0.kind", section: "inside", label: "eth0 type", parity: true, get: (f) => mainLink(f)?.kind ?? (mainLink(f) ? "(plain)" : null) },
    {
      key: "inside.resolv",
      section: "inside",
      label: "/etc/resolv.conf",
      parity: false,
      get: (f) => lines(f.inside.resolvConf.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))),
      explain: () =>
        "Docker writes resolv.conf: its embedded DNS 127.0.0.11 on user-defined networks (also cni-shim's), the host's resolvers with --network none; CNI never writes it (a kubelet does, from cluster DNS)",
    },
    {
      key: "inside.hosts",
      section: "inside",
      label: "/etc/hosts",
      parity: false,
      get: (f) => lines(f.inside.hosts.split("\n").map((l) => l.trim().replace(/\s+/g, " ")).filter((l) => l && !l.startsWith("#"))),
      explain: () => "Docker adds the container's address and hostname for networks it manages; with --network none + CNI no one does (a kubelet manages /etc/hosts itself)",
    },
    ...sysctlKeys.map(
      (k): RowSpec => ({
        key: `inside.sysctl.${k}`,
        section: "inside",
        label: k,
        parity: !!opts.inSandbox,
        get: (f) => f.inside.sysctls[k] ?? "(absent)",
        explain: (v) =>
          v[1] !== v[2]
            ? "a chain's namespace-wide setting (tuning's sysctl) is applied in cni-shim's staging namespace and does not follow the interface into the container: pass it with docker run --sysctl"
            : (SYSCTL_NOTES[k] ?? "set differently by Docker and by the CNI plugins"),
      }),
    ),
    // ---- host side -----------------------------------------------------------------------------
    {
      key: "host.cni",
      section: "host",
      label: "CNI network list",
      parity: true,
      get: (f) => (f.cni ? `${f.cni.network} (sha256 ${f.cni.fingerprint})` : null),
      explain: () => "Docker's bridge driver runs no CNI; cni-shim and attach must run the same list",
    },
    { key: "host.veth", section: "host", label: "host veth peer", parity: false, get: (f) => (f.host.veth ? `${f.host.veth.name} (ifindex ${f.host.veth.ifindex})` : NONE), explain: () => "per container: each has its own veth pair" },
    { key: "host.veth.mtu", section: "host", label: "host veth MTU", parity: true, get: (f) => (f.host.veth ? String(f.host.veth.mtu) : NONE) },
    {
      key: "host.bridge",
      section: "host",
      label: "bridge (veth master)",
      parity: true,
      get: (f) => (f.host.veth?.master ? `${f.host.veth.master}${f.host.bridge ? ` ${f.host.bridge.addrs.join(" ")} mtu ${f.host.bridge.mtu}` : ""}` : "not on a bridge"),
      explain: (v) => (v[0] !== v[1] ? "Docker's bridge driver creates br-<network id>; the CNI bridge plugin uses the conflist's bridge, which cni-shim and attach share as a node would" : undefined),
    },
    {
      key: "host.bridge.mode",
      section: "host",
      label: "bridge promiscuous / VLAN filtering",
      parity: true,
      get: (f) => (f.host.bridge ? `promisc ${f.host.bridge.flags?.includes("PROMISC") ? "on" : "off"}, vlan_filtering ${f.host.bridge.vlanFiltering ? "on" : "off"}` : NONE),
    },
    { key: "host.veth.vlans", section: "host", label: "bridge port VLANs", parity: true, get: (f) => (f.host.veth?.vlans ? lines(f.host.veth.vlans) : null) },
    { key: "host.veth.qdisc", section: "host", label: "host veth qdiscs (shaping)", parity: true, get: (f) => (f.host.veth?.qdiscs ? lines(f.host.veth.qdiscs) : null) },
    {
      key: "host.hairpin",
      section: "host",
      label: "hairpin on bridge port",
      parity: true,
      get: (f) => (f.host.veth ? (f.host.veth.hairpin ? "on" : "off") : null),
      explain: (v) => (v[0] !== v[1] ? "Docker leaves hairpin off while docker-proxy serves a container's own published port; CNI bridge hairpinMode turns it on for the DNAT'ed packet to go back out the same port" : undefined),
    },
    {
      key: "host.nat.masquerade",
      section: "host",
      label: "NAT: masquerade",
      parity: true,
      get: (f) => ruleGroup(f, "masquerade"),
      explain: (v) => (v[0] !== v[1] ? "Docker masquerades a whole network with one POSTROUTING rule; CNI bridge ipMasq gives each container a CNI-<hash> chain (ACCEPT to its subnet, MASQUERADE the rest)" : undefined),
    },
    {
      key: "host.nat.publish",
      section: "host",
      label: "NAT: published port",
      parity: true,
      get: (f) => ruleGroup(f, "publish"),
      explain: (v) => (v[0] !== v[1] ? "Docker DNATs in its DOCKER chain; CNI portmap jumps from CNI-HOSTPORT-DNAT to a CNI-DN-<hash> chain per container (marking hairpin and localhost traffic for SNAT)" : undefined),
    },
    {
      key: "host.filter",
      section: "host",
      label: "filter: forwarding",
      parity: true,
      get: (f) => ruleGroup(f, "filter"),
      explain: (v) => (v[0] !== v[1] ? "Docker's forward rules are per network (FORWARD/DOCKER/DOCKER-ISOLATION on its bridge); the CNI firewall plugin adds per-container ACCEPT rules to CNI-FORWARD" : undefined),
    },
    {
      key: "host.served",
      section: "host",
      label: "published port served by",
      parity: true,
      get: (f) => servedBy(rules(f), f.host.listeners),
      explain: (v) => (v[0] !== v[1] ? "Docker's bridge publishes with DNAT plus a docker-proxy process (it serves 127.0.0.1 and hairpin); CNI portmap uses DNAT only, with SNAT for localhost, and no process" : undefined),
    },
    // ---- Docker's view -------------------------------------------------------------------------
    { key: "docker.network", section: "docker", label: "network (docker inspect)", parity: false, get: (f) => f.docker.network ?? f.docker.networkMode, explain: () => "how each column joins: Docker's bridge driver, the cni-shim remote driver, or --network none" },
    {
      key: "docker.ip",
      section: "docker",
      label: "IPAddress/IPPrefixLen",
      parity: false,
      get: (f) => (f.docker.ip ? `${f.docker.ip}/${f.docker.prefixLen}` : NONE),
      explain: (v) => (v[2] === NONE ? "--network none: Docker assigned nothing and docker inspect shows no address; the address exists only in CNI's result (and host-local's store)" : "per container"),
    },
    { key: "docker.mac", section: "docker", label: "MacAddress", parity: false, get: (f) => f.docker.mac || NONE, explain: (v) => (v[2] === NONE ? "--network none: Docker does not know the CNI interface's MAC" : "per container") },
    { key: "docker.gateway", section: "docker", label: "Gateway", parity: false, get: (f) => f.docker.gateway || NONE, explain: (v) => (v[2] === NONE ? "--network none: Docker knows no gateway; the default route comes from CNI" : undefined) },
    {
      key: "docker.ports",
      section: "docker",
      label: "Ports (docker port)",
      parity: false,
      get: dockerPorts,
      explain: () => "only Docker's own bridge driver reports host bindings (what `docker port` prints); a remote driver's ports are published by CNI portmap and Docker shows none, and with --network none Docker knows nothing",
    },
    {
      key: "docker.matches",
      section: "docker",
      label: "inspect matches namespace",
      parity: false,
      get: inspectMatches,
      explain: (v) => (v[2]?.startsWith("n/a") ? "tools reading docker inspect see nothing for the kubelet-style attachment; cni-shim makes Docker record the CNI address, MAC and gateway" : undefined),
    },
    { key: "docker.gwbridge", section: "docker", label: "on docker_gwbridge", parity: false, get: (f) => (f.docker.gwbridge ? "yes" : "no"), explain: () => "Docker attaches containers to docker_gwbridge when a network gives them no default gateway" },
    // ---- reachability --------------------------------------------------------------------------
    reachSpec("peerPing", "peer -> probe: ping"),
    reachSpec("peerHttp", "peer -> probe: HTTP"),
    reachSpec("hostHttp", "host -> 127.0.0.1:published"),
    reachSpec("peerPublished", "peer -> gateway:published"),
    reachSpec("hairpin", "probe -> own published (hairpin)"),
  ];
}

/** differs / parityOk from the values. */
export function finishRow(row: Omit<Row, "differs" | "parityOk">): Row {
  const [a, b, c] = row.values;
  const differs = !(a === b && b === c);
  const parityOk = !row.parity || b === c;
  return { ...row, differs, parityOk };
}

export function buildRows(cols: Columns, opts: RowOptions = {}): Row[] {
  return specs(cols, opts).map((s) => {
    const values = cols.map((c) => s.get(c)) as [Cell, Cell, Cell];
    const row = finishRow({ key: s.key, section: s.section, label: s.label, parity: s.parity, values });
    if (!row.differs) return row;
    let note = s.explain?.(values);
    if (!row.parityOk) note = `PARITY: cni-shim and attach disagree${note ? ` (${note})` : ""}`;
    return note ? { ...row, note } : row;
  });
}

export function parityOf(rows: Row[]): Report["parity"] {
  const checked = rows.filter((r) => r.parity);
  const failures = checked.filter((r) => !r.parityOk).map((r) => ({ key: r.key, label: r.label, cnishim: r.values[1], attach: r.values[2] }));
  return { ok: failures.length === 0, checked: checked.length, failures };
}

/** "label: note" for each differing row with something to say, in row order. */
export function notesOf(rows: Row[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const r of rows) {
    if (!r.differs || !r.note || r.note === "per container") continue;
    const line = `${r.label}: ${r.note}`;
    if (!seen.has(line)) {
      out.push(line);
      seen.add(line);
    }
  }
  return out;
}

export const COLUMN_TITLES: Record<(typeof COLUMN_IDS)[number], { title: string; how: string }> = {
  bridge: { title: "Docker bridge (CNM)", how: "docker run --network <new bridge network>: Docker's own bridge driver" },
  cnishim: { title: "cni-shim (CNI via Docker)", how: "docker run --network <cni-shim network>: the CNI chain run by cni-shim, a libnetwork remote driver" },
  attach: { title: "attach (kubelet way)", how: "docker run --network none + cni-shim attach: the CNI chain applied to /proc/<pid>/ns/net, as the Docker-era kubelet did" },
};
