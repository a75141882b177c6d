// The fault-injection suite (scripts/soak.mjs, `make soak`) in its short form, for real: kill -9
// of the plugin at random points in both teardown modes, dockerd kill -9 with --restart always
// containers, a simulated reboot, and the request fuzzer. It fails on any unexpected docker
// failure, connectivity failure, leak, or fuzzer finding. The long form runs by hand.
import { describe, expect, it } from "vitest";
import { execa } from "execa";
import { join } from "node:path";
import { ROOT, IMAGE, requirePrerequisites } from "../helpers/e2e.js";

describe("fault injection (short soak)", () => {
  it(
    "converges under kill -9, dockerd crashes, a reboot and hostile requests",
    async () => {
      await requirePrerequisites();
      const res = await execa(
        "node",
        [join(ROOT, "scripts/soak.mjs"), "--cycles", "16", "--kills", "4", "--teardown", "both", "--dockerd-kills", "1", "--reboot", "1", "--fuzz", "1500", "--timeout-s", "1500"],
        { reject: false, all: true, env: { ...process.env, CNI_SHIM_TEST_IMAGE: IMAGE }, timeout: 1_700_000 },
      );
      const out = String(res.all);
      const line = out.split("\n").find((l) => l.startsWith("SOAK_RESULT "));
      if (!line || res.exitCode !== 0) console.error(out.slice(-8000));
      expect(line, "soak printed no result").toBeDefined();
      const result = JSON.parse(line!.slice("SOAK_RESULT ".length)) as { ok: boolean; results: Record<string, { kills?: number }> };
      expect(result.results["cycles-background"]?.kills).toBeGreaterThanOrEqual(4);
      expect(result.results["cycles-sync"]?.kills).toBeGreaterThanOrEqual(4);
      expect(result.ok).toBe(true);
      expect(res.exitCode).toBe(0);
    },
    1_800_000,
  );
});
