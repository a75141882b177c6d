// Docker's SandboxKey as this process can open it. The plain program shares dockerd's mount
// namespace: the key opens as given. A managed plugin runs in a mount namespace of its own, copied
// when it was enabled, and Docker bind-mounts each container's namespace under its exec-root after
// that; such a mount reaches the plugin only through a bind of a shared host mount, and neither
// the exec-root (Docker leaves it private) nor every host's / is one. With pidhost the plugin sees
// dockerd's process, and /proc/<dockerd pid>/root is dockerd's own view of the files: the key
// opens there, wherever the exec-root is, with nothing prepared on the host. The kernel lets a
// process into another's root only past its ptrace read check, so the plugin needs CAP_SYS_PTRACE
// (dockerd has capabilities the plugin lacks).
//
// An absolute symlink met under that root (Debian's /var/run -> /run) resolves against this
// process's own root, not dockerd's, so the key's directory is resolved a component at a time.
import { readdir, readFile, readlink, statfs } from "node:fs/promises";
import { basename, dirname, posix } from "node:path";
import { isNamespaceFile } from "./sandbox.js";
import { processAlive } from "../util/pid.js";
import { log } from "../util/log.js";

/** Where a Join's SandboxKey stands, for this process. */
export type SandboxSight =
  /** A namespace, opened at `path` (the key itself, or under dockerd's root). */
  | { kind: "visible"; path: string }
  /** Docker's view has the key's directory and no namespace at the key: not made yet (Docker <= 27). */
  | { kind: "missing" }
  /** This process cannot look where Docker put it: nothing is known of the engine. */
  | { kind: "unseen"; why: string };

/** How this process opens sandbox keys: `open` false when dockerd's view is closed to it. */
export interface KeysOpened {
  open: boolean;
  how: string;
}

/** What one dockerd's view showed of the key. */
export interface DockerdLook {
  pid: number;
  /** The key's path under /proc/<pid>/root, its directory resolved; none when the directory is not there. */
  path?: string;
  keyIsNamespace: boolean;
  /** Its root could not be read (EACCES without CAP_SYS_PTRACE). */
  error?: string;
}

export interface KeyLooks {
  key: string;
  /** The key is a namespace in this process's own view. */
  own: boolean;
  /** The key's directory exists in this process's own view. */
  ownDir: boolean;
  dockerds: DockerdLook[];
}

export const PTRACE_HINT = "a managed plugin needs pidhost and CAP_SYS_PTRACE in its config (plugin-config/config.json) to open Docker's sandbox keys through /proc/<dockerd pid>/root";

/** The first two of a list, and how many more (one dockerd per engine: a host may run several). */
const few = (xs: string[]) => xs.slice(0, 2).join("; ") + (xs.length > 2 ? ` and ${xs.length - 2} more` : "");

/**
 * Pure: visible where a view has the namespace; missing only when a view that is Docker's has
 * the key's directory (a readable dockerd root, or this process's own when no dockerd hides its
 * view); else unseen, and why.
 */
export function sightOf(l: KeyLooks): SandboxSight {
  if (l.own) return { kind: "visible", path: l.key };
  const hit = l.dockerds.find((d) => d.keyIsNamespace && d.path);
  if (hit?.path) return { kind: "visible", path: hit.path };
  const unreadable = l.dockerds.filter((d) => d.error);
  if (l.dockerds.some((d) => !d.error && d.path) || (l.ownDir && !unreadable.length)) return { kind: "missing" };
  const dir = dirname(l.key);
  if (unreadable.length) return { kind: "unseen", why: `${dir} is not in this process's mount namespace, and dockerd's view is closed to it (${few(unreadable.map((d) => d.error!))}): ${PTRACE_HINT}` };
  if (!l.dockerds.length) return { kind: "unseen", why: `${dir} is not in this process's mount namespace and no dockerd process is in sight (${PTRACE_HINT})` };
  return { kind: "unseen", why: `${dir} is in no dockerd's view (pids ${l.dockerds.map((d) => d.pid).join(", ")}) nor in this process's` };
}

