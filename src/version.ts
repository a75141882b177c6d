// The version of this build: package.json's, the one `make plugin-push` tags the managed plugin with.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** package.json above this module: dist/version.js, dist/src/version.js (scripts) and src/ under vitest sit at different depths. */
function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
    if (pkg.name === "cni-shim" && pkg.version) return pkg.version;
  }
  return "unknown";
}

export const VERSION = readVersion();
