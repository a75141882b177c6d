// What a user would count to see whether anything leaked, taken before and after a test. The host
// is shared with the user's own networks and containers (the README quick start may be running,
// and a dockerd crash test restarts its --restart always containers with new endpoints, veths,
// addresses and chains): what a live Docker endpoint or running container holds at the time of the
// "after" snapshot is never a leak of the test, which has removed its own containers by then.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { isLivePreparedNetns } from "../../src/host/netns-pool.js";
import { isLiveLookLink } from "../../src/host/sandbox-look.js";
import { docker, pluginCall, sh, type PluginHandle } from "./e2e.js";

/** host-local's stores: the default one and the kind profile's dataDir. */
const HOST_LOCAL_DIRS = ["/var/lib/cni/networks", "/run/cni-ipam-state"];

export interface HostSnapshot {
  ipReservations: string[];
  veths: string[];
  netns: string[];
  perContainerChains: string[];
  cacheFiles: string[];
  /** Items above (as "key:item") held by a live endpoint or running container: never leaks. */
  liveOwned: string[];
}

type LeakKey = Exclude<keyof HostSnapshot, "liveOwned">;
const LEAK_KEYS: LeakKey[] = ["ipReservations", "veths", "netns", "perContainerChains", "cacheFiles"];

async function list(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** host-local reservations as "store/network/address", with the CNI container id that holds each. */
async function reservations(): Promise<Array<{ item: string; owner: string }>> {
  const out: Array<{ item: string; owner: string }> = [];
  for (const store of HOST_LOCAL_DIRS) {
    for (const net of await list(store)) {
      for (const f of await list(join(store, net))) {
        if (f === "lock" || f.startsWith("last_reserved_ip")) continue;
        const owner = (await readFile(join(store, net, f), "utf8").catch(() => "")).split(/\r?\n/)[0]!.trim();
        out.push({ item: store === HOST_LOCAL_DIRS[0] ? `${net}/${f}` : `${store}/${net}/${f}`, owner });
      }
    }
  }
  return out;
}

/** Endpoint ids Docker knows now (cni-shim's CNI container id is the endpoint id). */
async function liveEndpointIds(): Promise<Set<string>> {
  const nets = (await docker(["network", "ls", "-q"])).stdout.split("\n").filter(Boolean);
  if (!nets.length) return new Set();
  const res = await docker(["network", "inspect", "--format", "{{range .Containers}}{{.EndpointID}} {{end}}", ...nets], { reject: false });
  return new Set(res.stdout.split(/\s+/).filter(Boolean));
}

/** Host ifindexes of the veth peers inside running containers. */
async function vethPeersOfRunningContainers(): Promise<Set<number>> {
  const ids = (await docker(["ps", "-q"])).stdout.split("\n").filter(Boolean);
  const peers = new Set<number>();
  if (!ids.length) return peers;
  const pids = (await docker(["inspect", "--format", "{{.State.Pid}}", ...ids], { reject: false })).stdout.split("\n").map(Number).filter((p) => p > 0);
  for (const pid of pids) {
    const res = await sh("nsenter", ["-t", String(pid), "-n", "ip", "-j", "link", "show"], { reject: false });
    for (const l of JSON.parse(res.failed ? "[]" : res.stdout || "[]") as Array<{ link_index?: number }>) if (l.link_index) peers.add(l.link_index);
  }
  return peers;
}

/** Per-container chains (bridge's ipMasq CNI-<hex>, portmap's CNI-DN-<hex>) with the ids their rules' comments name. */
function chainsWithOwners(rules: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  const lines = rules.split("\n");
  for (const l of lines) {
    const c = l.startsWith(":") ? l.slice(1).split(" ")[0]! : "";
    if (/^CNI-(DN-)?[0-9a-f]{12,}$/.test(c)) chains.set(c, []);
  }
  for (const l of lines) {
    const target = / -j (CNI-(DN-)?[0-9a-f]{12,})\b/.exec(l)?.[1];
    const id = /id: \\?"([0-9a-f]{12,})\\?"/.exec(l)?.[1];
    if (target && id && chains.has(target)) chains.get(target)!.push(id);
  }
  return chains;
}

export async function snapshot(cacheDir?: string): Promise<HostSnapshot> {
  const live = await liveEndpointIds();
  const liveOwned: string[] = [];
  const held = await reservations();
  for (const r of held) if (live.has(r.owner)) liveOwned.push(`ipReservations:${r.item}`);
  const links = JSON.parse((await sh("ip", ["-j", "link", "show", "type", "veth"])).stdout || "[]") as Array<{ ifname: string; ifindex: number }>;
  const peers = await vethPeersOfRunningContainers();
  for (const l of links) if (peers.has(l.ifindex)) liveOwned.push(`veths:${l.ifname}`);
  // Staging namespaces a running plugin prepared ahead (cni-shim-p<pid>-<n>) are its pool, not
  // leftovers; those of a process that is gone are.
  const netns = (await sh("ip", ["netns", "list"])).stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" ")[0]!)
    .filter((n) => !isLivePreparedNetns(n) && !isLiveLookLink(n));
  for (const n of netns) if ([...live].some((id) => n.includes(id.slice(0, 12)))) liveOwned.push(`netns:${n}`);
  const chains = chainsWithOwners((await sh("iptables-save", [])).stdout);
  for (const [c, owners] of chains) if (owners.some((o) => live.has(o))) liveOwned.push(`perContainerChains:${c}`);
  const cacheFiles = cacheDir ? await list(join(cacheDir, "results")) : [];
  return { ipReservations: held.map((r) => r.item), veths: links.map((l) => l.ifname), netns, perContainerChains: [...chains.keys()], cacheFiles, liveOwned };
}

/** Assert-friendly difference: what exists now that did not before and nothing live holds. */
export function leaked(before: HostSnapshot, after: HostSnapshot): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const key of LEAK_KEYS) {
    const extra = after[key].filter((x) => !before[key].includes(x) && !after.liveOwned.includes(`${key}:${x}`));
    if (extra.length) out[key] = extra;
  }
  return out;
}

/** Snapshot after the plugin's background teardowns (DEL after DeleteEndpoint) have finished. */
export async function settledSnapshot(plugin: PluginHandle): Promise<HostSnapshot> {
  const res = await pluginCall(plugin.socket, "/CniShim.Settle", "{}");
  if (res.status !== 200) throw new Error(`plugin did not settle: ${res.status} ${res.body}`);
  return snapshot(plugin.cacheDir);
}
