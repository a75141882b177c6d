// `cni-shim doctor`, check cni-plugins: the plugin set in use (each plugin name taken from the
// first --cni-path directory that has it, as libcni's FindInPath does) and the CNI versions each
// speaks, asked with VERSION under a short timeout. The grouping of the answers is pure.
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Settings } from "../settings.js";
import { VersionProbe, compareVersions } from "../cni/version.js";
import { pass, problem, type Check } from "./results.js";

export interface PluginVersions {
  name: string;
  dir: string;
  versions?: string[];
  error?: string;
}

/** The spec versions in order: a run of them is written "first to last". */
const SPEC_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
/** VERSION is instant for a real plugin; doctor must not hang on something else in the dir. */
const VERSION_TIMEOUT_MS = 5_000;

function versionText(versions: string[]): string {
  const sorted = [...versions].sort(compareVersions);
  const start = SPEC_VERSIONS.indexOf(sorted[0] ?? "");
  const contiguous = start >= 0 && sorted.length >= 3 && sorted.every((v, i) => SPEC_VERSIONS[start + i] === v);
  return contiguous ? `${sorted[0]} to ${sorted.at(-1)}` : sorted.join(", ");
}

/** "0.1.0 to 1.1.0: bridge, host-local; 0.4.0 to 1.1.0: firewall", widest first. */
export function describePluginVersions(plugins: PluginVersions[]): string {
  const groups = new Map<string, string[]>();
  for (const p of plugins.filter((p) => p.versions)) {
    const key = versionText(p.versions!);
    groups.set(key, [...(groups.get(key) ?? []), p.name]);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([versions, names]) => `${versions}: ${names.join(", ")}`)
    .join("; ");
}

/** The plugin set in use: each executable name once, from the first directory that has it. */
async function pluginsInUse(cniPath: string[]): Promise<Array<{ name: string; dir: string }>> {
  const seen = new Map<string, string>();
  for (const dir of cniPath) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.sort()) {
      if (seen.has(name)) continue;
      const st = await stat(join(dir, name)).catch(() => undefined);
      if (st?.isFile() && st.mode & 0o111) seen.set(name, dir);
    }
  }
  return [...seen.entries()].map(([name, dir]) => ({ name, dir }));
}

async function probePluginSet(settings: Settings): Promise<PluginVersions[]> {
  const probe = new VersionProbe(settings.cniPath, Math.min(settings.execTimeoutMs, VERSION_TIMEOUT_MS));
  return Promise.all(
    (await pluginsInUse(settings.cniPath)).map(({ name, dir }) =>
      probe.supported(join(dir, name)).then(
        (versions): PluginVersions => ({ name, dir, versions }),
        (err: Error): PluginVersions => ({ name, dir, error: err.message.split("\n")[0] }),
      ),
    ),
  );
}

export const cniPluginSetCheck: Check = async ({ settings }) => {
  const plugins = await probePluginSet(settings);
  if (!plugins.length) {
    return problem("fail", "cni-shim", "cni-plugins", `no CNI plugins in ${settings.cniPath.join(":")}`, "install the reference plugins (Debian: apt-get install containernetworking-plugins) or set --cni-path / CNI_PATH to where they are");
  }
  const dirs = [...new Set(plugins.map((p) => p.dir))].map((d) => `${d} (${plugins.filter((p) => p.dir === d).length})`);
  const summary = `plugin set in use: ${dirs.join(", ")}; CNI versions: ${describePluginVersions(plugins)}`;
  const details = { plugins: Object.fromEntries(plugins.map((p) => [p.name, { path: join(p.dir, p.name), versions: p.versions, error: p.error }])) };
  const silent = plugins.filter((p) => p.error);
  if (silent.length) {
    return problem("warn", "cni-shim", "cni-plugins", `${summary}; no VERSION answer from ${silent.map((p) => `${p.name} (${p.error})`).join(", ")}`, "remove what is not a CNI plugin from the --cni-path directories, or replace the plugin binaries that do not answer VERSION", details);
  }
  return pass("cni-shim", "cni-plugins", summary, details);
};
