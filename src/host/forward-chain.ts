// Makes cni-shim's forward chain (forward-chain-plan.ts) hold the wanted rules of one family:
// list the filter table, restore what differs, atomically. Every exec waits at most 5 s for the
// xtables lock and is killed after 10 s.
import { run } from "../util/command.js";
import { planForwardChain, type AcceptRule, type ChainPlan } from "./forward-chain-plan.js";

const tool = (family: 4 | 6) => (family === 6 ? "ip6tables" : "iptables");
const TIMEOUT_MS = 10_000;

/**
 * Apply the owner's wanted rules for one family. A family with nothing wanted on a host whose
 * tool does not answer (no IPv6 tables) is left alone. Retries once: another process (a plugin,
 * dockerd, another serve) may change the table between the listing and the restore.
 */
export async function applyForwardChain(family: 4 | 6, owner: string, wanted: AcceptRule[]): Promise<ChainPlan> {
  for (let attempt = 0; ; attempt++) {
    let listing: string;
    try {
      listing = await run(tool(family), ["-w", "5", "-t", "filter", "-S"], { timeoutMs: TIMEOUT_MS });
    } catch (err) {
      if (!wanted.length) return { added: new Set(), removed: new Set() };
      throw err;
    }
    const plan = planForwardChain(listing, owner, wanted);
    if (!plan.script) return plan;
    try {
      await run(`${tool(family)}-restore`, ["-w", "5", "--noflush"], { input: plan.script, timeoutMs: TIMEOUT_MS });
      return plan;
    } catch (err) {
      if (attempt >= 1) throw err;
    }
  }
}
