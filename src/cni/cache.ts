// The result cache, in libcni's format and layout: <cacheDir>/results/<net>-<id>-<ifname>.
// Written atomically (a crash leaves the old or the new file), not fsync'ed: libcni does neither,
// and the write is on every start's critical path.
import { join } from "node:path";
import { CacheEntry } from "./schemas.js";
import { readdirIfExists, readFileIfExists, removeFile, writeFileAtomic, writeSmallFile } from "../util/fs.js";
import { describeIssues } from "../util/zod.js";
import { log } from "../util/log.js";

export const DEFAULT_CACHE_DIR = "/var/lib/cni";

export class ResultCache {
  readonly resultsDir: string;
  /**
   * cni-shim's own marks, one per attachment it ran ADD for, from before the ADD until a DEL
   * succeeded: what this runtime may release as forgotten. Runtimes with other cache dirs (another
   * serve, a kubelet) share host-local stores of the same network name, and their reservations
   * are not ours to judge (CI: a test plugin released the README quick start's reservation, and
   * the address went to two containers at once).
   */
  readonly ownedDir: string;
  constructor(readonly cacheDir: string = DEFAULT_CACHE_DIR) {
    this.resultsDir = join(cacheDir, "results");
    this.ownedDir = join(cacheDir, "cni-shim-adds");
  }

  private ownedPath(networkName: string, containerId: string, ifName: string): string {
    return join(this.ownedDir, `${networkName}-${containerId}-${ifName}`);
  }

  async markOwned(networkName: string, containerId: string, ifName: string): Promise<void> {
    // On every ADD's path: the directory is made only when the write says it is missing.
    await writeSmallFile(this.ownedPath(networkName, containerId, ifName), "");
  }

  async unmarkOwned(networkName: string, containerId: string, ifName: string): Promise<void> {
    await removeFile(this.ownedPath(networkName, containerId, ifName));
  }

  /**
   * Whether this runtime ran the ADD of an attachment of the network (and no DEL undid it yet),
   * from one listing of the marks: by interface, or without one any interface of the container.
   */
  async owned(networkName: string): Promise<(containerId: string, ifName?: string) => boolean> {
    const prefix = `${networkName}-`;
    const names = (await readdirIfExists(this.ownedDir)).filter((n) => n.startsWith(prefix));
    const marks = new Set(names);
    return (containerId, ifName) => (ifName ? marks.has(`${prefix}${containerId}-${ifName}`) : names.some((n) => n.startsWith(`${prefix}${containerId}-`)));
  }

  path(networkName: string, containerId: string, ifName: string): string {
    return join(this.resultsDir, `${networkName}-${containerId}-${ifName}`);
  }

  async write(entry: CacheEntry): Promise<void> {
    await writeFileAtomic(this.path(entry.networkName, entry.containerId, entry.ifName), JSON.stringify(entry), { durable: false });
  }

  async read(networkName: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    return this.readFile(this.path(networkName, containerId, ifName));
  }

  private async readFile(path: string): Promise<CacheEntry | undefined> {
    const text = await readFileIfExists(path);
    if (text === undefined) return undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      log.warn("ignoring corrupt CNI cache file", { path });
      return undefined;
    }
    const parsed = CacheEntry.safeParse(raw);
    if (!parsed.success) {
      log.warn("ignoring CNI cache file of another format", { path, why: describeIssues(parsed.error) });
      return undefined;
    }
    return parsed.data;
  }

  async remove(networkName: string, containerId: string, ifName: string): Promise<void> {
    await removeFile(this.path(networkName, containerId, ifName));
  }

  /** Every cached attachment of a network (libcni GetCachedAttachments). */
  async list(networkName: string): Promise<CacheEntry[]> {
    const out: CacheEntry[] = [];
    for (const name of (await readdirIfExists(this.resultsDir)).filter((n) => n.startsWith(`${networkName}-`))) {
      const entry = await this.readFile(join(this.resultsDir, name));
      if (entry && entry.networkName === networkName) out.push(entry);
    }
    return out;
  }
}
