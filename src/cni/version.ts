// VERSION probing and the choice of the cniVersion sent to a chain.
import { statSync } from "node:fs";
import { VersionResult, type ConfList } from "./schemas.js";
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
    const { mtimeMs } = statSync(pluginPath);
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

/** The spec version cni-shim implements (libcni's version.Current()): cniVersions above it are skipped. */
export const IMPLEMENTED_SPEC_VERSION = "1.1.0";

/**
 * The version libcni 1.2 sends a list (NetworkConfFromBytes): without "cniVersions", its
 * "cniVersion"; with it, the highest of both that is not above the implemented spec (when all
 * are above it, "cniVersion" as given). What the plugins speak plays no part in the choice.
 */
export function listVersion(list: Pick<ConfList, "name" | "cniVersion" | "cniVersions">): string {
  const within = [...(list.cniVersions ?? []), ...(list.cniVersion ? [list.cniVersion] : [])].filter((v) => compareVersions(v, IMPLEMENTED_SPEC_VERSION) <= 0);
  const chosen = list.cniVersions ? within.sort(compareVersions).at(-1) ?? list.cniVersion : list.cniVersion;
  if (!chosen) throw new CniRuntimeError(`network "${list.name}" lists only cniVersions above ${IMPLEMENTED_SPEC_VERSION} (${list.cniVersions?.join(", ")}), the CNI spec cni-shim speaks, and no "cniVersion": add one it speaks`);
  return chosen;
}

/** The highest version every plugin lists, if any (for the fix a failure suggests). */
function highestCommon(supportedByPlugin: Map<string, string[]>): string | undefined {
  const [first, ...rest] = [...supportedByPlugin.values()];
  return (first ?? []).filter((v) => rest.every((list) => list.includes(v))).sort(compareVersions).at(-1);
}

/**
 * The version to send, libcni's choice (listVersion), checked before anything runs against what
 * each plugin answered to VERSION, as libcni's ValidateNetworkList does: libcni itself would send
 * it anyway and the plugin would fail the ADD with code 1 (Debian's 1.1.1 plugins stop at 1.0.0).
 */
export function chooseVersion(list: Pick<ConfList, "name" | "cniVersion" | "cniVersions">, supportedByPlugin: Map<string, string[]>): string {
  const version = listVersion(list);
  const lacking = [...supportedByPlugin.entries()].filter(([, speaks]) => !speaks.includes(version));
  if (!lacking.length) return version;
  const asked = list.cniVersions ? `cniVersion ${version} (the highest of its "cniVersion" and "cniVersions" up to ${IMPLEMENTED_SPEC_VERSION}, as libcni chooses)` : `cniVersion ${version}`;
  const plugins = lacking.map(([plugin, speaks]) => `plugin "${plugin}" speaks only ${speaks.join(", ")}`).join("; ");
  const common = highestCommon(supportedByPlugin);
  const fix = common
    ? `set "cniVersion" to ${common}${list.cniVersions ? ` and drop the versions above it from "cniVersions"` : ""} (the highest all its plugins speak), or use plugins that speak ${version}`
    : `use plugins that speak one common version (containernetworking-plugins 1.2 or later speak 0.4.0 to 1.1.0)`;
  throw new CniRuntimeError(`network "${list.name}" asks for ${asked}, but ${plugins}: ${fix}`);
}
