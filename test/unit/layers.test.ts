// Layers point down: src/cli reads the command line and runs commands; nothing below it may
// import from it (settings and the builders of driver, runtime and attacher live below).
import { describe, expect, it } from "vitest";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join, relative, resolve } from "node:path";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(path)));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

describe("module layers", () => {
  it("no module outside src/cli imports from src/cli", async () => {
    const offenders: string[] = [];
    for (const file of await sourceFiles(SRC)) {
      const rel = relative(SRC, file);
      if (rel.startsWith("cli/")) continue;
      const text = await readFile(file, "utf8");
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
        const target = relative(SRC, resolve(dirname(file), m[1]!));
        if (target === "cli" || target.startsWith("cli/")) offenders.push(`${rel} -> ${m[1]}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
