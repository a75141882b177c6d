// Keeps cni-shim's forward chain equal to what the network records want (forward-rules.ts):
// after CreateNetwork and DeleteNetwork, at start and after each reconciliation, so a chain
// flushed by a reboot, a dockerd restart or a hand, and rules of networks removed while the
// plugin was down, converge. One run at a time; each reads the records afresh.
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import type { AcceptRule, ChainPlan } from "../host/forward-chain-plan.js";
import { FORWARD_CHAIN } from "../host/forward-chain-plan.js";
import { log } from "../util/log.js";
import { acceptRules, forwardNeed } from "./forward-rules.js";
import type { NetworkRecord } from "./state.js";

/** Applies one family's wanted rules of one owner (host/forward-chain.ts; faked in tests). */
export type ApplyForwardChain = (family: 4 | 6, owner: string, wanted: AcceptRule[]) => Promise<ChainPlan>;

/** The owner tag of a state dir's rules: serves with other state dirs keep theirs. */
export const forwardOwner = (stateDir: string) => createHash("sha256").update(resolve(stateDir)).digest("hex").slice(0, 12);

export interface ForwardAcceptDeps {
  /** Off (--accept-forwarding false): no rule is added, and this owner's earlier ones go. */
  enabled: boolean;
  owner: string;
  networks(): Promise<NetworkRecord[]>;
  apply: ApplyForwardChain;
}

export class ForwardAccept {
  private queue: Promise<unknown> = Promise.resolve();
  /** Networks whose lack of a subnet was logged already (once per network and process). */
  private readonly toldUnknown = new Set<string>();
  private toldOff = false;

  constructor(private readonly deps: ForwardAcceptDeps) {}

  /** Make the chain hold exactly the rules the records want; throws when iptables refused. */
  converge(): Promise<void> {
    const next = this.queue.then(() => this.convergeOnce());
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async convergeOnce(): Promise<void> {
    const { enabled, owner, apply } = this.deps;
    const networks = await this.deps.networks();
    const wanted: Record<4 | 6, AcceptRule[]> = { 4: [], 6: [] };
    const needs = new Map(networks.map((n) => [n.id, forwardNeed(n)]));
    if (!enabled && !this.toldOff) {
      this.toldOff = true;
      log.info("forwarding of cni-shim networks is not accepted by cni-shim (--accept-forwarding false)", { why: "the firewall is managed by the user: under dockerd's FORWARD policy DROP a chain without the firewall plugin needs rules of the user's own" });
    }
    for (const [id, need] of needs) {
      if (need.kind === "unknown" && enabled && !this.toldUnknown.has(id)) {
        this.toldUnknown.add(id);
        log.warn(`forwarding not accepted for network ${id.slice(0, 12)} because ${need.why}`, { network: id.slice(0, 12), why: need.why });
      }
      if (!enabled) continue;
      const rules = acceptRules(id, need);
      wanted[4].push(...rules[4]);
      wanted[6].push(...rules[6]);
    }
    const added = new Set<string>();
    const removed = new Set<string>();
    let policy: string | undefined;
    for (const family of [4, 6] as const) {
      const plan = await apply(family, owner, wanted[family]);
      plan.added.forEach((id) => added.add(id));
      plan.removed.forEach((id) => removed.add(id));
      if (family === 4) policy = plan.policy;
    }
    for (const id of added) {
      const need = needs.get(id);
      if (need?.kind !== "accept") continue;
      log.info(`forwarding accepted for ${need.subnets.join(", ")} because ${need.because}`, { network: id.slice(0, 12), subnets: need.subnets, chain: FORWARD_CHAIN, forwardPolicy: policy, internal: need.internal || undefined });
    }
    for (const id of removed) if (!added.has(id)) log.info("forwarding rules removed", { network: id.slice(0, 12), chain: FORWARD_CHAIN, why: needs.has(id) ? (enabled ? "no longer wanted" : "--accept-forwarding false") : "the network is gone" });
    for (const id of this.toldUnknown) if (!needs.has(id)) this.toldUnknown.delete(id);
  }
}
