// The iptables state the reference plugins hang off one attachment, named as they name it, and
// a sweep for it. Used only to make a teardown converge when a plugin's own DEL cannot.
import { createHash } from "node:crypto";
import { run, CommandError } from "../util/command.js";

export type Family = 4 | 6;
const tool = (f: Family) => (f === 6 ? "ip6tables" : "iptables");

/** libcni's utils.FormatChainName / MustFormatChainNameWithPrefix: 28 characters at most. */
function chainName(prefix: string, network: string, containerId: string): string {
  return (prefix + createHash("sha512").update(network + containerId).digest("hex")).slice(0, 28);
}
/** The bridge plugin's ipMasq chain (nat table) for one attachment. */
export const masqChain = (network: string, containerId: string) => chainName("CNI-", network, containerId);
/** The portmap plugin's DNAT chain (nat table) for one attachment. */
export const dnatChain = (network: string, containerId: string) => chainName("CNI-DN-", network, containerId);

/**
 * Create an empty chain unless it exists. The bridge plugin's DEL deletes the jump to its
 * ipMasq chain and fails (nft backend: "Chain ... does not exist", not recognised as
 * "not found") when the chain is gone, e.g. after a reboot or a DEL that already ran.
 */
export async function ensureChain(family: Family, table: string, chain: string): Promise<boolean> {
  try {
    await run(tool(family), ["-w", "5", "-t", table, "-N", chain]);
    return true;
  } catch (err) {
    if (err instanceof CommandError && /exists/i.test(err.stderr)) return false;
    throw err;
  }
}

export interface SweepTarget {
  /** Rules whose text contains this (the plugins' comments carry the container id). */
  containerId: string;
  /** Per-attachment chains to flush and delete (and every jump to them). */
  chains: string[];
  /** Addresses (no prefix) whose IP-only rules in CNI-FORWARD (firewall plugin) go too. */
  firewallIps: string[];
}

interface SavedRule {
  table: string;
  chain: string;
  spec: string; // the rule after "-A CHAIN "
}

function parseSave(text: string): { rules: SavedRule[]; chains: Map<string, Set<string>> } {
  const rules: SavedRule[] = [];
  const chains = new Map<string, Set<string>>();
  let table = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("*")) {
      table = line.slice(1).trim();
      chains.set(table, new Set());
    } else if (line.startsWith(":")) {
      chains.get(table)?.add(line.slice(1).split(" ")[0]!);
    } else if (line.startsWith("-A ")) {
      const rest = line.slice(3);
      const sp = rest.indexOf(" ");
      rules.push({ table, chain: sp < 0 ? rest : rest.slice(0, sp), spec: sp < 0 ? "" : rest.slice(sp + 1) });
    }
  }
  return { rules, chains };
}

const ipRule = (spec: string, ip: string) => new RegExp(`(^|\\s)-[sd] ${ip.replace(/[.:]/g, (c) => `\\${c}`)}/(32|128)(\\s|$)`).test(spec);

/** What a sweep would do, as iptables-restore input (undefined: nothing to do). Pure. */
export function sweepScript(saved: string, target: SweepTarget): string | undefined {
  const { rules, chains } = parseSave(saved);
  const out: string[] = [];
  for (const [table, present] of chains) {
    const ours = target.chains.filter((c) => present.has(c));
    const jumpsToOurs = (spec: string) => ours.some((c) => new RegExp(`(^|\\s)-[jg] ${c}(\\s|$)`).test(spec));
    const doomed = rules.filter(
      (r) =>
        r.table === table &&
        !ours.includes(r.chain) && // flushed with their chain
        (r.spec.includes(target.containerId) || jumpsToOurs(r.spec) || (r.chain === "CNI-FORWARD" && target.firewallIps.some((ip) => ipRule(r.spec, ip)))),
    );
    if (!doomed.length && !ours.length) continue;
    out.push(`*${table}`);
    for (const r of doomed) out.push(`-D ${r.chain} ${r.spec}`);
    for (const c of ours) out.push(`-F ${c}`);
    for (const c of ours) out.push(`-X ${c}`);
    out.push("COMMIT");
  }
  return out.length ? out.join("\n") + "\n" : undefined;
}

/**
 * Remove every rule and chain of one attachment, IPv4 and IPv6. Returns a description of what
 * was removed (empty when nothing was left). Retries once: a plugin may change the tables
 * between our save and restore.
 */
export async function sweepAttachment(target: SweepTarget): Promise<string[]> {
  const removed: string[] = [];
  for (const family of [4, 6] as const) {
    for (let attempt = 0; ; attempt++) {
      let saved: string;
      try {
        saved = await run(`${tool(family)}-save`, []);
      } catch (err) {
        if (family === 6) break; // a host without IPv6 tables
        throw err;
      }
      const script = sweepScript(saved, target);
      if (!script) break;
      try {
        await run(`${tool(family)}-restore`, ["-w", "5", "--noflush"], { input: script });
        removed.push(...script.split("\n").filter((l) => l.startsWith("-")).map((l) => `${tool(family)} ${l}`));
        break;
      } catch (err) {
        if (attempt >= 1) throw err;
      }
    }
  }
  return removed;
}

/** Delete one chain when it is empty and nothing jumps to it (a chain we created for a DEL). */
export async function deleteChainIfUnused(family: Family, table: string, chain: string): Promise<void> {
  try {
    await run(tool(family), ["-w", "5", "-t", table, "-X", chain]);
  } catch {
    /* gone, in use or not empty: not ours to force */
  }
}
