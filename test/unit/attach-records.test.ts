// One damaged attachment record must not stop `cni-shim gc` (or detach) for all the others.
import { afterAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Docker from "dockerode";
import { Attacher, type AttachmentRecord } from "../../src/attach/attach.js";
import type { CniRuntime } from "../../src/cni/runtime.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("attachment records", () => {
  it("skips a file that is not JSON or not a record, and lists the rest", async () => {
    const state = await mkdtemp(join(tmpdir(), "cnishim-att-"));
    dirs.push(state);
    await mkdir(join(state, "attachments"));
    const good: AttachmentRecord = {
      containerId: "c".repeat(64),
      containerName: "web",
      network: "net1",
      conflist: "{}",
      netns: "/proc/1/ns/net",
      ifName: "eth0",
      portMappings: [],
      cniArgs: [],
      result: { cniVersion: "1.0.0" },
      createdAt: new Date().toISOString(),
    };
    await writeFile(join(state, "attachments", "good.json"), JSON.stringify(good));
    await writeFile(join(state, "attachments", "torn.json"), '{"containerId": "abc", ');
    await writeFile(join(state, "attachments", "other.json"), JSON.stringify({ hello: 1 }));
    const attacher = new Attacher({} as CniRuntime, {} as Docker, state, []);
    const list = await attacher.list();
    expect(list.map((a) => a.containerName)).toEqual(["web"]);
  });
});
