// Loading network configuration lists from conf dirs the way libcni does.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { findConfList, listConfFiles, parseConfFile } from "../../src/cni/config.js";
import { CniConfigError } from "../../src/cni/errors.js";
import { tempDir } from "../helpers/fake-plugin.js";

let d1: string;
let d2: string;

const list = (name: string, marker: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.0.0", name, plugins: [{ type: "bridge", marker }], ...extra });
const single = (name: string, marker: string) => JSON.stringify({ cniVersion: "0.4.0", name, type: "bridge", marker, ipam: { type: "host-local" } });

async function put(dir: string, file: string, text: string) {
  await writeFile(join(dir, file), text);
}

async function configError(p: Promise<unknown>): Promise<CniConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a CniConfigError").toBeInstanceOf(CniConfigError);
  return err as CniConfigError;
}

const marker = (loaded: Awaited<ReturnType<typeof findConfList>>) => (loaded.conflist.plugins[0] as { marker?: string }).marker;

beforeEach(async () => {
  d1 = await tempDir("cnishim-netd1-");
  d2 = await tempDir("cnishim-netd2-");
});
afterEach(async () => {
  await rm(d1, { recursive: true, force: true });
  await rm(d2, { recursive: true, force: true });
});

describe("findConfList", () => {
  it("prefers .conflist over .conf, takes files in lexicographic order, and the first dir wins", async () => {
    await put(d1, "05-dup.conf", single("dup", "d1-conf"));
    await put(d1, "50-dup.conflist", list("dup", "d1-conflist"));
    await put(d1, "20-lex.conflist", list("lex", "d1-20"));
    await put(d1, "10-lex.conflist", list("lex", "d1-10"));
    await put(d1, "99-both.json", single("both", "d1-json"));
    await put(d2, "00-both.conflist", list("both", "d2-conflist"));
    await put(d2, "00-dup.conflist", list("dup", "d2"));
    await put(d2, "30-only2.conflist", list("only2", "d2-only"));
    await put(d1, "README.md", "not a config");
    await put(d1, "70-ignored.conflist.bak", list("lex", "backup"));

    expect(marker(await findConfList([d1, d2], "dup"))).toBe("d1-conflist");
    expect(marker(await findConfList([d1, d2], "lex"))).toBe("d1-10");
    expect(marker(await findConfList([d1, d2], "both"))).toBe("d1-json");
    expect(marker(await findConfList([d2, d1], "both"))).toBe("d2-conflist");
    const only2 = await findConfList([d1, d2], "only2");
    expect(marker(only2)).toBe("d2-only");
    expect(only2.source).toBe(join(d2, "30-only2.conflist"));
  });

  it("keeps the exact bytes of a .conflist", async () => {
    const text = `{"name":"bytes",  "cniVersion":"1.0.0","plugins":[{"type":"x"}]}\n`;
    await put(d1, "a.conflist", text);
    expect((await findConfList([d1], "bytes")).bytes.toString()).toBe(text);
  });

  it("wraps a single-plugin .conf into a list (libcni ConfListFromConf)", async () => {
    await put(d1, "10-one.conf", single("one", "m1"));
    const loaded = await findConfList([d1], "one");
    expect(loaded.source).toBe(join(d1, "10-one.conf"));
    expect(loaded.conflist.name).toBe("one");
    expect(loaded.conflist.cniVersion).toBe("0.4.0");
    expect(loaded.conflist.plugins).toHaveLength(1);
    expect(loaded.conflist.plugins[0]).toMatchObject({ type: "bridge", marker: "m1", ipam: { type: "host-local" } });
    // The bytes are the wrapped list, which parses back to the same list.
    const reparsed = parseConfFile(loaded.bytes.toString(), "again.conflist");
    expect(reparsed.conflist.plugins[0]).toMatchObject({ type: "bridge", marker: "m1" });
  });

  it("names the file and the bad field when the matching config is invalid", async () => {
    await put(d1, "10-bad.conflist", JSON.stringify({ cniVersion: "1.0", name: "bad", plugins: [{ type: "bridge" }, { type: "" }] }));
    const err = await configError(findConfList([d1], "bad"));
    expect(err.file).toBe(join(d1, "10-bad.conflist"));
    expect(err.message).toContain(join(d1, "10-bad.conflist"));
    expect(err.message).toMatch(/cniVersion: must be a version like 1\.0\.0/);
    expect(err.message).toMatch(/plugins\.1\.type: must name the plugin binary/);

    await put(d1, "20-slash.conf", JSON.stringify({ cniVersion: "1.0.0", name: "slash", type: "../../bin/sh" }));
    const slash = await configError(findConfList([d1], "slash"));
    expect(slash.message).toContain("20-slash.conf");
    expect(slash.message).toMatch(/type: must be a plugin name without '\/'/);

    await put(d1, "30-empty.conflist", JSON.stringify({ cniVersion: "1.0.0", name: "empty", plugins: [] }));
    expect((await configError(findConfList([d1], "empty"))).message).toMatch(/30-empty\.conflist.*plugins: must list at least one plugin/);
  });

  it("is not stopped by broken unrelated files, and mentions them when nothing matches", async () => {
    await put(d1, "00-broken.conflist", "{ not json");
    await put(d1, "01-invalid.conflist", JSON.stringify({ name: "other", plugins: "x" }));
    await put(d1, "10-good.conflist", list("good", "g"));
    expect(marker(await findConfList([d1], "good"))).toBe("g");
    const err = await configError(findConfList([d1], "absent"));
    expect(err.message).toContain("unreadable configs:");
    expect(err.message).toContain("00-broken.conflist");
    expect(err.message).toContain("01-invalid.conflist");
  });

  it.each(["../etc/passwd", "a/b", "..", ".", "/abs", "", "-dash"])("rejects %j as a network name", async (name) => {
    await put(d1, "10-good.conflist", list("good", "g"));
    const err = await configError(findConfList([d1], name));
    expect(err.message).toContain("is not a CNI network name");
  });

  it("skips directories and dangling symlinks named like configs (libcni skips directories)", async () => {
    await mkdir(join(d1, "00-dir.conflist"));
    await symlink(join(d1, "nowhere.json"), join(d1, "01-dangling.conf"));
    await put(d1, "10-good.conflist", list("good", "g"));
    expect(marker(await findConfList([d1], "good"))).toBe("g");
    const err = await configError(findConfList([d1], "absent"));
    expect(err.message).toContain("(available: good)");
  });

  it("lists the available names when the name is unknown", async () => {
    await put(d1, "10-alpha.conflist", list("alpha", "a"));
    await put(d1, "20-beta.conf", single("beta", "b"));
    await put(d2, "30-gamma.conflist", list("gamma", "c"));
    await put(d2, "40-alpha.conflist", list("alpha", "a2"));
    const err = await configError(findConfList([d1, d2], "delta"));
    expect(err.message).toContain(`no CNI network named "delta" in ${d1}, ${d2}`);
    expect(err.message).toContain("(available: alpha, beta, gamma)");
  });

  it("says so when the dirs are empty or missing", async () => {
    const err = await configError(findConfList([d1, join(d2, "does-not-exist")], "x"));
    expect(err.message).toContain("(no valid configs there)");
  });
});

describe("listConfFiles", () => {
  it("lists every config with its parse outcome, in lookup order", async () => {
    await mkdir(join(d1, "sub.conflist.d"));
    await put(d1, "b.conf", single("b", "b"));
    await put(d1, "a.json", "{");
    await put(d1, "z.conflist", list("z", "z"));
    const entries = await listConfFiles([d1]);
    expect(entries.map((e) => [e.file.slice(d1.length + 1), e.name, e.error ? "error" : "ok"])).toEqual([
      ["z.conflist", "z", "ok"],
      ["a.json", undefined, "error"],
      ["b.conf", "b", "ok"],
    ]);
    expect(entries[1]!.error).toMatch(/a\.json: not valid JSON/);
  });
});
