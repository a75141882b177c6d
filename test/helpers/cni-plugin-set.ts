// The CNI plugin set the tests run on (scripts/cni-plugins.sh), picked with CNI_SHIM_CNI_PLUGINS:
// "1.1" (default) the system's containernetworking-plugins 1.1.1 in /usr/lib/cni, speaking CNI up
// to 1.0.0; "1.9" Debian sid's 1.9.1, fetched beside it, speaking up to 1.1.0.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const CNI_PLUGINS = process.env.CNI_SHIM_CNI_PLUGINS ?? "1.1";

/** A set's plugin directory as scripts/cni-plugins.sh knows it (throws when it is not fetched). */
export function pluginSetDir(set: string): string {
  return execFileSync("bash", [join(ROOT, "scripts/cni-plugins.sh"), "dir", set], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** The set's plugin directory, or why there is none (requirePrerequisites says it loudly). */
function resolveDir(): { dir: string; problem?: string } {
  if (CNI_PLUGINS === "1.1" || CNI_PLUGINS === "system") return { dir: "/usr/lib/cni" };
  try {
    return { dir: pluginSetDir(CNI_PLUGINS) };
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
    return { dir: `/nonexistent/cni-plugins-${CNI_PLUGINS}`, problem: `CNI plugin set ${CNI_PLUGINS} (CNI_SHIM_CNI_PLUGINS): ${why} (make test fetches it)` };
  }
}

const resolved = resolveDir();
/** Every cni-shim the tests start gets it as --cni-path. */
export const CNI_PLUGIN_DIR = resolved.dir;
export const CNI_PLUGIN_SET_PROBLEM = resolved.problem;
// The CLI commands the tests run (compare, gc, attach, doctor) take CNI_PATH from here.
process.env.CNI_PATH = CNI_PLUGIN_DIR;

/** Does the set speak CNI 1.1.0 (STATUS, GC, cniVersions)? */
export const SPEAKS_1_1 = CNI_PLUGINS !== "1.1" && CNI_PLUGINS !== "system";

/**
 * A list's versions on this set: the 1.1.0 form where the plugins allow it, cniVersions as a
 * libcni 1.2 runtime reads it (the highest, 1.1.0, is sent); the list's own version otherwise.
 */
export function listVersions(own = "1.0.0"): { cniVersion: string; cniVersions?: string[] } {
  return SPEAKS_1_1 ? { cniVersion: own, cniVersions: [own, "1.1.0"] } : { cniVersion: own };
}

/** A list (parsed JSON) with this set's versions. */
export function onPluginSet<T extends { cniVersion?: string }>(list: T): T {
  return { ...list, ...listVersions(list.cniVersion) };
}
