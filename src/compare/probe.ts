// Collecting facts about a running container without relying on the image's tools: the host's
// `ip -j` run in the container's network namespace (nsenter), its files through /proc/<pid>/root,
// the host side through `ip -j`, `iptables-save` and `ss`, and Docker's view through the API.
import { readFile } from "node:fs/promises";
import type Docker from "dockerode";
import { execa } from "execa";
import type { z } from "zod";
import { inspectContainer, inspectNetwork } from "../docker/inspect.js";
import { BridgeVlans, IpLinks, IpRoutes, IpRules, TcQdiscs, type IpLink } from "../host/ip-json.js";
import { run } from "../util/command.js";
import { canonicalIP } from "../util/ip.js";
import { parseToolJson } from "../util/zod.js";
import type { Address, ColumnFacts, ColumnId, Link, Route } from "./model.js";
import { formatRule, parseIptablesSave, rulesFor } from "./rules.js";

/** Network sysctls worth a look (read in the container's namespace). */
const SYSCTLS = [
  "net.core.somaxconn",
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.rp_filter",
  "net.ipv4.conf.eth0.rp_filter",
  "net.ipv4.conf.eth0.route_localnet",
  "net.ipv4.ip_unprivileged_port_start",
  "net.ipv4.ping_group_range",
  "net.ipv6.conf.all.disable_ipv6",
  "net.ipv6.conf.eth0.disable_ipv6",
];

const nsenter = (pid: number, args: string[]) => ["--net=" + `/proc/${pid}/ns/net`, "--", ...args];

function toLink(j: IpLink): Link {
  const addrs: Address[] = (j.addr_info ?? [])
    .filter((a) => a.family === "inet" || a.family === "inet6")
    .map((a) => ({ family: a.family as Address["family"], cidr: `${a.local}/${a.prefixlen}`, ...(a.scope ? { scope: a.scope } : {}) }));
  return {
    name: j.ifname,
    ifindex: j.ifindex,
    mtu: j.mtu,
    ...(j.address ? { mac: j.address } : {}),
    flags: j.flags ?? [],
    ...(j.linkinfo?.info_kind ? { kind: j.linkinfo.info_kind } : {}),
    ...(j.link_index !== undefined ? { peerIndex: j.link_index } : {}),
    addrs,
  };
}

