// The leak check: what of the host a phase may leave behind (addresses, links, namespaces,
// iptables chains and rules, the plugin's records), before and after.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isLivePreparedNetns } from "../../src/host/netns-pool.js";
import { isLiveLookLink } from "../../src/host/sandbox-look.js";
import type { Plugin } from "./plugin.js";
import { must, sh } from "./shell.js";

export type Snapshot = Record<"ipReservations" | "veths" | "bridges" | "netns" | "chains" | "rules" | "cacheFiles" | "endpointRecords" | "networkRecords", string[]>;
export type Leaks = Partial<Snapshot>;
export const ifnames = (json: string) => (JSON.parse(json || "[]") as { ifname: string }[]).map((l) => l.ifname);

async function ipReservations(): Promise<string[]> {
  const out: string[] = [];
  for (const net of await readdir("/var/lib/cni/networks").catch(() => [])) {
    for (const f of await readdir(join("/var/lib/cni/networks", net)).catch(() => [])) {
      if (f !== "lock" && !f.startsWith("last_reserved_ip")) out.push(`${net}/${f}`);
    }
  }
  return out;
}

/** Per-attachment iptables chains and rules; global chains (CNI-FORWARD...) stay by design. */
async function iptablesState(): Promise<{ chains: string[]; rules: string[] }> {
  const rules: string[] = [];
  const chains: string[] = [];
  for (const tool of ["iptables-save", "ip6tables-save"]) {
    const text = (await sh(tool, [])).out;
    for (const l of text.split("\n")) {
      if (l.startsWith(":") && /^:CNI-(DN-)?[0-9a-f]{12,}/.test(l)) chains.push(`${tool}:${l.slice(1).split(" ")[0] ?? ""}`);
      // The plugins' id comments, jumps to per-attachment chains, the firewall plugin's per-address rules.
      if (l.startsWith("-A") && (/ id: \\"/.test(l) || / -j CNI-(DN-)?[0-9a-f]{12,}/.test(l) || /^-A CNI-FORWARD .*-[sd] [0-9a-f.:]+\/(32|128)/.test(l))) rules.push(`${tool}:${l}`);
    }
  }
  return { chains, rules };
}

export async function snapshot(plugin: Plugin | undefined): Promise<Snapshot> {
  const veths = ifnames(await must("ip", ["-j", "link", "show", "type", "veth"]));
  const bridges = ifnames(await must("ip", ["-j", "link", "show", "type", "bridge"]));
  // A running plugin's prepared staging namespaces (cni-shim-p<pid>-<n>) are its pool, not leaks.
  const netns = (await must("ip", ["netns", "list"])).split("\n").filter(Boolean).map((l) => l.split(" ")[0] ?? l).filter((n) => !isLivePreparedNetns(n) && !isLiveLookLink(n));
  const cacheFiles = plugin ? await readdir(join(plugin.cacheDir, "results")).catch(() => []) : [];
  const records = plugin ? await plugin.records() : { endpoints: [], networks: [] };
  return { ipReservations: await ipReservations(), veths, bridges, netns, ...(await iptablesState()), cacheFiles, endpointRecords: records.endpoints, networkRecords: records.networks };
}

export function leaked(before: Snapshot, after: Snapshot): Leaks {
  const out: Leaks = {};
  for (const k of Object.keys(before) as (keyof Snapshot)[]) {
    const extra = after[k].filter((x) => !before[k].includes(x));
    if (extra.length) out[k] = extra;
  }
  return out;
}
