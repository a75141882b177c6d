// One JSON object per line on stderr: easy to grep, easy to feed to jq or journald.
type LogLevel = "debug" | "info" | "warn" | "error";
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: number = order[(process.env.CNI_SHIM_LOG_LEVEL as LogLevel) ?? "info"] ?? order.info;

export function setLogLevel(level: string): void {
  const value = order[level as LogLevel];
  if (value === undefined) throw new Error(`unknown log level "${level}": use debug, info, warn or error`);
  threshold = value;
}

function emit(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
  if (order[level] < threshold) return;
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
}

export const log = {
  debug: (msg: string, fields: Record<string, unknown> = {}) => emit("debug", msg, fields),
  info: (msg: string, fields: Record<string, unknown> = {}) => emit("info", msg, fields),
  warn: (msg: string, fields: Record<string, unknown> = {}) => emit("warn", msg, fields),
  error: (msg: string, fields: Record<string, unknown> = {}) => emit("error", msg, fields),
};
