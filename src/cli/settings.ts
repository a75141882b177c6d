// Settings shared by the subcommands: flag, then environment variable, then default.
import { parseArgs } from "node:util";
import { setLogLevel } from "../util/log.js";
import { DEFAULT_CONF_DIR, EMBEDDED_CONF_DIR } from "../cni/config.js";
import { DEFAULT_CACHE_DIR } from "../cni/cache.js";
import { parseCniPath } from "../cni/plugins.js";
import { DEFAULT_EXEC_TIMEOUT_MS } from "../cni/runtime.js";
import { DEFAULT_STATE_DIR } from "../driver/state.js";
import { DEFAULT_DOCKER_SOCKET } from "../docker/client.js";

export const DEFAULT_SOCKET = "/run/docker/plugins/cni-shim.sock";

export interface Settings {
  socket: string;
  confDir: string;
  cniPath: string[];
  stateDir: string;
  cacheDir: string;
  execTimeoutMs: number;
  dockerSocket: string;
  logLevel: string;
  reconcileIntervalS: number;
  reconcileGraceS: number;
  backgroundTeardown: boolean;
}

/** name, env var, default, help: the single table the CLI help and the README follow. */
export const SETTINGS_TABLE = [
  ["--socket", "CNI_SHIM_SOCKET", DEFAULT_SOCKET, "unix socket Docker finds the plugin on (the file name is the driver name)"],
  ["--conf-dir", "CNI_SHIM_CONF_DIR", DEFAULT_CONF_DIR, "CNI conf dir searched for -o cni.network=NAME (embedded configs come after it)"],
  ["--cni-path", "CNI_PATH", "/opt/cni/bin:/usr/lib/cni", "directories searched for CNI plugin binaries"],
  ["--state-dir", "CNI_SHIM_STATE_DIR", DEFAULT_STATE_DIR, "network and endpoint records"],
  ["--cache-dir", "CNI_SHIM_CACHE_DIR", DEFAULT_CACHE_DIR, "CNI result cache (libcni layout: <dir>/results)"],
  ["--exec-timeout-ms", "CNI_SHIM_EXEC_TIMEOUT_MS", String(DEFAULT_EXEC_TIMEOUT_MS), "a plugin exec taking longer is killed and the operation rolled back"],
  ["--docker-socket", "CNI_SHIM_DOCKER_SOCKET", DEFAULT_DOCKER_SOCKET, "Docker API socket used for reconciliation"],
  ["--log-level", "CNI_SHIM_LOG_LEVEL", "info", "debug, info, warn or error"],
  ["--reconcile-interval", "CNI_SHIM_RECONCILE_INTERVAL", "300", "seconds between reconciliations with Docker (0 = only at start and on Activate)"],
  ["--teardown", "CNI_SHIM_TEARDOWN", "background", "background: CNI DEL runs after DeleteEndpoint replied (faster docker stop/rm); sync: before"],
  ["--reconcile-grace", "CNI_SHIM_RECONCILE_GRACE", "60", "seconds an endpoint must exist before reconciliation may remove it (Docker may be mid-start)"],
] as const;

export const settingFlags = Object.fromEntries(SETTINGS_TABLE.map(([flag]) => [flag.slice(2), { type: "string" as const }]));

export function resolveSettings(values: Record<string, string | boolean | undefined>): Settings {
  const get = (flag: string, env: string, def: string): string => {
    const v = values[flag.slice(2)];
    if (typeof v === "string" && v !== "") return v;
    return process.env[env] || def;
  };
  const byFlag = Object.fromEntries(SETTINGS_TABLE.map(([flag, env, def]) => [flag, get(flag, env, def)]));
  const num = (flag: string) => {
    const n = Number(byFlag[flag]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a non-negative number, got "${byFlag[flag]}"`);
    return n;
  };
  const choice = (flag: string, allowed: string[]) => {
    const v = byFlag[flag]!;
    if (!allowed.includes(v)) throw new Error(`${flag} must be one of ${allowed.join(", ")}, got "${v}"`);
    return v;
  };
  return {
    socket: byFlag["--socket"]!,
    confDir: byFlag["--conf-dir"]!,
    cniPath: parseCniPath(byFlag["--cni-path"]),
    stateDir: byFlag["--state-dir"]!,
    cacheDir: byFlag["--cache-dir"]!,
    execTimeoutMs: num("--exec-timeout-ms"),
    dockerSocket: byFlag["--docker-socket"]!,
    logLevel: byFlag["--log-level"]!,
    reconcileIntervalS: num("--reconcile-interval"),
    reconcileGraceS: num("--reconcile-grace"),
    backgroundTeardown: choice("--teardown", ["background", "sync"]) === "background",
  };
}

export function confDirs(s: Settings): string[] {
  return [s.confDir, EMBEDDED_CONF_DIR];
}

/** For commands that take only the shared settings: parse, resolve, apply the log level. */
export function settingsFromArgv(argv: string[]): Settings {
  const { values } = parseArgs({ args: argv, options: settingFlags, allowPositionals: false });
  const settings = resolveSettings(values);
  setLogLevel(settings.logLevel);
  return settings;
}
