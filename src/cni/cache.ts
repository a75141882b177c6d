// The result cache, in libcni's format and layout: <cacheDir>/results/<net>-<id>-<ifname>.
// Written atomically (a crash leaves the old or the new file), not fsync'ed: libcni does neither,
// and the write is on every start's critical path.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { CacheEntry } from "./schemas.js";
import { readdirIfExists, readFileIfExists, writeFileAtomic } from "../util/fs.js";
import { describeIssues } from "../util/zod.js";
import { log } from "../util/log.js";

export const DEFAULT_CACHE_DIR = "/var/lib/cni";

export class ResultCache {
  readonly resultsDir: string;
  constructor(readonly cacheDir: string = DEFAULT_CACHE_DIR) {
    this.resultsDir = join(cacheDir, "results");
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
    await rm(this.path(networkName, containerId, ifName), { force: true });
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
