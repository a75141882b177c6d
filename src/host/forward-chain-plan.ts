// cni-shim's own forward chain, as text: from what `iptables -S` lists and the rules wanted,
// the iptables-restore script that makes the table so (pure). The side effects are in
// forward-chain.ts.
//
//   DOCKER-USER (or FORWARD when there is none)
//     -j CNI-SHIM-FORWARD
//   CNI-SHIM-FORWARD
//     -s SUBNET -m comment --comment "cni-shim network <id> owner <state>" -j ACCEPT
//     -d SUBNET -m comment --comment "cni-shim network <id> owner <state>" -j ACCEPT
//
// The owner is the state dir's tag: serves with different state dirs (one per engine, the
// tests' own) share one host's tables, and each removes only the rules of its own networks.

export const FORWARD_CHAIN = "CNI-SHIM-FORWARD";
const USER_CHAIN = "DOCKER-USER";

/** One ACCEPT rule of a network: from its subnet, to it, or (internal) within it. */
export interface AcceptRule {
  network: string;
  source?: string;
  destination?: string;
}

const ruleComment = (owner: string, network: string) => `cni-shim network ${network} owner ${owner}`;
const COMMENT = /^cni-shim network (\S+) owner (\S+)$/;

/** Words of a rule as iptables -S prints it, a quoted comment as one word. */
function words(spec: string): string[] {
  return [...spec.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!));
}

const option = (w: string[], name: string) => {
  const i = w.indexOf(name);
  return i >= 0 ? w[i + 1] : undefined;
};

interface Listed {
  chain: string;
  spec: string;
}

interface ListedTable {
  policy?: string;
  chains: Set<string>;
  rules: Listed[];
}

/** `iptables -S` (every chain of the filter table). */
function parseListing(text: string): ListedTable {
  const chains = new Set<string>();
  const rules: Listed[] = [];
  let policy: string | undefined;
  for (const line of text.split("\n")) {
    const w = line.trim().split(/\s+/);
    if (w[0] === "-P") {
      chains.add(w[1]!);
      if (w[1] === "FORWARD") policy = w[2];
    } else if (w[0] === "-N") chains.add(w[1]!);
    else if (w[0] === "-A" && w[1]) rules.push({ chain: w[1], spec: line.trim().slice(3 + w[1].length).trim() });
  }
  return { policy, chains, rules };
}

const keyOf = (r: { network: string; source?: string; destination?: string }) => `${r.network}|${r.source ?? ""}|${r.destination ?? ""}`;

export function ruleSpec(owner: string, r: AcceptRule): string {
  const match = [r.source ? `-s ${r.source}` : "", r.destination ? `-d ${r.destination}` : ""].filter(Boolean).join(" ");
  return `${match} -m comment --comment "${ruleComment(owner, r.network)}" -j ACCEPT`;
}

export interface ChainPlan {
  /** iptables-restore --noflush input; undefined when the table is as wanted. */
  script?: string;
  /** Networks that got at least one rule. */
  added: Set<string>;
  /** Networks whose rules were removed (records gone, or no longer wanted). */
  removed: Set<string>;
  /** The FORWARD policy listed. */
  policy?: string;
}

/** The script that makes the listed table hold exactly `wanted` as this owner's rules. Pure. */
export function planForwardChain(listing: string, owner: string, wanted: AcceptRule[]): ChainPlan {
  const table = parseListing(listing);
  const out: string[] = [];
  const added = new Set<string>();
  const removed = new Set<string>();
  const want = new Map(wanted.map((r) => [keyOf(r), r]));
  const have = new Set<string>();
  let foreign = 0;
  for (const r of table.rules.filter((l) => l.chain === FORWARD_CHAIN)) {
    const w = words(r.spec);
    const tag = COMMENT.exec(option(w, "--comment") ?? "");
    if (!tag || tag[2] !== owner) {
      foreign++;
      continue;
    }
    const key = keyOf({ network: tag[1]!, source: option(w, "-s"), destination: option(w, "-d") });
    if (want.has(key) && !have.has(key)) have.add(key);
    else {
      out.push(`-D ${FORWARD_CHAIN} ${r.spec}`);
      removed.add(tag[1]!);
    }
  }
  const missing = [...want.values()].filter((r) => !have.has(keyOf(r)));
  const needed = foreign + want.size > 0;
  const chainExists = table.chains.has(FORWARD_CHAIN);
  const jumps = table.rules.filter((r) => r.chain !== FORWARD_CHAIN && new RegExp(`(^|\\s)-[jg] ${FORWARD_CHAIN}(\\s|$)`).test(r.spec));
  if (needed) {
    if (!chainExists) out.push(`-N ${FORWARD_CHAIN}`);
    for (const r of missing) {
      out.push(`-A ${FORWARD_CHAIN} ${ruleSpec(owner, r)}`);
      added.add(r.network);
    }
    // DOCKER-USER: after the user's own rules (their DROP wins, as over Docker's own accepts),
    // before the RETURN Docker (< 28) ends it with.
    const parent = table.chains.has(USER_CHAIN) ? USER_CHAIN : "FORWARD";
    const plain = `-j ${FORWARD_CHAIN}`;
    let kept = false;
    for (const j of jumps) {
      if (j.chain === parent && j.spec === plain && !kept) kept = true;
      else if (j.spec === plain) out.push(`-D ${j.chain} ${j.spec}`); // a duplicate, or in FORWARD from before DOCKER-USER existed
    }
    if (!kept) {
      const parentRules = table.rules.filter((r) => r.chain === parent);
      const last = parentRules[parentRules.length - 1];
      out.push(parent === USER_CHAIN && last?.spec === "-j RETURN" ? `-I ${parent} ${parentRules.length} ${plain}` : `-A ${parent} ${plain}`);
    }
  } else if (chainExists) {
    for (const j of jumps) out.push(`-D ${j.chain} ${j.spec}`);
    out.push(`-X ${FORWARD_CHAIN}`);
  }
  return { script: out.length ? `*filter\n${out.join("\n")}\nCOMMIT\n` : undefined, added, removed, policy: table.policy };
}
