import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import { CniRuntimeError } from "./errors.js";
import { promised } from "../util/fs.js";

const DEFAULT_CNI_PATH = ["/opt/cni/bin", "/usr/lib/cni"];

export function parseCniPath(value: string | undefined): string[] {
  const dirs = (value ?? "").split(":").filter(Boolean);
  return dirs.length ? dirs : DEFAULT_CNI_PATH;
}

/** libcni's FindInPath: the first executable file named `type` in the CNI_PATH dirs. */
export function findPlugin(type: string, cniPath: string[]): Promise<string> {
  return promised(() => findPluginNow(type, cniPath));
}

function findPluginNow(type: string, cniPath: string[]): string {
  if (!type || type.includes("/")) throw new CniRuntimeError(`invalid CNI plugin type "${type}": it must be a plain file name`);
  for (const dir of cniPath) {
    const candidate = join(dir, type);
    try {
      // Synchronous: two lookups of a local file (util/fs.ts says why).
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* try next dir */
    }
  }
  throw new CniRuntimeError(
    `CNI plugin "${type}" not found in ${cniPath.join(":")}: install it (Debian: apt-get install containernetworking-plugins) or point CNI_PATH at the directory that has it`,
  );
}
