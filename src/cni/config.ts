// Loading network configuration lists the way libcni does (LoadNetworkConfList / ConfFromFile):
// *.conflist in lexicographic order, then *.conf / *.json single-plugin configs wrapped in a list.
import { readFile } from "node:fs/promises";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfList, SingleConf, CNI_NAME_RE } from "./schemas.js";
import { CniConfigError } from "./errors.js";
import { describeIssues } from "../util/zod.js";
import { isNotFound, readdirIfExists } from "../util/fs.js";

export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
/** CNI configs shipped with cni-shim; always searched after the user's conf dir. */
export const EMBEDDED_CONF_DIR = fileURLToPath(new URL("../../plugin-config/net.d/", import.meta.url));

export interface LoadedConfList {
  conflist: ConfList;
  /** Exact bytes the list is stored and cached as (libcni caches the list bytes). */
  bytes: Buffer;
  /** File it came from, or a description such as "embedded default". */
  source: string;
}

const CONF_EXTENSIONS = [".conflist", ".conf", ".json"];

/** Parse one config file; errors name the file and every bad field. */
export function parseConfFile(text: string, source: string): LoadedConfList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniConfigError(`${source}: not valid JSON (${(err as Error).message})`, source);
  }
  if (source.endsWith(".conflist") || (typeof raw === "object" && raw !== null && "plugins" in raw)) {
    const parsed = ConfList.safeParse(raw);
    if (!parsed.success) throw new CniConfigError(`${source}: invalid network configuration list: ${describeIssues(parsed.error)}`, source);
    return { conflist: parsed.data, bytes: Buffer.from(text), source };
  }
  const single = SingleConf.safeParse(raw);
  if (!single.success) throw new CniConfigError(`${source}: invalid network configuration: ${describeIssues(single.error)}`, source);
  // libcni ConfListFromConf: the whole conf becomes the only plugin.
  const conflist = ConfList.parse({ cniVersion: single.data.cniVersion, name: single.data.name, plugins: [single.data] });
  return { conflist, bytes: Buffer.from(JSON.stringify(conflist)), source };
}

export function confListFromObject(value: unknown, source: string): LoadedConfList {
  return parseConfFile(JSON.stringify(value), source);
}

async function confFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdirIfExists(dir);
  } catch (err) {
    throw new CniConfigError(`cannot read CNI conf dir ${dir}: ${(err as Error).message}`);
  }
  const sorted = names.filter((n) => CONF_EXTENSIONS.includes(extname(n))).sort();
  // libcni looks at .conflist files first, then single confs.
  return [...sorted.filter((n) => n.endsWith(".conflist")), ...sorted.filter((n) => !n.endsWith(".conflist"))].map((n) => join(dir, n));
}

export interface ConfDirEntry {
  file: string;
  name?: string;
  loaded?: LoadedConfList;
  error?: string;
}

/** Every config file in the dirs with its parse outcome (for doctor and for helpful errors). */
export async function listConfFiles(dirs: string[]): Promise<ConfDirEntry[]> {
  const out: ConfDirEntry[] = [];
  for (const dir of dirs) {
    for (const file of await confFiles(dir)) {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (err) {
        // Like libcni, a directory (or a dangling link) named *.conf is not a config.
        if (isNotFound(err) || (err as NodeJS.ErrnoException).code === "EISDIR") continue;
        out.push({ file, error: `${file}: cannot read (${(err as Error).message})` });
        continue;
      }
      let name: string | undefined;
      try {
        const raw = JSON.parse(text) as { name?: unknown };
        if (typeof raw?.name === "string") name = raw.name;
      } catch {
        /* reported below */
      }
      try {
        out.push({ file, name, loaded: parseConfFile(text, file) });
      } catch (err) {
        out.push({ file, name, error: (err as Error).message });
      }
    }
  }
  return out;
}

/**
 * Find the network list called `name`: the first file (dirs in order, files as libcni orders
 * them) whose "name" matches. A matching file that does not validate is an error naming it; a
 * broken unrelated file does not stop the lookup.
 */
export async function findConfList(dirs: string[], name: string): Promise<LoadedConfList> {
  if (!CNI_NAME_RE.test(name)) {
    throw new CniConfigError(`"${name}" is not a CNI network name: give the "name" of a conflist in ${dirs.join(" or ")} (letters, digits, '_', '.', '-'; no paths)`);
  }
  const entries = await listConfFiles(dirs);
  const match = entries.find((e) => e.name === name);
  if (match?.error) throw new CniConfigError(match.error, match.file);
  if (match?.loaded) return match.loaded;
  const known = [...new Set(entries.filter((e) => e.loaded).map((e) => e.name))];
  const broken = entries.filter((e) => e.error).map((e) => e.file);
  let msg = `no CNI network named "${name}" in ${dirs.join(", ")}`;
  msg += known.length ? ` (available: ${known.join(", ")})` : " (no valid configs there)";
  if (broken.length) msg += `; unreadable configs: ${broken.join(", ")}`;
  msg += `: add a .conflist whose "name" is "${name}" to ${dirs[0]}, or use one of the available names`;
  throw new CniConfigError(msg);
}
