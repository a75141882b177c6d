// The state and cache dirs as release 0.1.0 wrote them (test/fixtures/records-0.1.0: copied from
// a real run of that release on Docker 28.5: one cni-shim with --attach handoff, one with --attach
// sandbox, a container on each, and a `cni-shim attach` of a --network none container). An upgrade (docker plugin upgrade, or a
// new plain program) keeps these dirs: every later release must read these files, or migrate them,
// and never skip one as damaged, or its endpoints could no longer be torn down. A change of a
// schema that breaks this test needs a migration, not a new fixture; keep these files as they are.
import { describe, expect, it } from "vitest";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { StateStore } from "../../src/driver/state.js";
import { attachmentRecords } from "../../src/attach/record.js";
import { ResultCache } from "../../src/cni/cache.js";
import { AttachChoice } from "../../src/driver/attach-choice.js";

const FIXTURES = fileURLToPath(new URL("../fixtures/records-0.1.0/", import.meta.url));
const json = async (path: string) => JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
const files = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();

/** A copy of one fixture dir: the store may write next to what it reads. */
async function copyOf(name: string): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "cnishim-records-"));
  await cp(join(FIXTURES, name), dir, { recursive: true });
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

describe.each(["state-handoff", "state-sandbox"])("release 0.1.0's state dir (%s)", (name) => {
  it("lists every network and endpoint record, field for field", async () => {
    const { dir, done } = await copyOf(name);
    try {
      const store = new StateStore(dir);
      for (const [kind, list] of [["networks", () => store.listNetworks()], ["endpoints", () => store.listEndpoints()]] as const) {
        const written = await Promise.all((await files(join(dir, kind))).map((f) => json(join(dir, kind, f))));
        expect(written.length, kind).toBeGreaterThan(0);
        const read = (await list()).sort((a, b) => a.id.localeCompare(b.id));
        expect(read, kind).toEqual(written.sort((a, b) => String(a.id).localeCompare(String(b.id))));
      }
    } finally {
      await done();
    }
  });
});

describe("release 0.1.0's other files", () => {
  it("reads the endpoints' attach path as written: the hand-out and in-sandbox", async () => {
    const paths: string[] = [];
    for (const name of ["state-handoff", "state-sandbox"]) {
      const { dir, done } = await copyOf(name);
      paths.push(...(await new StateStore(dir).listEndpoints()).map((e) => e.attach));
      await done();
    }
    expect(new Set(paths)).toEqual(new Set(["staging-handoff", "in-sandbox"]));
  });

  it("lists `cni-shim attach`'s record", async () => {
    const { dir, done } = await copyOf("state-handoff");
    try {
      const written = await Promise.all((await files(join(dir, "attachments"))).map((f) => json(join(dir, "attachments", f))));
      expect(written).toHaveLength(1);
      expect(await attachmentRecords(new StateStore(dir)).list()).toEqual(written);
    } finally {
      await done();
    }
  });

  it("keeps what the Joins showed (attach-seen.json): the engine and its way", async () => {
    const { dir, done } = await copyOf("state-sandbox");
    try {
      const seen = await json(join(dir, "attach-seen.json"));
      const d = await new AttachChoice("auto", dir).peek(String(seen.engine));
      expect(d).toMatchObject({ kind: "in-sandbox", engine: seen.engine, joinsWithNamespace: seen.joinsWithNamespace, joinsWithout: 0 });
      expect(d.joinsWithNamespace).toBeGreaterThan(0);
    } finally {
      await done();
    }
  });

  it("reads every CNI result cache entry", async () => {
    for (const name of ["cache-handoff", "cache-sandbox"]) {
      const results = join(FIXTURES, name, "results");
      const entries = await readdir(results);
      expect(entries.length, name).toBeGreaterThan(0);
      const cache = new ResultCache(join(FIXTURES, name));
      for (const f of entries) {
        const written = await json(join(results, f));
        expect(await cache.read(String(written.networkName), String(written.containerId), String(written.ifName)), f).toEqual(written);
      }
    }
  });
});
