// The README documents what the CLI really offers: every command and every setting.
import { describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { execa } from "execa";
import { ENV_FALLBACKS, SETTINGS_TABLE } from "../../src/settings.js";

const root = new URL("../../", import.meta.url);
const cli = new URL("dist/cli/main.js", root).pathname;

describe("CLI help and README", () => {
  it("lists every command of `cni-shim --help` in the README, and each has its own help", async () => {
    const readme = await readFile(new URL("README.md", root), "utf8");
    const help = (await execa("node", [cli, "--help"])).stdout;
    const names = [...help.matchAll(/^ {2}(\w+) {2,}/gm)].map((m) => m[1]!);
    expect(names).toEqual(expect.arrayContaining(["serve", "gc", "endpoints", "attach", "detach", "compare", "doctor"]));
    for (const name of names) {
      expect(readme).toContain(`cni-shim ${name}`);
      const own = await execa("node", [cli, name, "--help"]);
      expect(own.stdout).toMatch(new RegExp(`^Usage: cni-shim ${name}`));
    }
  });

  it("documents every setting with its environment variable and default", async () => {
    const readme = await readFile(new URL("README.md", root), "utf8");
    for (const [flag, env, def] of SETTINGS_TABLE) {
      const row = readme.split("\n").find((l) => l.startsWith(`| \`${flag}\``));
      expect(row, `README row for ${flag}`).toBeDefined();
      expect(row).toContain(`\`${env}\``);
      expect(row).toContain(`\`${def}\``);
      const fallback = ENV_FALLBACKS[flag];
      if (fallback) expect(row).toContain(`then \`${fallback.env}\``);
    }
  });

  it("rejects an unknown command with usage and exit code 2", async () => {
    const res = await execa("node", [cli, "frobnicate"], { reject: false });
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toContain('unknown command "frobnicate"');
  });
});
