// A container's own network namespace, named by a bound namespace file (Docker's SandboxKey):
// what the in-sandbox attach needs of it. Node cannot enter a namespace, so each look inside is
// one exec (the one before the ADD: sandbox-look.ts).
import { statfsSync } from "node:fs";
import { writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { run } from "../util/command.js";
import { parseToolJson } from "../util/zod.js";
import { IpBatchEntries } from "./ip-json.js";
import { handOutBatch, netnsPath } from "./netns.js";
import { routesOf, type KernelRoute } from "./routes.js";

const NSFS_MAGIC = 0x6e736673;

/** Is `path` a bound network namespace (not a missing path, nor the empty file a mount goes on)? */
export function isNamespaceFile(path: string): Promise<boolean> {
  try {
    return Promise.resolve(statfsSync(path).type === NSFS_MAGIC); // synchronous: util/fs.ts says why
  } catch {
    return Promise.resolve(false);
  }
}

export interface SandboxLook {
  /** The names of the namespace's links. */
  links: string[];
  /** Families that have a default route already (another interface is the gateway). */
  defaultRoutes: Array<4 | 6>;
}

/**
 * iproute2's batch mode, one JSON array per command: the main table's IPv4 default routes, the
 * links, then the default routes of every table and family (with `table all` iproute2 asks for
 * both families; a route of the main table has no "table" key). No command takes a family of its
 * own in batch mode, so the main table's IPv6 default routes are the main-table ones of the last
 * list beyond the IPv4 ones of the first.
 */
const LOOK_BATCH = "route show default\nlink show\nroute show default table all\n";

/**
 * What an in-sandbox Join does inside the namespace after its ADD: give the chain's interface the
 * MAC Docker was told (a chain no plugin of which set it), and remove the chain's default routes
 * of the families another interface has already.
 */
export interface AfterAdd {
  ifName: string;
  mac?: string;
  deleteDefaults: Array<4 | 6>;
}

/**
 * A look whose namespace can still be acted on: `finish` runs the AfterAdd there (the quick way:
 * through the look's own ip process, no second exec) and lets the look go. Called once per look,
 * also on failure (`finish()`). `handOut` instead ends it with the hand-out (handOutOf) run the
 * same way; a `finish()` after it does nothing.
 */
export interface LookSession extends SandboxLook {
  finish: (after?: AfterAdd) => Promise<void>;
  handOut: (ifName: string, tmpName: string) => Promise<KernelRoute[]>;
}

/**
 * AfterAdd as iproute2 batch lines (pure). The MAC while the link is up (veth and macvlan allow
 * it): down and up again would drop the routes the chain put on it. Batch lines take no family
 * option: the prefix says it.
 */
export function afterAddLines(a: AfterAdd): string[] {
  return [...(a.mac ? [`link set dev ${a.ifName} address ${a.mac}`] : []), ...a.deleteDefaults.map((f) => `route del ${f === 6 ? "::/0" : "0.0.0.0/0"} dev ${a.ifName}`)];
}

/** Run AfterAdd in the namespace as one exec (nsenter, then ip). */
export async function runAfterAdd(nsFile: string, a: AfterAdd): Promise<void> {
  const lines = afterAddLines(a);
  if (lines.length) await run("nsenter", [`--net=${nsFile}`, "ip", "-batch", "-"], { input: `${lines.join("\n")}\n` });
}

/** What is in the namespace before an ADD: its links and default routes, in one exec (nsenter, then ip; sandbox-look.ts has the quicker way). */
export async function lookInside(nsFile: string): Promise<LookSession> {
  const out = await run("nsenter", [`--net=${nsFile}`, "ip", "-j", "-batch", "-"], { input: LOOK_BATCH });
  return { ...parseLook(out), finish: (after) => (after ? runAfterAdd(nsFile, after) : Promise.resolve()), handOut: (ifName, tmpName) => handOutOf(nsFile, ifName, tmpName) };
}

/** The output of LOOK_BATCH (exported for the tests). */
export function parseLook(out: string): SandboxLook {
  const lines = out.split("\n").filter((l) => l.trim());
  // Each line checked apart: the error names the list ("ip -j -batch, list 2: 0.ifname: ...").
  const lists = lines.map((l, i) => parseToolJson(`ip -j -batch, list ${i + 1}`, IpBatchEntries, l));
  const [v4, links, all] = lists;
  if (lists.length !== 3 || !v4 || !links || !all) throw new Error(`ip -j -batch printed ${lists.length} lists, not 3: ${out.slice(0, 300)}`);
  const mainDefaults = all.filter((r) => r.table === undefined || r.table === "main").length;
  return {
    links: links.map((l) => l.ifname).filter((n): n is string => !!n),
    defaultRoutes: [...(v4.length ? [4 as const] : []), ...(mainDefaults > v4.length ? [6 as const] : [])],
  };
}

/** The interface name Docker would give next: the lowest `<prefix><N>` no link of the namespace has. */
export function nextIfName(existing: string[], prefix = "eth"): string {
  const used = new Set(existing);
  for (let n = 0; ; n++) if (!used.has(`${prefix}${n}`)) return `${prefix}${n}`;
}

/**
 * Keep the namespace alive under our own name (/run/netns/<name>) after Docker lets go of it,
 * so the chain's DEL still finds its interface there, as a kubelet's StopPodSandbox does before
 * the sandbox goes. `ip netns del <name>` lets go of it again.
 */
export async function holdNetns(nsFile: string, name: string): Promise<void> {
  const path = netnsPath(name);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, "", { flag: "a" });
  await run("mount", ["--bind", nsFile, path]);
}

/**
 * The hand-out from the container's own namespace (netns.handOut's batch, entered by nsenter: the
 * namespace has no /run/netns name): the chain's interface out to the host as `tmpName`, for
 * Join to give to Docker. Returns the routes it had (the move drops them).
 */
export async function handOutOf(nsFile: string, ifName: string, tmpName: string): Promise<KernelRoute[]> {
  const out = await run("nsenter", [`--net=${nsFile}`, "ip", "-j", "-batch", "-"], { input: handOutBatch(ifName, tmpName) });
  return routesOf(out.split("\n")[0] ?? "", ifName);
}
