// iptables rules that concern one container, picked out of `iptables-save` and normalised so
// the cni-shim and attach columns can be compared (their IPs, ports and hashes differ). Pure.

export interface IptRule {
  table: string;
  chain: string;
  /** Everything after "-A CHAIN ". */
  spec: string;
  target?: string;
}

/** What identifies one container's rules in a column. */
export interface RuleContext {
  ip: string;
  /** The container's further IPv4 addresses on eth0 (a second range set), in order: <ip2>, <ip3> ... */
  moreIps?: string[];
  subnet: string;
  gateway: string;
  bridge?: string;
  hostPort: number;
  /** CNI_CONTAINERID: portmap and bridge put it in their rule comments. */
  cniContainerId?: string;
}

/** Chains the CNI plugins create per attachment (bridge ipMasq, portmap DNAT). */
const PER_CONTAINER_CHAIN = /^CNI-(DN-)?[0-9a-f]{12,}$/;

export function parseIptablesSave(text: string): IptRule[] {
  const out: IptRule[] = [];
  let table = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) table = line.slice(1);
    if (!line.startsWith("-A ")) continue;
    const m = /^-A (\S+) ?(.*)$/.exec(line);
    if (!m) continue;
    const spec = m[2] ?? "";
    out.push({ table, chain: m[1]!, spec, target: /(?:^|\s)-[jg] (\S+)/.exec(spec)?.[1] });
  }
  return out;
}

export const formatRule = (r: IptRule) => `${r.table}: -A ${r.chain} ${r.spec}`.trimEnd();

export function parseRuleLine(line: string): IptRule | undefined {
  const m = /^(\w+): (.*)$/.exec(line);
  if (!m) return undefined;
  return parseIptablesSave(`*${m[1]}\n${m[2]}`)[0];
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The rules of this container: by its address, CNI id, bridge and host port, plus their per-container chains. */
export function rulesFor(all: IptRule[], ctx: RuleContext): IptRule[] {
  const ip = new RegExp(`(^|[\\s!])${esc(ctx.ip)}(/32)?(?=[\\s:]|$)|--to-destination ${esc(ctx.ip)}(?=[:\\s]|$)`);
  const bridge = ctx.bridge ? new RegExp(`(^|\\s)-[io] ${esc(ctx.bridge)}(?=\\s|$)`) : undefined;
  const port = new RegExp(`--dports? (\\S*,)?${ctx.hostPort}(?=[,:\\s]|$)`);
  const seeds = all.filter(
    (r) =>
      ip.test(r.spec) ||
      (ctx.cniContainerId !== undefined && r.spec.includes(ctx.cniContainerId)) ||
      (bridge !== undefined && bridge.test(r.spec)) ||
      (r.table === "nat" && port.test(r.spec)),
  );
  const picked = new Set(seeds);
  // Follow jumps into per-container chains: their rules belong to the container as a whole.
  const chains = new Set<string>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of picked) {
      if (r.target && PER_CONTAINER_CHAIN.test(r.target) && !chains.has(`${r.table}/${r.target}`)) {
        chains.add(`${r.table}/${r.target}`);
        for (const c of all.filter((x) => x.table === r.table && x.chain === r.target)) picked.add(c);
        grew = true;
      }
    }
  }
  return all.filter((r) => picked.has(r));
}

/** One rule with what is specific to the column replaced by placeholders, comments dropped. */
export function normaliseRule(r: IptRule, ctx: RuleContext): string {
  let s = `${r.chain} ${r.spec}`;
  s = s.replace(/ -m comment --comment ("(?:[^"\\]|\\.)*"|\S+)/g, "");
  if (ctx.cniContainerId) s = s.split(ctx.cniContainerId).join("<id>");
  const word = (value: string, placeholder: string) => {
    s = s.replace(new RegExp(`(^|[\\s!])${esc(value)}(?=[\\s/:,]|$)`, "g"), `$1${placeholder}`);
  };
  word(ctx.subnet, "<subnet>");
  word(ctx.ip, "<ip>");
  (ctx.moreIps ?? []).forEach((ip, i) => word(ip, `<ip${i + 2}>`));
  s = s.replace(new RegExp(`--to-destination ${esc(ctx.ip)}(?=[:\\s]|$)`, "g"), "--to-destination <ip>");
  word(ctx.gateway, "<gateway>");
  if (ctx.bridge) word(ctx.bridge, "<bridge>");
  s = s.replace(new RegExp(`(--dports? (?:\\S*,)?)${ctx.hostPort}(?=[,:\\s]|$)`, "g"), "$1<hostPort>");
  s = s.replace(/\bCNI-DN-[0-9a-f]{12,}\b/g, "CNI-DN-<hash>").replace(/\bCNI-[0-9a-f]{12,}\b/g, "CNI-<hash>");
  return `${r.table} ${s.replace(/\s+/g, " ").trim()}`;
}

export interface RuleGroups {
  /** Source NAT of the container's outgoing traffic. */
  masquerade: string[];
  /** Port publishing (DNAT and its helpers). */
  publish: string[];
  /** Forwarding policy (filter table, and anything else). */
  filter: string[];
}

/** Normalised rules of a container, grouped and sorted (so order of creation does not matter). */
export function groupRules(rules: IptRule[], ctx: RuleContext): RuleGroups {
  const groups: RuleGroups = { masquerade: [], publish: [], filter: [] };
  for (const r of rules) {
    const line = normaliseRule(r, ctx);
    const masq = r.target === "MASQUERADE" || r.target === "SNAT" || /^CNI-[0-9a-f]{12,}$/.test(r.chain) || /^CNI-[0-9a-f]{12,}$/.test(r.target ?? "");
    const group = r.table !== "nat" ? groups.filter : masq && !r.chain.startsWith("CNI-HOSTPORT") ? groups.masquerade : groups.publish;
    if (!group.includes(line)) group.push(line);
  }
  for (const g of [groups.masquerade, groups.publish, groups.filter]) g.sort();
  return groups;
}

/** How a published port is served: DNAT chains, and any process listening on it (docker-proxy). */
export function servedBy(rules: IptRule[], listeners: string[]): string {
  const dnat = [...new Set(rules.filter((r) => r.table === "nat" && r.target === "DNAT").map((r) => r.chain.replace(/^CNI-DN-[0-9a-f]{12,}$/, "CNI-DN-<hash>")))].sort();
  const procs = [...new Set(listeners)].sort();
  const how = dnat.length ? `DNAT (${dnat.join(", ")})` : "no DNAT rule";
  return procs.length ? `${how} + ${procs.join(", ")} listening` : `${how}, no proxy process`;
}
