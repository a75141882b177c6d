// What a user would count to see whether anything leaked, taken before and after a test. The host
// is shared with the user's own networks and containers (the README quick start may be running,
// and a dockerd crash test restarts its --restart always containers with new endpoints, veths,
// addresses and chains): what a live Docker endpoint or running container holds at the time of the
// "after" snapshot is never a leak of the test, which has removed its own containers by then.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isLivePreparedNetns } from "../../src/host/netns-pool.js";
import { isLiveLookLink } from "../../src/host/sandbox-look.js";
import { chainsWithOwners, HARNESS_NETNS, liveOwners, netnsOfLive, type Exec } from "../../scripts/soak/live-owners.js";
import { hostReservations } from "../../scripts/soak/reservations.js";
import { DOCKER_CLI, pluginCall, sh, type PluginHandle } from "./e2e.js";

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

const exec: Exec = async (file, args) => {
  const res = await sh(file, args, { reject: false });
  return res.failed ? "" : res.stdout;
};

export async function snapshot(cacheDir?: string): Promise<HostSnapshot> {
  const owners = await liveOwners(exec, DOCKER_CLI);
  const live = owners.endpointIds;
  const liveOwned: string[] = [];
  const held = await hostReservations();
  for (const r of held) if (live.has(r.owner)) liveOwned.push(`ipReservations:${r.item}`);
  const links = JSON.parse((await sh("ip", ["-j", "link", "show", "type", "veth"])).stdout || "[]") as Array<{ ifname: string; ifindex: number }>;
  for (const l of links) if (owners.vethPeers.has(l.ifindex)) liveOwned.push(`veths:${l.ifname}`);
  // Staging namespaces a running plugin prepared ahead (cni-shim-p<pid>-<n>) are its pool, not
  // leftovers; those of a process that is gone are.
  const netns = (await sh("ip", ["netns", "list"])).stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" ")[0]!)
    .filter((n) => !isLivePreparedNetns(n) && !isLiveLookLink(n) && !HARNESS_NETNS.test(n));
  for (const n of netns) if (netnsOfLive(n, owners)) liveOwned.push(`netns:${n}`);
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
