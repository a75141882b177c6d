// What the simulated reboot removes of iptables for one network (pure: iptables-save text in,
// an iptables-restore --noflush script out).

/**
 * The iptables-restore --noflush script that deletes every rule of `saved` (iptables-save's
 * output) naming the CNI network `cniName` (in the plugins' comments, saved as `name: \"NAME\"`),
 * and flushes and deletes the per-attachment chains they jump to; "" when there are none.
 */
export function rulesOfNetworkRemoval(saved: string, cniName: string): string {
  const script: string[] = [];
  let table = "";
  let lines: string[] = [];
  const chains = new Set<string>();
  const flush = () => {
    if (table && (lines.length || chains.size)) script.push(`*${table}`, ...lines, ...[...chains].map((c) => `-F ${c}`), ...[...chains].map((c) => `-X ${c}`), "COMMIT");
  };
  for (const l of saved.split("\n")) {
    if (l.startsWith("*")) {
      flush();
      table = l.slice(1);
      lines = [];
      chains.clear();
    } else if (l.startsWith("-A") && l.includes(`\\"${cniName}\\"`)) {
      lines.push(`-D${l.slice(2)}`);
      const jump = / -j (CNI-(?:DN-)?[0-9a-f]+)/.exec(l);
      if (jump?.[1]) chains.add(jump[1]);
    }
  }
  flush();
  return script.length ? script.join("\n") + "\n" : "";
}
