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

/** Every relative import of the source tree, as [importer, imported] paths relative to src/. */
async function imports(): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for (const file of await sourceFiles(SRC)) {
    const text = await readFile(file, "utf8");
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      out.push([relative(SRC, file), relative(SRC, resolve(dirname(file), m[1]!)).replace(/\.js$/, ".ts")]);
    }
  }
  return out;
}

/** A module's place in the layering: its folder under src/, or the file itself at the top. */
const placeOf = (rel: string) => (rel.includes("/") ? rel.split("/")[0]! : rel);

describe("module layers below the driver", () => {
  it("src/host and src/cni never import each other: the convergent teardown (src/teardown) is the one place that drives both", async () => {
    const crossing = (await imports()).filter(([from, to]) => (placeOf(from) === "host" && ["cni", "teardown"].includes(placeOf(to))) || (placeOf(from) === "cni" && ["host", "teardown"].includes(placeOf(to))));
    expect(crossing).toEqual([]);
  });

  it("the folders of src import each other without a cycle", async () => {
    const edges = new Map<string, Set<string>>();
    for (const [from, to] of await imports()) {
      if (placeOf(from) === placeOf(to)) continue;
      if (!edges.has(placeOf(from))) edges.set(placeOf(from), new Set());
      edges.get(placeOf(from))!.add(placeOf(to));
    }
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (node: string, path: string[]) => {
      if (state.get(node) === "done") return;
      if (state.get(node) === "open") return void cycles.push([...path.slice(path.indexOf(node)), node].join(" -> "));
      state.set(node, "open");
      for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, "done");
    };
    for (const node of edges.keys()) visit(node, []);
    expect(cycles).toEqual([]);
  });
});
