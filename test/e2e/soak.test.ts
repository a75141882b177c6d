// The fault-injection suite (scripts/soak.ts, `make soak`; make build compiles it to dist/scripts) in its short form, for real: kill -9
// of the plugin at random points in both teardown modes, dockerd kill -9 with --restart always
// containers, plugin and dockerd killed with dockerd back first (the plugin must start the
// containers Docker gave up on), a simulated reboot, and the request fuzzer. It fails on any unexpected docker
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
        [join(ROOT, "dist/scripts/soak.js"), "--cycles", "16", "--kills", "4", "--teardown", "both", "--dockerd-kills", "1", "--dockerd-first", "1", "--reboot", "1", "--fuzz", "1500", "--timeout-s", "1500"],
        { reject: false, all: true, env: { ...process.env, CNI_SHIM_TEST_IMAGE: IMAGE }, timeout: 1_700_000 },
      );
      const out = String(res.all);
      const line = out.split("\n").find((l) => l.startsWith("SOAK_RESULT "));
      if (!line || res.exitCode !== 0) console.error(out.slice(-8000));
      expect(line, "soak printed no result").toBeDefined();
      const result = JSON.parse(line!.slice("SOAK_RESULT ".length)) as { ok: boolean; results: Record<string, Record<string, unknown> & { kills?: number }> };
      expect(result.results["cycles-background"]?.kills).toBeGreaterThanOrEqual(4);
      expect(result.results["cycles-sync"]?.kills).toBeGreaterThanOrEqual(4);
      // Dockerd back first: Docker gave up on containers while the plugin was down (20.10 does;
      // an engine that retries would start them itself), and every container Docker tried is
      // back with networking; the user's stop and Docker's own "stopped" verdicts stand.
      const df = result.results["dockerd-first"] as { rounds: number; containers: number; tried: number; failedWhileDown: number; notTriedByDocker: string[]; back: number; startedByPlugin: number; userStoppedStayedStopped: number; freshRunOk: number; notBack: string[] };
      expect(df.rounds).toBe(1);
      expect(df.notBack).toEqual([]);
      expect(df.tried + df.notTriedByDocker.length).toBe(df.containers);
      expect(df.back).toBe(df.tried);
      expect(df.startedByPlugin).toBeLessThanOrEqual(df.failedWhileDown);
      expect(df.userStoppedStayedStopped).toBe(1);
      expect(df.freshRunOk).toBe(1);
      if (!process.env.CNI_SHIM_ENGINE) {
        // The system dockerd (20.10) gives up on them, and only the plugin brings them back.
        expect(df.failedWhileDown).toBeGreaterThan(0);
        expect(df.startedByPlugin).toBe(df.failedWhileDown);
      }
      expect(result.ok).toBe(true);
      expect(res.exitCode).toBe(0);
    },
    1_800_000,
  );
});
