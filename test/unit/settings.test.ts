// Every command resolves the shared settings one way: flag, then environment, then default.
import { afterEach, describe, expect, it } from "vitest";
import { resolveSettings, settingsHelp, SETTINGS_TABLE, DEFAULT_SOCKET } from "../../src/settings.js";
import { parseCommandLine } from "../../src/cli/argv.js";

const ENV = ["CNI_SHIM_SOCKET", "CNI_SHIM_LOG_LEVEL", "CNI_SHIM_EXEC_TIMEOUT_MS", "CNI_PATH"] as const;
const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const k of ENV) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});
const clearEnv = () => ENV.forEach((k) => delete process.env[k]);

describe("resolveSettings", () => {
  it("takes the flag, then the environment variable, then the default; an empty flag counts as unset", () => {
    clearEnv();
    expect(resolveSettings({}).socket).toBe(DEFAULT_SOCKET);
    process.env.CNI_SHIM_SOCKET = "/run/env.sock";
    expect(resolveSettings({}).socket).toBe("/run/env.sock");
    expect(resolveSettings({ socket: "" }).socket).toBe("/run/env.sock");
    expect(resolveSettings({ socket: "/run/flag.sock" }).socket).toBe("/run/flag.sock");
  });

  it("lets a command replace a default, never a flag or the environment", () => {
    clearEnv();
    expect(resolveSettings({}, { "--log-level": "warn" }).logLevel).toBe("warn");
    process.env.CNI_SHIM_LOG_LEVEL = "debug";
    expect(resolveSettings({}, { "--log-level": "warn" }).logLevel).toBe("debug");
    expect(resolveSettings({ "log-level": "error" }, { "--log-level": "warn" }).logLevel).toBe("error");
  });

  it("converts numbers, choices and the CNI path, and names the flag of a bad value", () => {
    clearEnv();
    const s = resolveSettings({ "exec-timeout-ms": "1500", teardown: "sync", "cni-path": "/a:/b" });
    expect(s).toMatchObject({ execTimeoutMs: 1500, backgroundTeardown: false, cniPath: ["/a", "/b"] });
    expect(() => resolveSettings({ "reconcile-grace": "-1" })).toThrow(/--reconcile-grace must be a non-negative number/);
    expect(() => resolveSettings({ teardown: "later" })).toThrow(/--teardown must be one of background, sync/);
  });
});

describe("parseCommandLine", () => {
  it("separates the command's own options from the settings", () => {
    clearEnv();
    const line = parseCommandLine(["--json", "--state-dir", "/tmp/s", "web"], { json: { type: "boolean" } }, { positionals: true });
    expect(line.values.json).toBe(true);
    expect(line.settings.stateDir).toBe("/tmp/s");
    expect(line.positionals).toEqual(["web"]);
  });

  it("refuses positionals and unknown options unless the command takes them", () => {
    expect(() => parseCommandLine(["web"], {})).toThrow();
    expect(() => parseCommandLine(["--frobnicate"], {})).toThrow();
  });

  it("refuses an unknown log level before the command runs", () => {
    expect(() => parseCommandLine(["--log-level", "loud"], {})).toThrow(/unknown log level "loud"/);
  });
});

describe("settingsHelp", () => {
  it("shows every setting with its variable and default, or only the ones asked for", () => {
    const all = settingsHelp();
    for (const [flag, env, def] of SETTINGS_TABLE) {
      expect(all).toContain(flag);
      expect(all).toContain(`env ${env}, default ${def}`);
    }
    const some = settingsHelp(["--socket"]);
    expect(some).toContain("--socket");
    expect(some).not.toContain("--state-dir");
  });
});
