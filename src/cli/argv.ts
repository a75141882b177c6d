// Every command reads its command line here: its own options plus the shared settings (flag,
// environment, default), and the log level applied before it runs.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { resolveSettings, SETTINGS_TABLE, type SettingFlag, type Settings } from "../settings.js";
import { setLogLevel } from "../util/log.js";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Values<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; strict: true; allowPositionals: true }>>["values"];

/** parseArgs options of the settings: each `--flag VALUE`. */
const settingOptions: Options = Object.fromEntries(SETTINGS_TABLE.map(([flag]) => [flag.slice(2), { type: "string" as const }]));

export interface CommandLine<O extends Options> {
  settings: Settings;
  /** The command's own options (the settings are in `settings`). */
  values: Values<O>;
  positionals: string[];
}

export function parseCommandLine<const O extends Options>(
  argv: string[],
  options: O,
  how: { positionals?: boolean; defaults?: Partial<Record<SettingFlag, string>> } = {},
): CommandLine<O> {
  const { values, positionals } = parseArgs({ args: argv, options: { ...settingOptions, ...options }, allowPositionals: how.positionals ?? false, strict: true });
  const settings = resolveSettings(values, how.defaults);
  setLogLevel(settings.logLevel);
  return { settings, values, positionals };
}
