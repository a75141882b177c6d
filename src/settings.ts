// The settings every command shares, resolved one way: flag, then environment variable, then
// default. The table is the single source for the CLI help, the README and /etc/default/cni-shim.
import { DEFAULT_CONF_DIR, EMBEDDED_CONF_DIR } from "./cni/config.js";
import { DEFAULT_CACHE_DIR } from "./cni/cache.js";
import { parseCniPath } from "./cni/plugins.js";
import { DEFAULT_EXEC_TIMEOUT_MS } from "./cni/runtime.js";
import { DEFAULT_STATE_DIR } from "./driver/state.js";
import { DEFAULT_DOCKER_SOCKET } from "./docker/socket.js";

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
  ["--docker-socket", "CNI_SHIM_DOCKER_SOCKET", DEFAULT_DOCKER_SOCKET, "Docker API socket used for reconciliation and restart recovery"],
  ["--log-level", "CNI_SHIM_LOG_LEVEL", "info", "debug, info, warn or error"],
  ["--reconcile-interval", "CNI_SHIM_RECONCILE_INTERVAL", "300", "seconds between reconciliations with Docker (0 = only at start and on Activate)"],
  ["--teardown", "CNI_SHIM_TEARDOWN", "background", "background: CNI DEL runs after DeleteEndpoint replied (faster docker stop/rm); sync: before"],
  ["--reconcile-grace", "CNI_SHIM_RECONCILE_GRACE", "60", "seconds an endpoint must exist before reconciliation may remove it (Docker may be mid-start)"],
] as const;

export type SettingFlag = (typeof SETTINGS_TABLE)[number][0];

/** The settings' part of a command's help: each flag with its meaning, variable and default. */
export function settingsHelp(only?: readonly SettingFlag[]): string {
  return SETTINGS_TABLE.filter(([flag]) => !only || only.includes(flag))
    .map(([flag, env, def, what]) => `  ${flag.padEnd(22)} ${what}\n  ${"".padEnd(22)} env ${env}, default ${def}`)
    .join("\n");
}

/**
 * Settings from parsed option values (keyed by flag name without "--"); an empty value counts
 * as unset. `defaults` replaces a table default for one command (compare logs less by default).
 */
export function resolveSettings(values: Record<string, unknown>, defaults: Partial<Record<SettingFlag, string>> = {}): Settings {
  const byFlag = Object.fromEntries(
    SETTINGS_TABLE.map(([flag, env, def]) => {
      const v = values[flag.slice(2)];
      return [flag, typeof v === "string" && v !== "" ? v : process.env[env] || (defaults[flag] ?? def)];
    }),
  ) as Record<SettingFlag, string>;
  const num = (flag: SettingFlag) => {
    const n = Number(byFlag[flag]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} must be a non-negative number, got "${byFlag[flag]}"`);
    return n;
  };
  const choice = (flag: SettingFlag, allowed: string[]) => {
    const v = byFlag[flag];
    if (!allowed.includes(v)) throw new Error(`${flag} must be one of ${allowed.join(", ")}, got "${v}"`);
    return v;
  };
  return {
    socket: byFlag["--socket"],
    confDir: byFlag["--conf-dir"],
    cniPath: parseCniPath(byFlag["--cni-path"]),
    stateDir: byFlag["--state-dir"],
    cacheDir: byFlag["--cache-dir"],
    execTimeoutMs: num("--exec-timeout-ms"),
    dockerSocket: byFlag["--docker-socket"],
    logLevel: byFlag["--log-level"],
    reconcileIntervalS: num("--reconcile-interval"),
    reconcileGraceS: num("--reconcile-grace"),
    backgroundTeardown: choice("--teardown", ["background", "sync"]) === "background",
  };
}

/** Where CNI network lists are looked up: the conf dir, then the embedded ones. */
export function confDirs(s: Settings): string[] {
  return [s.confDir, EMBEDDED_CONF_DIR];
}
