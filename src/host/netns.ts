// Side effects on links and namespaces, through iproute2 (no shell, every call timed out).
import { access } from "node:fs/promises";
import { CommandError, run } from "../util/command.js";
import { parseToolJson } from "../util/zod.js";
import { IpLinks } from "./ip-json.js";
import { routesOf, type KernelRoute } from "./routes.js";

export const NETNS_DIR = "/run/netns";
export const netnsPath = (name: string) => `${NETNS_DIR}/${name}`;

/** `ip netns add`, unless it already exists (a retried or restarted operation). */
export async function ensureNetns(name: string): Promise<void> {
  try {
    await access(netnsPath(name));
    return;
  } catch {
    await run("ip", ["netns", "add", name]);
  }
}

/** `ip netns add`: fails when the name exists. */
export async function addNetns(name: string): Promise<void> {
  await run("ip", ["netns", "add", name]);
}

export async function deleteNetns(name: string): Promise<void> {
  try {
    await access(netnsPath(name));
  } catch {
    return;
  }
  await run("ip", ["netns", "del", name]);
}

export async function netnsExists(name: string): Promise<boolean> {
  try {
    await access(netnsPath(name));
    return true;
  } catch {
    return false;
  }
}

/** Is sysfs mounted for this namespace (it is on hosts and in a managed plugin with host networking)? */
const sysfsNet = access("/sys/class/net/lo").then(() => true, () => false);

