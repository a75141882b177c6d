import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join, basename } from "node:path";
import type { Stats } from "node:fs";

export interface AtomicWriteOptions {
  mode?: number;
  dirMode?: number;
  /**
   * fsync before the rename (default): the new content is on disk before anyone can see it, so
   * not even a power loss leaves an empty or torn file under the name. Off where the file's
   * owner format never had it (libcni writes its result cache with a plain WriteFile): a crash
   * of the process still leaves the old or the new file, only a power loss may not.
   */
  durable?: boolean;
}

/**
 * Write a file so readers see either the old or the new content, never a torn one. Returns the
 * new file's stat (taken before the rename, so another writer's later file is not mistaken for it).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, { mode = 0o600, dirMode = 0o700, durable = true }: AtomicWriteOptions = {}): Promise<Stats> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  // The directory exists but for the first write: made only when the open says so.
  const fh = await open(tmp, "w", mode).catch(async (err: unknown) => {
    if (!isNotFound(err)) throw err;
    await mkdir(dirname(path), { recursive: true, mode: dirMode });
    return open(tmp, "w", mode);
  });
  let st: Stats;
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
    st = await fh.stat();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return st;
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/** The file's text, or undefined when it does not exist. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The directory's entries, or none when it does not exist (yet). */
export async function readdirIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}
