// Whether a chain sets things on its interface that a move between namespaces drops (pure): then
// the in-sandbox Join leaves the interface where the chain made it rather than hand it to Docker
// (in-sandbox.ts handToDocker). Checked on a real kernel: a move resets the interface's
// conf/<ifname> sysctls, flushes its addresses and routes (Docker sets back one address per
// family and the routes of Join's reply), and takes it out of a vrf.
import type { ConfList } from "../cni/schemas.js";

/** A per-interface sysctl: net.ipv4.conf.<if>.* / net.ipv6.conf.<if>.* (not all/default). */
const perLinkSysctl = /^net\.ipv[46]\.conf\.(?!all\.|default\.)[^.]+\./;

/** Why the chain's interface must stay where the chain made it, or undefined. */
export function linkBoundReason(list: ConfList): string | undefined {
  for (const p of list.plugins) {
    if (p.type === "sbr") return "sbr's policy rules and tables are the interface's";
    if (p.type === "vrf") return "the vrf plugin puts the interface in a vrf device";
    const sysctl = (p as { sysctl?: unknown }).sysctl;
    const keys = sysctl && typeof sysctl === "object" ? Object.keys(sysctl).filter((k) => perLinkSysctl.test(k)) : [];
    if (keys.length) return `${p.type} sets the interface's own sysctls (${keys.join(", ")})`;
    const ipam = (p as { ipam?: { ranges?: unknown } }).ipam;
    if (Array.isArray(ipam?.ranges) && rangeSetsPerFamily(ipam.ranges) > 1) return "two range sets of one family give the interface a second address (Docker sets one)";
  }
  return undefined;
}

/** The most range sets of one address family (a set's family: its first range's subnet). */
function rangeSetsPerFamily(sets: unknown[]): number {
  const families = sets.map((set) => {
    const subnet = Array.isArray(set) ? (set[0] as { subnet?: unknown } | undefined)?.subnet : undefined;
    return typeof subnet === "string" ? (subnet.includes(":") ? 6 : 4) : 0;
  });
  return Math.max(0, ...[4, 6].map((f) => families.filter((x) => x === f).length));
}
