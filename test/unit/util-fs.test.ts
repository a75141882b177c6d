// The small-file helpers the state store and the CNI cache use, in both ways a write goes
// (durable: through the thread pool with fsync; not: synchronous, util/fs.ts says why).
import { afterAll, describe, expect, it } from "vitest";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readdirIfExists, readFileIfExists, removeFile, statIfExists, writeFileAtomic, writeSmallFile } from "../../src/util/fs.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cnishim-fs-"));
  dirs.push(dir);
  return dir;
}

describe.each([true, false])("writeFileAtomic, durable: %s", (durable) => {
  it("makes the missing directory with dirMode, the file with mode, and leaves no temporary file", async () => {
    const dir = join(await tmp(), "records");
    const path = join(dir, "a.json");
    const st = await writeFileAtomic(path, "first", { durable, mode: 0o640, dirMode: 0o700 });
    expect(await readFile(path, "utf8")).toBe("first");
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o640);
    // The stat returned is the new file's (its inode: what the state store's versions compare).
    expect(st.ino).toBe((await stat(path)).ino);
    const again = await writeFileAtomic(path, new TextEncoder().encode("second, longer"), { durable });
    expect(await readFile(path, "utf8")).toBe("second, longer");
    expect(again.ino).not.toBe(st.ino); // a rename of a new file, never a rewrite in place
    expect(await readdir(dir)).toEqual(["a.json"]);
  });

  it("rejects (never throws at the call) when it cannot write, and leaves no temporary file", async () => {
    const dir = await tmp();
    await writeFile(join(dir, "file"), "");
    const call = writeFileAtomic(join(dir, "file", "a.json"), "x", { durable });
    await expect(call).rejects.toThrow(/ENOTDIR/);
    // The target is a directory: the rename fails after the write.
    await writeFileAtomic(join(dir, "d", "x"), "x", { durable });
    await expect(writeFileAtomic(join(dir, "d"), "y", { durable })).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect((await readdir(dir)).sort()).toEqual(["d", "file"]);
  });
});

describe("reads of files that may not exist", () => {
  it("gives undefined or nothing for a missing file or directory, and other errors as they are", async () => {
    const dir = await tmp();
    expect(await readFileIfExists(join(dir, "none"))).toBeUndefined();
    expect(await readdirIfExists(join(dir, "none"))).toEqual([]);
    expect(await statIfExists(join(dir, "none"))).toBeUndefined();
    await writeFile(join(dir, "f"), "text");
    expect(await readFileIfExists(join(dir, "f"))).toBe("text");
    expect(await readdirIfExists(dir)).toEqual(["f"]);
    expect((await statIfExists(join(dir, "f")))?.size).toBe(4);
    await expect(readFileIfExists(dir)).rejects.toThrow(/EISDIR/);
    await expect(readdirIfExists(join(dir, "f"))).rejects.toThrow(/ENOTDIR/);
  });

  it("removes a file once, and a missing one is fine; a mark's directory is made on its first write", async () => {
    const dir = await tmp();
    const mark = join(dir, "marks", "net-c-eth0");
    await writeSmallFile(mark, "");
    expect(await readFileIfExists(mark)).toBe("");
    await removeFile(mark);
    await removeFile(mark);
    expect(await readdirIfExists(join(dir, "marks"))).toEqual([]);
  });
});