function nsArgs(netns: string | undefined): string[] {
  return netns ? ["-n", netns] : [];
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  // In our own namespace sysfs answers without an exec (Join asks on every start).
  if (!netns && !name.includes("/") && (await sysfsNet)) return access(`/sys/class/net/${name}`).then(() => true, () => false);
  try {
    await run("ip", [...nsArgs(netns), "link", "show", "dev", name]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Take the chain's interface out of the staging ns under a unique host-side name for Docker, in
 * one `ip -batch` exec (it is on the critical path of every start). Returns the interface's
 * routes, read in the same exec just before the move, which drops them.
 */
export async function handOut(staging: string, ifName: string, tmpName: string): Promise<KernelRoute[]> {
  const out = await run("ip", ["-j", "-n", staging, "-batch", "-"], { input: handOutBatch(ifName, tmpName) });
  return routesOf(out.split("\n")[0] ?? "", ifName);
}

/** The hand-out's `ip -j -batch` input: the routes (first output line), then the rename and the move. */
export function handOutBatch(ifName: string, tmpName: string): string {
  return [
    "route show table all",
    // No "link set down" first: a move to another namespace closes the device itself.
    `link set dev ${ifName} name ${tmpName}`,
    // Our own pid's namespace is the host's (also inside a managed plugin with host networking).
    `link set dev ${tmpName} netns ${process.pid}`,
  ].join("\n");
}

/**
 * Bring the interface Docker gave back into the staging ns under its CNI name, with `addresses`
 * (a namespace move flushes them; the bridge plugin's DEL finds what hangs off them): two execs,
 * one per namespace.
 */
export async function takeBack(staging: string, ifName: string, tmpName: string, addresses: string[] = []): Promise<void> {
  await run("ip", ["link", "set", "dev", tmpName, "netns", staging]);
  await run("ip", ["-n", staging, "-batch", "-"], { input: [`link set dev ${tmpName} name ${ifName}`, ...addresses.map((a) => `addr replace ${a} dev ${ifName}`)].join("\n") });
}

/** Rename a link inside a namespace (an interrupted hand-out left it under its host-side name). */
export async function renameLink(ns: string, from: string, to: string): Promise<void> {
  await run("ip", ["-n", ns, "link", "set", "dev", from, "name", to]);
}

/**
 * A stand-in for an interface that no longer exists (its container's namespace is gone): the
 * bridge plugin's DEL finds the ipMasq chain to remove through the addresses on the link.
 */
export async function addStandIn(staging: string, ifName: string): Promise<void> {
  // A veth pair kept inside the staging ns: veth exists wherever the bridge plugin works (the
  // dummy module is often missing from minimal kernels). Deleting ifName removes both ends.
  await run("ip", ["-n", staging, "link", "add", ifName, "type", "veth", "peer", "name", `${ifName}-standin`.slice(0, 15)]);
}

/** A netns move flushes addresses; put the result's back so DEL can find what hangs off them. */
export async function restoreAddresses(staging: string, ifName: string, addresses: string[]): Promise<void> {
  for (const addr of addresses) {
    await run("ip", ["-n", staging, "addr", "replace", addr, "dev", ifName]);
  }
}

export async function deleteLinkIfExists(name: string, netns?: string): Promise<void> {
  try {
    await run("ip", [...nsArgs(netns), "link", "del", "dev", name]);
  } catch (err) {
    // One exec instead of a look first: a link that is not there is what we wanted.
    if (err instanceof CommandError && /cannot find device|does not exist/i.test(err.stderr)) return;
    throw err;
  }
}

/** Names of links enslaved to a bridge (host namespace). */
export async function bridgePorts(bridge: string): Promise<string[]> {
  const out = await run("ip", ["-j", "link", "show", "master", bridge]);
  return parseToolJson("ip -j link show master", IpLinks, out).map((l) => l.ifname);
}

/**
 * The end of a teardown in one exec: remove our namespace (when given and present; what is
 * left inside goes with it) and forget the host's neighbour entries of the freed addresses.
 * Docker's IPAM hands a freed address out again at once, to an interface with another MAC; a
 * recently confirmed entry would keep the old MAC for up to ~45 s (a gratuitous ARP within
 * locktime is ignored), and the new container would not answer the host. Docker's bridge
 * avoids it by deriving MACs from addresses.
 */
export async function finishTeardown(staging: string | undefined, addresses: string[]): Promise<void> {
  const lines = addresses.map((a) => `neigh flush to ${a.split("/")[0]}`);
  if (staging && (await netnsExists(staging))) lines.unshift(`netns del ${staging}`);
  if (!lines.length) return;
  try {
    // -force: every line runs; only the namespace's removal may fail the teardown.
    await run("ip", ["-force", "-batch", "-"], { input: lines.join("\n") });
  } catch (err) {
    if (staging && (await netnsExists(staging))) throw err;
  }
}

/** Is `address` (CIDR or bare) on some interface of the namespace bound at `nsFile` (e.g. Docker's sandbox key)? */
export async function addressInNamespaceFile(nsFile: string, address: string): Promise<boolean> {
  const bare = address.split("/")[0]!;
  try {
    const out = await run("nsenter", [`--net=${nsFile}`, "ip", "-o", "addr", "show"]);
    return out.split("\n").some((l) => l.includes(` ${bare}/`));
  } catch {
    return false; // not a namespace any more
  }
}

/**
 * Bring a link up inside a namespace and wait (bounded) until it has carrier: a namespace move
 * leaves it down, and a packet sent on it before then is lost (the dhcp daemon's DHCPRELEASE).
 */
export async function linkUp(ns: string, ifName: string, waitMs = 2_000): Promise<boolean> {
  await run("ip", ["-n", ns, "link", "set", "dev", ifName, "up"]);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const out = await run("ip", ["-j", "-n", ns, "link", "show", "dev", ifName]).catch(() => "[]");
    const state = parseToolJson("ip -j link show dev", IpLinks, out)[0]?.operstate;
    if (state === "UP") return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The MAC of link `ifName` in the namespace bound at `nsFile` (e.g. Docker's sandbox key), or undefined when it has none. */
export async function linkMacInNamespaceFile(nsFile: string, ifName: string): Promise<string | undefined> {
  try {
    const out = await run("nsenter", [`--net=${nsFile}`, "ip", "-j", "link", "show", "dev", ifName]);
    return parseToolJson("ip -j link show dev", IpLinks, out)[0]?.address;
  } catch {
    return undefined; // not a namespace (yet), or no such link
  }
}
