// A container's own network namespace, named by a bound namespace file (Docker's SandboxKey):
// what the in-sandbox attach needs of it. Node cannot enter a namespace, so each look inside is
// one `nsenter` exec.
import { statfs, writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { run } from "../util/command.js";
import { netnsPath } from "./netns.js";

const NSFS_MAGIC = 0x6e736673;

/** Is `path` a bound network namespace (not a missing path, nor the empty file a mount goes on)? */
export async function isNamespaceFile(path: string): Promise<boolean> {
  try {
    return (await statfs(path)).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

export interface SandboxLook {
  /** The names of the namespace's links. */
  links: string[];
  /** Families that have a default route already (another interface is the gateway). */
  defaultRoutes: Array<4 | 6>;
}

/** What is in the namespace before an ADD: its links and default routes, in one exec. */
export async function lookInside(nsFile: string): Promise<SandboxLook> {
  const out = await run("nsenter", [`--net=${nsFile}`, "sh", "-c", "ip -o link show; echo --; ip -4 route show default; echo --; ip -6 route show default"]);
  const [links = "", v4 = "", v6 = ""] = out.split(/^--$/m);
  return {
    // "2: eth0@if7: <...>" -> eth0
    links: links
      .split("\n")
      .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
      .filter((n): n is string => !!n),
    defaultRoutes: [...(v4.trim() ? [4 as const] : []), ...(v6.trim() ? [6 as const] : [])],
  };
}

/** Remove the default routes of the given families that go through `ifName`. */
export async function deleteDefaultRoutes(nsFile: string, ifName: string, families: Array<4 | 6>): Promise<void> {
  const lines = families.map((f) => `${f === 6 ? "-6 " : ""}route del default dev ${ifName}`);
  await run("nsenter", [`--net=${nsFile}`, "sh", "-c", lines.map((l) => `ip ${l}`).join("; ")]);
}

/** The interface name Docker would give next: the lowest `<prefix><N>` no link of the namespace has. */
export function nextIfName(existing: string[], prefix = "eth"): string {
  const used = new Set(existing);
  for (let n = 0; ; n++) if (!used.has(`${prefix}${n}`)) return `${prefix}${n}`;
}

/**
 * Set the MAC of an interface inside the namespace while it is up (veth and macvlan allow it).
 * Not down and up again: that would drop the routes the chain put on it.
 */
export async function setMacIn(nsFile: string, ifName: string, mac: string): Promise<void> {
  await run("nsenter", [`--net=${nsFile}`, "ip", "link", "set", "dev", ifName, "address", mac]);
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
