// What cni-shim knows of the host-local IPAM plugin, in one place: where its store is, the
// ranges it hands out, the reservation files it writes and the bookkeeping it leaves behind.
import { readFile, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import type { ConfList, PluginConf } from "./schemas.js";
import { readdirIfExists } from "../util/fs.js";
import { canonicalIP, cidrRange, firstHost, parseCidr, subnetOf } from "../util/ip.js";

/** host-local's default store (its `dataDir`). */
const HOST_LOCAL_DATA_DIR = "/var/lib/cni/networks";

interface HostLocalIpam {
  type: "host-local";
  dataDir?: string;
  ranges?: Array<Array<{ subnet?: string; gateway?: string }>>;
  /** The legacy single-range form. */
  subnet?: string;
  gateway?: string;
}

/** The first plugin that carries IPAM config (bridge, ptp, macvlan ... all nest it). */
export function ipamPlugin(list: ConfList): PluginConf | undefined {
  return list.plugins.find((p) => p.ipam);
}

function hostLocalIpam(list: ConfList): HostLocalIpam | undefined {
  const ipam = ipamPlugin(list)?.ipam;
  return ipam?.type === "host-local" ? (ipam as HostLocalIpam) : undefined;
}

/** host-local's store for this list, or undefined for another IPAM. */
export function hostLocalDir(list: ConfList): string | undefined {
  const ipam = hostLocalIpam(list);
  return ipam ? join(ipam.dataDir ?? HOST_LOCAL_DATA_DIR, list.name) : undefined;
}

export interface HostLocalRange {
  subnet: string;
  gateway: string;
}

/** The subnets a host-local IPAM config hands out (ranges, or the legacy single subnet). */
export function hostLocalRanges(list: ConfList): HostLocalRange[] | undefined {
  const ipam = hostLocalIpam(list);
  if (!ipam) return undefined;
  const raw = ipam.ranges?.flat() ?? (ipam.subnet ? [{ subnet: ipam.subnet, gateway: ipam.gateway }] : []);
  return raw.flatMap((r) => {
    const subnet = r.subnet ? subnetOf(r.subnet) : undefined;
    if (!subnet) return [];
    return [{ subnet, gateway: (r.gateway && canonicalIP(r.gateway)) || firstHost(subnet)! }];
  });
}

/** host-local's own files in its store that are not reservations. */
export const isBookkeeping = (file: string) => file === "lock" || file.startsWith("last_reserved_ip");

/** A reservation file's content: the CNI container id, then (since plugins 0.9) the interface. */
export function parseReservation(text: string): { containerId: string; ifName: string | undefined } {
  const [id, iface] = text.split(/\r?\n/).map((s) => s.trim());
  return { containerId: id ?? "", ifName: iface || undefined };
}

/** host-local reservations of this attachment: files of the network's store naming the container. */
export async function hostLocalReservations(list: ConfList, containerId: string, ifName: string): Promise<string[]> {
  const dir = hostLocalDir(list);
  if (!dir) return [];
  const out: string[] = [];
  for (const name of await readdirIfExists(dir)) {
    if (isBookkeeping(name)) continue;
    const r = parseReservation(await readFile(join(dir, name), "utf8").catch(() => ""));
    if (r.containerId === containerId && (r.ifName === undefined || r.ifName === ifName)) out.push(join(dir, name));
  }
  return out;
}

/** One reservation file of host-local's store: who holds the address, and since when. */
export interface HostLocalReservation {
  /** The address with its range's prefix (CIDR). */
  address: string;
  containerId: string;
  /** Empty for reservations of host-local before it recorded the interface. */
  ifName: string;
  mtimeMs: number;
}

/** Every reservation in the list's host-local store (none for another IPAM). */
export async function hostLocalStore(list: ConfList): Promise<HostLocalReservation[]> {
  const dir = hostLocalDir(list);
  if (!dir) return [];
  const out: HostLocalReservation[] = [];
  for (const name of await readdirIfExists(dir)) {
    const address = isBookkeeping(name) ? undefined : withPrefix(list, name);
    if (!address) continue;
    const file = join(dir, name);
    const [text, st] = await Promise.all([readFile(file, "utf8").catch(() => ""), stat(file).catch(() => undefined)]);
    const [id, iface] = text.split(/\r?\n/).map((s) => s.trim());
    if (id && st) out.push({ address, containerId: id, ifName: iface ?? "", mtimeMs: st.mtimeMs });
  }
  return out;
}

/** A reservation file's name (a bare address) with its range's prefix; undefined when in no range. */
function withPrefix(list: ConfList, fileName: string): string | undefined {
  const ip = parseCidr(fileName);
  if (!ip) return undefined;
  const n = cidrRange(ip.address)!.first;
  const range = (hostLocalRanges(list) ?? []).map((r) => cidrRange(r.subnet)).find((r) => r !== undefined && r.family === ip.family && r.first <= n && n <= r.last);
  return range ? `${ip.address}/${range.prefix}` : undefined;
}

/**
 * The addresses (CIDR, with their range's prefix) host-local reserved for this attachment: what a
 * teardown knows of an ADD that was cut short before anything recorded its result, when no one
 * else chose the address (null IPAM). Firewall's per-address rules are found by them.
 */
export async function hostLocalAddresses(list: ConfList, containerId: string, ifName: string): Promise<string[]> {
  return (await hostLocalReservations(list, containerId, ifName)).flatMap((file) => withPrefix(list, basename(file)) ?? []);
}

/** Delete host-local's store when only its bookkeeping is left (no reservations). */
export async function removeHostLocalDirIfEmpty(dir: string): Promise<void> {
  const files = await readdirIfExists(dir);
  if (files.every(isBookkeeping)) await rm(dir, { recursive: true, force: true });
}
