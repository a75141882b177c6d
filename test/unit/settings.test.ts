// Every command resolves the shared settings one way: flag, then environment, then default.
import { afterEach, describe, expect, it } from "vitest";
import { ENV_FALLBACKS, resolveSettings, settingEnvs, settingsHelp, SETTINGS_TABLE, DEFAULT_SOCKET } from "../../src/settings.js";
import { DEFAULT_DOCKER_SOCKET, dockerHostSocket } from "../../src/docker/socket.js";
import { parseCommandLine } from "../../src/cli/argv.js";

const ENV = ["CNI_SHIM_SOCKET", "CNI_SHIM_LOG_LEVEL", "CNI_SHIM_EXEC_TIMEOUT_MS", "CNI_PATH", "CNI_SHIM_DOCKER_SOCKET", "DOCKER_HOST"] as const;
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

  it("finds the Docker socket in --docker-socket, then CNI_SHIM_DOCKER_SOCKET, then DOCKER_HOST=unix://PATH, then the default", () => {
    clearEnv();
    expect(resolveSettings({}).dockerSocket).toBe(DEFAULT_DOCKER_SOCKET);
    process.env.DOCKER_HOST = "unix:///run/docker-26.sock";
    expect(resolveSettings({}).dockerSocket).toBe("/run/docker-26.sock");
    process.env.CNI_SHIM_DOCKER_SOCKET = "/run/docker-28.sock";
    expect(resolveSettings({}).dockerSocket).toBe("/run/docker-28.sock");
    expect(resolveSettings({ "docker-socket": "" }).dockerSocket).toBe("/run/docker-28.sock");
    expect(resolveSettings({ "docker-socket": "/run/flag.sock" }).dockerSocket).toBe("/run/flag.sock");
    process.env.DOCKER_HOST = "";
    delete process.env.CNI_SHIM_DOCKER_SOCKET;
    expect(resolveSettings({}).dockerSocket).toBe(DEFAULT_DOCKER_SOCKET);
  });

  it("refuses a DOCKER_HOST it cannot use, but only when nothing before it names the socket", () => {
    clearEnv();
    for (const host of ["tcp://10.0.0.5:2376", "ssh://me@engine", "fd://", "npipe:////./pipe/docker_engine", "engine.example:2375", "unix://", "unix://run/docker.sock"]) {
      process.env.DOCKER_HOST = host;
      expect(() => resolveSettings({}), host).toThrow(/--docker-socket PATH/);
    }
    process.env.DOCKER_HOST = "tcp://10.0.0.5:2376";
    expect(() => resolveSettings({})).toThrow("DOCKER_HOST=tcp://10.0.0.5:2376: cni-shim needs the engine's unix socket");
    expect(resolveSettings({ "docker-socket": "/run/flag.sock" }).dockerSocket).toBe("/run/flag.sock");
    process.env.CNI_SHIM_DOCKER_SOCKET = "/run/env.sock";
    expect(resolveSettings({}).dockerSocket).toBe("/run/env.sock");
    // No other setting reads DOCKER_HOST.
    expect(Object.keys(ENV_FALLBACKS)).toEqual(["--docker-socket"]);
  });

  it("converts numbers, choices and the CNI path, and names the flag of a bad value", () => {
    clearEnv();
    const s = resolveSettings({ "exec-timeout-ms": "1500", teardown: "sync", "cni-path": "/a:/b" });
    expect(s).toMatchObject({ execTimeoutMs: 1500, teardownMode: "sync", cniPath: ["/a", "/b"] });
    expect(() => resolveSettings({ "reconcile-grace": "-1" })).toThrow(/--reconcile-grace must be a non-negative number/);
    expect(() => resolveSettings({ teardown: "later" })).toThrow(/--teardown must be one of background, sync/);
  });

  it("accepts forwarding by default; --accept-forwarding false (or its variable) turns it off", () => {
    clearEnv();
    expect(resolveSettings({}).acceptForwarding).toBe(true);
    expect(resolveSettings({ "accept-forwarding": "false" }).acceptForwarding).toBe(false);
    process.env.CNI_SHIM_ACCEPT_FORWARDING = "false";
    try {
      expect(resolveSettings({}).acceptForwarding).toBe(false);
    } finally {
      delete process.env.CNI_SHIM_ACCEPT_FORWARDING;
    }
    expect(() => resolveSettings({ "accept-forwarding": "no" })).toThrow(/--accept-forwarding must be one of true, false/);
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
    for (const [flag, , def] of SETTINGS_TABLE) {
      expect(all).toContain(flag);
      expect(all).toContain(`env ${settingEnvs(flag)}, default ${def}`);
    }
    expect(all).toContain(`env CNI_SHIM_DOCKER_SOCKET, then DOCKER_HOST=unix://PATH, default ${DEFAULT_DOCKER_SOCKET}`);
    const some = settingsHelp(["--socket"]);
    expect(some).toContain("--socket");
    expect(some).not.toContain("--state-dir");
  });
});

describe("dockerHostSocket", () => {
  it("takes the path of unix:///PATH and names --docker-socket for every other form", () => {
    expect(dockerHostSocket("unix:///var/run/docker.sock")).toBe("/var/run/docker.sock");
    expect(dockerHostSocket("unix:///run/user/0/docker.sock")).toBe("/run/user/0/docker.sock");
    expect(() => dockerHostSocket("ssh://me@engine")).toThrow("DOCKER_HOST=ssh://me@engine: cni-shim needs the engine's unix socket; pass the engine's socket with --docker-socket PATH");
    expect(() => dockerHostSocket("unix://docker.sock")).toThrow(/needs an absolute path/);
  });
});
