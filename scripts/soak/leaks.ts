// The leak check: what of the host a phase may leave behind (addresses, links, namespaces,
// iptables chains and rules, the plugin's records), before and after. What live endpoints and
// running containers hold at the "after" look is not counted (live-owners.ts): the host may run
// the user's own networks, whose --restart always containers come back from a dockerd kill with
// new veths, addresses and rules. The verdict (the diff, and a settle time for what other plugins'
// background teardowns still clear) is leak-verdict.ts's.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isLivePreparedNetns } from "../../src/host/netns-pool.js";
import { isLiveLookLink } from "../../src/host/sandbox-look.js";
import type { Plugin } from "./plugin.js";
import { chainsWithOwners, HARNESS_NETNS, liveOwners, netnsOfLive, ruleOfLive, type LiveOwners } from "./live-owners.js";
import { hostReservations } from "./reservations.js";
import { DOCKER } from "./settings.js";
import { must, sh } from "./shell.js";
import type { Snapshot } from "./leak-verdict.js";

export const ifnames = (json: string) => (JSON.parse(json || "[]") as { ifname: string }[]).map((l) => l.ifname);

async function ipReservations(live: LiveOwners, liveOwned: string[]): Promise<string[]> {
  const all = await hostReservations();
  for (const r of all) if (live.endpointIds.has(r.owner)) liveOwned.push(`ipReservations:${r.item}`);
  return all.map((r) => r.item);
}

/** Per-attachment iptables chains and rules; global chains (CNI-FORWARD...) stay by design. */
async function iptablesState(live: LiveOwners, liveOwned: string[]): Promise<{ chains: string[]; rules: string[] }> {
  const rules: string[] = [];
  const chains: string[] = [];
  for (const tool of ["iptables-save", "ip6tables-save"]) {
    const text = (await sh(tool, [])).out;
    for (const [c, owners] of chainsWithOwners(text)) {
      chains.push(`${tool}:${c}`);
      if (owners.some((o) => live.endpointIds.has(o))) liveOwned.push(`chains:${tool}:${c}`);
    }
    for (const l of text.split("\n")) {
      // The plugins' id comments, jumps to per-attachment chains, the firewall plugin's per-address rules.
      if (!(l.startsWith("-A") && (/ id: \\"/.test(l) || / -j CNI-(DN-)?[0-9a-f]{12,}/.test(l) || /^-A CNI-FORWARD .*-[sd] [0-9a-f.:]+\/(32|128)/.test(l)))) continue;
      rules.push(`${tool}:${l}`);
      if (ruleOfLive(l, live)) liveOwned.push(`rules:${tool}:${l}`);
    }
  }
  return { chains, rules };
}

const exec = async (file: string, args: string[]) => {
  const r = await sh(file, args);
  return r.ok ? r.out : "";
};

export async function snapshot(plugin: Plugin | undefined): Promise<Snapshot> {
  const live = await liveOwners(exec, DOCKER);
  const liveOwned: string[] = [];
  const links = JSON.parse((await must("ip", ["-j", "link", "show", "type", "veth"])) || "[]") as Array<{ ifname: string; ifindex: number }>;
  const veths = links.map((l) => l.ifname);
  for (const l of links) if (live.vethPeers.has(l.ifindex)) liveOwned.push(`veths:${l.ifname}`);
  const bridges = ifnames(await must("ip", ["-j", "link", "show", "type", "bridge"]));
  // A running plugin's prepared staging namespaces (cni-shim-p<pid>-<n>) are its pool, not leaks.
  const netns = (await must("ip", ["netns", "list"])).split("\n").filter(Boolean).map((l) => l.split(" ")[0] ?? l).filter((n) => !isLivePreparedNetns(n) && !isLiveLookLink(n) && !HARNESS_NETNS.test(n));
  for (const n of netns) if (netnsOfLive(n, live)) liveOwned.push(`netns:${n}`);
  const cacheFiles = plugin ? await readdir(join(plugin.cacheDir, "results")).catch(() => []) : [];
  const records = plugin ? await plugin.records() : { endpoints: [], networks: [] };
  const iptables = await iptablesState(live, liveOwned);
  return { ipReservations: await ipReservations(live, liveOwned), veths, bridges, netns, ...iptables, cacheFiles, endpointRecords: records.endpoints, networkRecords: records.networks, liveOwned };
}
