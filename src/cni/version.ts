// VERSION probing and the choice of the cniVersion sent to a chain.
import { stat } from "node:fs/promises";
import { VersionResult } from "./schemas.js";
import { CniRuntimeError, CniPluginError } from "./errors.js";
import { execPlugin, type ExecObserver } from "./invoke.js";
import { describeIssues } from "../util/zod.js";

export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Supported versions per plugin binary, cached by path and mtime (an upgrade re-probes). */
export class VersionProbe {
  private cache = new Map<string, { mtimeMs: number; versions: string[] }>();

  constructor(private readonly cniPath: string[], private readonly timeoutMs: number, private readonly observe?: ExecObserver) {}

  async supported(pluginPath: string): Promise<string[]> {
    const { mtimeMs } = await stat(pluginPath);
    const hit = this.cache.get(pluginPath);
    if (hit && hit.mtimeMs === mtimeMs) return hit.versions;
    // Ask in the oldest dialect every plugin understands; the reply lists everything it speaks.
    const out = await execPlugin(
      { pluginPath, command: "VERSION", cniPath: this.cniPath, stdin: { cniVersion: "0.4.0" }, timeoutMs: this.timeoutMs },
      this.observe,
    );
    const parsed = VersionResult.safeParse(out);
    if (!parsed.success) {
      throw new CniPluginError(pluginPath, "VERSION", undefined, `unexpected VERSION reply: ${describeIssues(parsed.error)}`, undefined, "");
    }
    this.cache.set(pluginPath, { mtimeMs, versions: parsed.data.supportedVersions });
    return parsed.data.supportedVersions;
  }
}

/**
 * The version to send: the highest of the list's cniVersion/cniVersions that every plugin
 * lists. Never a version a plugin does not speak (Debian's 1.1.1 plugins stop at 1.0.0 and
 * answer 1.1.0 with code 1).
 */
export function chooseVersion(listName: string, wanted: string[], supportedByPlugin: Map<string, string[]>): string {
  const candidates = [...new Set(wanted)].sort((a, b) => compareVersions(b, a));
  for (const v of candidates) {
    if ([...supportedByPlugin.values()].every((list) => list.includes(v))) return v;
  }
  const lacking = [...supportedByPlugin.entries()]
    .filter(([, list]) => !candidates.some((v) => list.includes(v)))
    .map(([plugin, list]) => `${plugin} speaks ${list.join(", ")}`);
  throw new CniRuntimeError(
    `network "${listName}" asks for cniVersion ${candidates.join(" or ")}, but ${lacking.join("; ") || "no single version is spoken by all its plugins"}: set "cniVersion" (or "cniVersions") in the conflist to a version all its plugins support`,
  );
}
