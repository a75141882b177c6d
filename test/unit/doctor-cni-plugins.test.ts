// doctor's cni-plugins check: the plugin set in use and the CNI versions each plugin speaks.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cniPluginSetCheck, describePluginVersions } from "../../src/doctor/cni-plugin-set.js";
import { resolveSettings } from "../../src/settings.js";
import type { CheckResult } from "../../src/doctor/results.js";

const upTo100 = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];

describe("describePluginVersions", () => {
  it("groups plugins by what they speak, a run of spec versions as 'first to last', the largest group first", () => {
    const text = describePluginVersions([
      { name: "firewall", dir: "/d", versions: ["0.4.0", "1.0.0"] },
      { name: "bridge", dir: "/d", versions: upTo100 },
      { name: "host-local", dir: "/d", versions: [...upTo100].reverse() },
      { name: "vrf", dir: "/d", versions: ["0.3.1", "0.4.0", "1.0.0", "1.1.0"] },
      { name: "broken", dir: "/d", error: "timed out" },
    ]);
    expect(text).toBe("0.1.0 to 1.0.0: bridge, host-local; 0.4.0, 1.0.0: firewall; 0.3.1 to 1.1.0: vrf");
  });
});

describe("cni-plugins check", () => {
  let base: string;
  const plugin = async (dir: string, name: string, body: string) => {
    await mkdir(join(base, dir), { recursive: true });
    await writeFile(join(base, dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(base, dir, name), 0o755);
  };
  const version = (vs: string[]) => `[ "$CNI_COMMAND" = VERSION ] && echo '{"cniVersion":"1.0.0","supportedVersions":${JSON.stringify(vs)}}'; exit 0`;
  // The timeout caps at 5 s: a loaded machine may take a while to start a shell script.
  const run = async (cniPath: string[], timeoutMs = 30_000) => (await cniPluginSetCheck({ settings: resolveSettings({ "cni-path": cniPath.join(":"), "exec-timeout-ms": String(timeoutMs) }), role: "worker" })) as CheckResult;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "cs-doc-plugins-"));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("names the directories in use and each plugin's versions; a name in a later dir is shadowed (its sleep 30 is never run)", async () => {
    await plugin("a", "bridge", version(["0.4.0", "1.0.0", "1.1.0"]));
    await plugin("b", "bridge", "sleep 30");
    await plugin("b", "firewall", version(["0.4.0", "1.0.0"]));
    await writeFile(join(base, "b", "README"), "not executable");
    const res = await run([join(base, "a"), join(base, "missing"), join(base, "b")]);
    expect(res.status).toBe("pass");
    expect(res.summary).toBe(`plugin set in use: ${join(base, "a")} (1), ${join(base, "b")} (1); CNI versions: 0.4.0 to 1.1.0: bridge; 0.4.0, 1.0.0: firewall`);
    expect(res.details).toEqual({
      plugins: {
        bridge: { path: join(base, "a", "bridge"), versions: ["0.4.0", "1.0.0", "1.1.0"], error: undefined },
        firewall: { path: join(base, "b", "firewall"), versions: ["0.4.0", "1.0.0"], error: undefined },
      },
    });
  });

  it("warns, naming what does not answer VERSION: a hang (killed at the timeout) or not a plugin", async () => {
    await plugin("a", "bridge", version(["1.0.0"]));
    await plugin("a", "hangs", "sleep 30");
    await plugin("a", "chatty", "echo hello");
    const res = await run([join(base, "a")], 2_000);
    expect(res.status).toBe("warn");
    expect(res.summary).toMatch(/^plugin set in use: .* \(3\); CNI versions: 1\.0\.0: bridge; no VERSION answer from chatty \(.+\), hangs \(CNI plugin "hangs" VERSION did not finish within 2000 ms and was killed\)$/);
    expect(res.fix).toContain("remove what is not a CNI plugin");
  });

  it("fails when there is no plugin at all", async () => {
    const res = await run([join(base, "none")]);
    expect(res).toMatchObject({ status: "fail", summary: `no CNI plugins in ${join(base, "none")}` });
  });
});