const toRoute = (r: Route): Route => Object.fromEntries(Object.entries({ dst: r.dst, gateway: r.gateway, dev: r.dev, protocol: r.protocol, scope: r.scope, prefsrc: r.prefsrc, metric: r.metric }).filter(([, v]) => v !== undefined)) as Route;

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    return `${fallback} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
}

/** What the container sees: links, addresses, routes, resolver and hosts files, sysctls. */
async function inside(pid: number): Promise<ColumnFacts["inside"]> {
  // Each command's JSON, checked: `ip -j -4 rule show: unexpected output: 0.table: ...`.
  const ipIn = async <T extends z.ZodType>(schema: T, args: string[]) => parseToolJson(`ip -j ${args.join(" ")}`, schema, await run("nsenter", nsenter(pid, ["ip", "-j", ...args])));
  const links = (await ipIn(IpLinks, ["-d", "addr", "show"])).map(toLink);
  const routes4 = (await ipIn(IpRoutes, ["-4", "route", "show", "table", "main"])).map(toRoute);
  const routes6 = (await ipIn(IpRoutes, ["-6", "route", "show", "table", "main"])).map(toRoute);
  // Policy routing (sbr moves a chain's routes to a table of their own, chosen by a rule).
  const rules4 = (await ipIn(IpRules, ["-4", "rule", "show"])).map((r) => ({
    priority: r.priority,
    ...(r.src && r.src !== "all" ? { src: r.srclen !== undefined ? `${r.src}/${r.srclen}` : r.src } : {}),
    table: r.table,
  }));
  const tables4: Record<string, Route[]> = {};
  for (const r of await ipIn(IpRoutes, ["-4", "route", "show", "table", "all"])) {
    if (!r.table || r.table === "main" || r.table === "local" || (r.type && r.type !== "unicast")) continue;
    (tables4[r.table] ??= []).push(toRoute(r));
  }
  // /proc/sys/net shows the namespace of the reader: read it from inside. grep -H names each
  // file and goes on past the ones that do not exist (e.g. IPv6 keys when IPv6 is off).
  const files = SYSCTLS.map((k) => `/proc/sys/${k.replace(/\./g, "/")}`);
  const res = await execa("nsenter", nsenter(pid, ["grep", "-H", ".", ...files]), { reject: false, timeout: 10_000 });
  const sysctls: Record<string, string> = {};
  for (const line of String(res.stdout).split("\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    sysctls[line.slice("/proc/sys/".length, i).replace(/\//g, ".")] = line.slice(i + 1).replace(/\s+/g, " ").trim();
  }
  return {
    links,
    routes4,
    routes6,
    rules4,
    tables4,
    resolvConf: await readOr(`/proc/${pid}/root/etc/resolv.conf`, "(unreadable)"),
    hosts: await readOr(`/proc/${pid}/root/etc/hosts`, "(unreadable)"),
    sysctls,
  };
}

/** The qdiscs on a host link (bandwidth's tbf, an ingress redirect), one line each. */
async function qdiscsOf(dev: string): Promise<string[]> {
  const list = parseToolJson("tc -j qdisc show", TcQdiscs, await run("tc", ["-j", "qdisc", "show", "dev", dev]).catch(() => "[]"));
  return list.map((q) => `${q.kind}${q.root ? " root" : q.parent ? ` parent ${q.parent}` : ""}${q.options && Object.keys(q.options).length ? ` ${JSON.stringify(q.options)}` : ""}`);
}

/** The bridge VLANs of a port, "VID flags". */
async function vlansOf(dev: string): Promise<string[]> {
  const list = parseToolJson("bridge -j vlan show", BridgeVlans, await run("bridge", ["-j", "vlan", "show", "dev", dev]).catch(() => "[]"));
  return list.flatMap((e) => e.vlans ?? []).map((v) => `${v.vlan}${v.vlanEnd ? `-${v.vlanEnd}` : ""}${v.flags?.length ? ` ${v.flags.join(" ")}` : ""}`);
}

/** Host state read once and shared by the columns (so they see the same moment). */
export interface HostState {
  links: IpLink[];
  iptables: string;
  /** Listening sockets: protocol/port -> process names. */
  listeners: Map<string, string[]>;
}

export async function hostState(): Promise<HostState> {
  const links = parseToolJson("ip -j -d addr show", IpLinks, await run("ip", ["-j", "-d", "addr", "show"]));
  const iptables = await run("iptables-save", [], { timeoutMs: 20_000 });
  const listeners = new Map<string, string[]>();
  for (const proto of ["tcp", "udp"] as const) {
    const out = await run("ss", ["-H", "-n", "-p", proto === "tcp" ? "-lt" : "-lu"]);
    for (const line of out.split("\n")) {
      const cols = line.trim().split(/\s+/);
      const local = cols[3];
      const port = local?.slice(local.lastIndexOf(":") + 1);
      if (!port) continue;
      const names = [...line.matchAll(/\("([^"]+)",pid=/g)].map((m) => m[1]!);
      const key = `${proto}/${port}`;
      listeners.set(key, [...new Set([...(listeners.get(key) ?? []), ...names])]);
    }
  }
  return { links, iptables, listeners };
}

export interface ProbeTarget {
  column: ColumnId;
  container: { id: string; name: string };
  peer: { id: string; name: string };
  /** Docker network the column is on ("none" for attach). */
  dockerNetwork: string;
  cniContainerId?: string;
  network: ColumnFacts["network"];
  publish: ColumnFacts["publish"];
}

/** Docker's view, the namespace and the host side of one column's probe container. */
export async function collectFacts(docker: Docker, t: ProbeTarget, host: HostState): Promise<ColumnFacts> {
  const info = await inspectContainer(docker, t.container.id);
  const pid = info.State.Pid;
  if (!pid) throw new Error(`container ${t.container.name} is not running`);
  const ins = await inside(pid);
  const net = info.NetworkSettings.Networks?.[t.dockerNetwork] ?? {};
  const eth0 = ins.links.find((l) => l.name === "eth0") ?? ins.links.find((l) => l.peerIndex !== undefined);
  const gwbridge = await inspectNetwork(docker, "docker_gwbridge")
    .then((n) => Object.keys(n.Containers ?? {}).includes(t.container.id))
    .catch(() => false);
  return {
    column: t.column,
    container: { ...t.container, pid },
    peer: t.peer,
    ...(t.cniContainerId ? { cniContainerId: t.cniContainerId } : {}),
    network: t.network,
    publish: t.publish,
    inside: ins,
    host: await hostSide(host, t, eth0),
    docker: {
      networkMode: info.HostConfig.NetworkMode,
      network: t.dockerNetwork,
      ...(net.IPAddress ? { ip: net.IPAddress, prefixLen: net.IPPrefixLen } : {}),
      ...(net.MacAddress ? { mac: net.MacAddress } : {}),
      ...(net.Gateway ? { gateway: net.Gateway } : {}),
      ...(net.EndpointID ? { endpointId: net.EndpointID } : {}),
      ports: info.NetworkSettings.Ports ?? {},
      gwbridge,
    },
    reach: {},
  };
}

/** The host side of a probe container: its veth's peer, that peer's bridge, rules and listeners. */
async function hostSide(host: HostState, t: ProbeTarget, eth0: Link | undefined): Promise<ColumnFacts["host"]> {
  const peer = eth0?.peerIndex !== undefined ? host.links.find((l) => l.ifindex === eth0.peerIndex) : undefined;
  const bridge = peer?.master ? host.links.find((l) => l.ifname === peer.master) : undefined;
  const ip = eth0?.addrs.find((a) => a.family === "inet")?.cidr;
  const rules = ip
    ? rulesFor(parseIptablesSave(host.iptables), {
        ip: canonicalIP(ip)!,
        subnet: t.network.subnet,
        gateway: t.network.gateway,
        bridge: peer?.master ?? t.network.bridge,
        hostPort: t.publish.hostPort,
        cniContainerId: t.cniContainerId,
      }).map(formatRule)
    : [];
  return {
    veth: peer ? await vethFacts(peer) : null,
    bridge: bridge ? bridgeFacts(bridge) : null,
    rules,
    listeners: host.listeners.get(`${t.publish.protocol}/${t.publish.hostPort}`) ?? [],
  };
}

async function vethFacts(peer: IpLink): Promise<NonNullable<ColumnFacts["host"]["veth"]>> {
  return {
    name: peer.ifname,
    ifindex: peer.ifindex,
    mtu: peer.mtu,
    ...(peer.master ? { master: peer.master } : {}),
    hairpin: peer.linkinfo?.info_slave_data?.hairpin === true,
    qdiscs: await qdiscsOf(peer.ifname),
    vlans: peer.master ? await vlansOf(peer.ifname) : [],
  };
}

function bridgeFacts(bridge: IpLink): NonNullable<ColumnFacts["host"]["bridge"]> {
  return {
    name: bridge.ifname,
    mtu: bridge.mtu,
    addrs: (bridge.addr_info ?? []).filter((a) => a.family === "inet").map((a) => `${a.local}/${a.prefixlen}`),
    flags: bridge.flags ?? [],
    vlanFiltering: bridge.linkinfo?.info_data?.vlan_filtering === 1,
  };
}