/** The pids of processes named dockerd (with pidhost, the host's). */
async function dockerdPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const comm = await readFile(`/proc/${name}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "dockerd") pids.push(Number(name));
  }
  return pids;
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

/**
 * `dir` resolved under `root` (a /proc/<pid>/root), symlinks followed as that root sees them;
 * undefined when a component is missing. Throws when the root cannot be read.
 */
export async function resolveUnder(root: string, dir: string, hops = 0): Promise<string | undefined> {
  const parts = dir.split("/").filter((p) => p && p !== ".");
  let at = "";
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === "..") {
      at = posix.dirname(at || "/") === "/" ? "" : posix.dirname(at);
      continue;
    }
    const next = `${at}/${part}`;
    let target: string;
    try {
      target = await readlink(root + next);
    } catch (err) {
      if (errno(err) === "EINVAL") {
        at = next; // not a symlink
        continue;
      }
      if (errno(err) === "ENOENT" || errno(err) === "ENOTDIR") return undefined;
      throw err;
    }
    if (hops >= 40) throw new Error(`${dir}: too many symlinks under ${root}`);
    const rest = parts.slice(i + 1).join("/");
    return resolveUnder(root, `${target.startsWith("/") ? target : `${at}/${target}`}/${rest}`, hops + 1);
  }
  return root + (at || "/");
}

async function lookThrough(pid: number, key: string): Promise<DockerdLook> {
  try {
    const dir = await resolveUnder(`/proc/${pid}/root`, dirname(key));
    const path = dir === undefined ? undefined : `${dir}/${basename(key)}`;
    return { pid, path, keyIsNamespace: !!path && (await isNamespaceFile(path)) };
  } catch (err) {
    return { pid, keyIsNamespace: false, error: `/proc/${pid}/root: ${errno(err) ?? (err as Error).message}` };
  }
}

async function dirExists(path: string): Promise<boolean> {
  return statfs(path).then(
    () => true,
    () => false,
  );
}

/** Docker's sandbox keys as this process opens them (one per process: the dockerd found is kept). */
/** How long a key seen as a namespace is taken as one without looking again (sight()). */
const VISIBLE_FRESH_MS = 200;

export class SandboxKeys {
  private pids: number[] = [];
  private scannedAt = 0;
  /** The directory of keys last found under a dockerd's root, and where it resolved. */
  private found?: { pid: number; keyDir: string; dir: string };

  constructor(
    private readonly findDockerds: () => Promise<number[]> = dockerdPids,
    private readonly look: (pid: number, key: string) => Promise<DockerdLook> = lookThrough,
  ) {}

  /**
   * Keys seen visible in the last VISIBLE_FRESH_MS: a Join looks at its key twice (its look,
   * started as it arrives, and the Join itself), one statfs on the start's path each time.
   */
  private readonly visible = new Map<string, { at: number; sight: SandboxSight }>();

  async sight(key: string): Promise<SandboxSight> {
    const seen = this.visible.get(key);
    if (seen && performance.now() - seen.at < VISIBLE_FRESH_MS) return seen.sight;
    const sight = await this.sightNow(key);
    if (sight.kind === "visible") {
      this.visible.set(key, { at: performance.now(), sight });
      if (this.visible.size > 64) this.visible.delete(this.visible.keys().next().value as string);
    } else this.visible.delete(key);
    return sight;
  }

  private async sightNow(key: string): Promise<SandboxSight> {
    if (await isNamespaceFile(key)) return { kind: "visible", path: key };
    const quick = this.found?.keyDir === dirname(key) ? `${this.found.dir}/${basename(key)}` : undefined;
    if (quick && (await isNamespaceFile(quick))) return { kind: "visible", path: quick };
    const dockerds = await Promise.all((await this.dockerds()).map((pid) => this.look(pid, key)));
    const sight = sightOf({ key, own: false, ownDir: await dirExists(dirname(key)), dockerds });
    const hit = dockerds.find((d) => d.keyIsNamespace && d.path === (sight.kind === "visible" ? sight.path : undefined));
    if (hit?.path && this.found?.pid !== hit.pid) {
      log.info("container namespaces are opened in dockerd's view of the files (this process has a mount namespace of its own)", { dockerdPid: hit.pid, sandboxKey: key, path: hit.path });
    }
    if (hit?.path) this.found = { pid: hit.pid, keyDir: dirname(key), dir: dirname(hit.path) };
    return sight;
  }

  /** The path to open the key by: where it is visible, else the key itself (which then fails as before). */
  async path(key: string): Promise<string> {
    const s = await this.sight(key);
    return s.kind === "visible" ? s.path : key;
  }

  /** How keys are opened, for the serving log and doctor (no key at hand: what the dockerds' views allow). */
  async describe(): Promise<KeysOpened> {
    const pids = await this.dockerds();
    if (!pids.length) return { open: true, how: "as given: no dockerd process in sight" };
    const own = await readlink("/proc/self/ns/mnt").catch(() => "");
    const theirs = await Promise.all(pids.map((pid) => readlink(`/proc/${pid}/ns/mnt`).then((ns) => ({ pid, ns }), (err: unknown) => ({ pid, error: errno(err) ?? String(err) }))));
    if (theirs.some((t) => "ns" in t && t.ns === own)) return { open: true, how: "as given: this process shares dockerd's mount namespace" };
    const open = theirs.find((t) => "ns" in t);
    if (open) return { open: true, how: `in dockerd's view of the files, /proc/${open.pid}/root: this process has a mount namespace of its own` };
    const closed = few(theirs.map((t) => `/proc/${t.pid}: ${"error" in t ? t.error : "?"}`));
    return { open: false, how: `as given only: dockerd's view is closed to this process (${closed}); ${PTRACE_HINT}` };
  }

  /** Known dockerd pids, scanned again when one went away or (at most every 2 s) when none was found. */
  private async dockerds(): Promise<number[]> {
    const stale = this.pids.length ? !this.pids.every(processAlive) : Date.now() - this.scannedAt > 2_000;
    if (stale) {
      this.pids = await this.findDockerds();
      this.scannedAt = Date.now();
    }
    return this.pids;
  }
}
