// The settings every command shares, resolved one way: flag, then environment variable (then,
// for --docker-socket, DOCKER_HOST), then default. The table (with ENV_FALLBACKS) is the single
// source for the CLI help, the README and /etc/default/cni-shim.
import { DEFAULT_CONF_DIR, EMBEDDED_CONF_DIR } from "./cni/config.js";
import { DEFAULT_CACHE_DIR } from "./cni/cache.js";
import { parseCniPath } from "./cni/plugins.js";
import { DEFAULT_EXEC_TIMEOUT_MS } from "./cni/runtime.js";
import { DEFAULT_STATE_DIR } from "./driver/state.js";
import { DEFAULT_TEARDOWN_MODE, type TeardownMode } from "./driver/endpoints.js";
import { ATTACH_MODES, type AttachMode } from "./driver/attach-choice.js";
import { DEFAULT_DOCKER_SOCKET, dockerHostSocket } from "./docker/socket.js";

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
  teardownMode: TeardownMode;
  attach: AttachMode;
  acceptForwarding: boolean;
}

/** name, env var, default, help: the single table the CLI help and the README follow. */
export const SETTINGS_TABLE = [
  ["--socket", "CNI_SHIM_SOCKET", DEFAULT_SOCKET, "unix socket Docker finds the plugin on (the file name is the driver name)"],
  ["--conf-dir", "CNI_SHIM_CONF_DIR", DEFAULT_CONF_DIR, "CNI conf dir searched for -o cni.network=NAME (embedded configs come after it)"],
  ["--cni-path", "CNI_PATH", "/opt/cni/bin:/usr/lib/cni", "directories searched for CNI plugin binaries"],
  ["--state-dir", "CNI_SHIM_STATE_DIR", DEFAULT_STATE_DIR, "network and endpoint records"],
  ["--cache-dir", "CNI_SHIM_CACHE_DIR", DEFAULT_CACHE_DIR, "CNI result cache (libcni layout: <dir>/results)"],
  ["--exec-timeout-ms", "CNI_SHIM_EXEC_TIMEOUT_MS", String(DEFAULT_EXEC_TIMEOUT_MS), "a plugin exec taking longer is killed and the operation rolled back"],
  ["--docker-socket", "CNI_SHIM_DOCKER_SOCKET", DEFAULT_DOCKER_SOCKET, "the Docker engine's API socket: every command that asks Docker uses it (serve: reconciliation and restart recovery)"],
  ["--log-level", "CNI_SHIM_LOG_LEVEL", "info", "debug, info, warn or error"],
  ["--reconcile-interval", "CNI_SHIM_RECONCILE_INTERVAL", "300", "seconds between reconciliations with Docker (0 = only at start and on Activate)"],
  ["--teardown", "CNI_SHIM_TEARDOWN", DEFAULT_TEARDOWN_MODE, "background: CNI DEL runs after DeleteEndpoint replied (faster docker stop/rm); sync: before"],
  ["--attach", "CNI_SHIM_ATTACH", "auto", "how an interface reaches its container: auto (what the engine's Joins show), handoff (chain in a staging namespace, interface handed to Docker), sandbox (chain at Join in the container's namespace, interface left there: Docker 28+; auto hands it to Docker after)"],
  ["--reconcile-grace", "CNI_SHIM_RECONCILE_GRACE", "60", "seconds an endpoint must exist before reconciliation may remove it (Docker may be mid-start)"],
  ["--accept-forwarding", "CNI_SHIM_ACCEPT_FORWARDING", "true", "true: forwarding of networks whose chain has no firewall plugin is accepted in iptables chain CNI-SHIM-FORWARD (dockerd's FORWARD policy is DROP), as Docker's bridge driver does; false: you manage the firewall yourself"],
] as const;

export type SettingFlag = (typeof SETTINGS_TABLE)[number][0];

export interface EnvFallback {
  env: string;
  /** The form of value it takes, for the help. */
  form: string;
  /** The setting's value from the variable's; throws (naming the variable) on a form it cannot use. */
  read(value: string): string;
}

/**
 * Variables read after a setting's own variable and before its default: DOCKER_HOST, the way the
 * docker CLI reads it, so `DOCKER_HOST=unix:///run/docker-26.sock cni-shim ...` targets that engine.
 */
export const ENV_FALLBACKS: Partial<Record<SettingFlag, EnvFallback>> = {
  "--docker-socket": { env: "DOCKER_HOST", form: "unix://PATH", read: dockerHostSocket },
};

/** The variables a setting reads, in order: "CNI_SHIM_DOCKER_SOCKET, then DOCKER_HOST=unix://PATH". */
export function settingEnvs(flag: SettingFlag): string {
  const env = SETTINGS_TABLE.find(([f]) => f === flag)![1];
  const fallback = ENV_FALLBACKS[flag];
  return fallback ? `${env}, then ${fallback.env}=${fallback.form}` : env;
}

/** The settings' part of a command's help: each flag with its meaning, variable(s) and default. */
export function settingsHelp(only?: readonly SettingFlag[]): string {
  return SETTINGS_TABLE.filter(([flag]) => !only || only.includes(flag))
    .map(([flag, , def, what]) => `  ${flag.padEnd(22)} ${what}\n  ${"".padEnd(22)} env ${settingEnvs(flag)}, default ${def}`)
    .join("\n");
}

/** A setting's value from the environment: its own variable, then its fallback's; undefined when unset. */
function fromEnvironment(flag: SettingFlag, env: string): string | undefined {
  if (process.env[env]) return process.env[env];
  const fallback = ENV_FALLBACKS[flag];
  const value = fallback && process.env[fallback.env];
  return value ? fallback.read(value) : undefined;
}

/**
 * Settings from parsed option values (keyed by flag name without "--"): flag, then environment
 * (fromEnvironment), then default; an empty value counts as unset. `defaults` replaces a table
 * default for one command (compare logs less by default), never a flag or the environment.
 */
export function resolveSettings(values: Record<string, unknown>, defaults: Partial<Record<SettingFlag, string>> = {}): Settings {
  const byFlag = Object.fromEntries(
    SETTINGS_TABLE.map(([flag, env, def]) => {
      const v = values[flag.slice(2)];
      return [flag, typeof v === "string" && v !== "" ? v : (fromEnvironment(flag, env) ?? defaults[flag] ?? def)];
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
    teardownMode: choice("--teardown", ["background", "sync"]) as TeardownMode,
    attach: choice("--attach", [...ATTACH_MODES]) as AttachMode,
    acceptForwarding: choice("--accept-forwarding", ["true", "false"]) === "true",
  };
}

/** Where CNI network lists are looked up: the conf dir, then the embedded ones. */
export function confDirs(s: Settings): string[] {
  return [s.confDir, EMBEDDED_CONF_DIR];
}
