// `make install` / `make uninstall` into a DESTDIR: the program, the default settings, the
// systemd unit (checked with systemd-analyze verify) and a clean removal.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { access, appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { ROOT, SERVE_NODE_FLAGS, sh } from "../helpers/e2e.js";
import { SETTINGS_TABLE } from "../../src/settings.js";

const PREFIX = "/usr/local";
const APP = `${PREFIX}/lib/cni-shim`;
const UNIT = "/etc/systemd/system/cni-shim.service";

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isDirectory()) out.push(relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)));
  }
  return out.sort();
}

const make = (target: string, destdir: string) => sh("make", ["-C", ROOT, "--no-print-directory", target, `DESTDIR=${destdir}`, `PREFIX=${PREFIX}`], { timeoutMs: 300_000 });

describe("make install / make uninstall", () => {
  let dest = "";

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error("install e2e: must run as root");
    dest = await mkdtemp(join(tmpdir(), "cs-install-"));
    await make("install", dest);
  }, 240_000);

  afterAll(async () => {
    if (dest) await rm(dest, { recursive: true, force: true });
  });

  it("installs the program with production dependencies only, and it runs from there", async () => {
    const app = join(dest, APP);
    await access(join(app, "dist/cli/main.js"));
    // The soak's, fuzz's and bench's build (dist/scripts, dist/src) is not the program's.
    expect((await readdir(join(app, "dist"))).filter((d) => d === "scripts" || d === "src")).toEqual([]);
    await access(join(app, "plugin-config/net.d/cni-shim-default.conflist"));
    const modules = await readdir(join(app, "node_modules"));
    for (const dep of ["express", "zod", "dockerode", "execa"]) expect(modules).toContain(dep);
    for (const dev of ["typescript", "vitest"]) expect(modules).not.toContain(dev);
    const types = await readdir(join(app, "node_modules/@types")).catch(() => []);
    for (const dev of ["dockerode", "express"]) expect(types).not.toContain(dev);
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect((await sh(process.execPath, [join(app, "dist/cli/main.js"), "--version"])).stdout).toBe(`cni-shim ${version}`);
    // The embedded config is found next to the installed program.
    const res = await sh(process.execPath, [join(app, "dist/cli/main.js"), "doctor", "--json", "--conf-dir", join(dest, "no-such-dir")], { reject: false });
    const report = JSON.parse(res.stdout) as { checks: Array<{ id: string; status: string; details?: { file?: string } }> };
    const conflist = report.checks.find((c) => c.id === "conflist-cni-shim-default");
    expect(conflist).toMatchObject({ status: "pass", details: { file: join(app, "plugin-config/net.d/cni-shim-default.conflist") } });
  });

  it("puts a wrapper on PATH that runs the installed copy with this Node (serve with the flags of packaging/serve-node-flags)", async () => {
    const wrapper = join(dest, PREFIX, "bin/cni-shim");
    expect((await stat(wrapper)).mode & 0o111).toBe(0o111);
    const main = `${APP}/dist/cli/main.js`;
    expect(await readFile(wrapper, "utf8")).toBe(`#!/bin/sh\nif [ "$1" = serve ]; then exec ${process.execPath} ${SERVE_NODE_FLAGS.join(" ")} ${main} "$@"; fi\nexec ${process.execPath} ${main} "$@"\n`);
  });

  it("ships default settings that match the settings table", async () => {
    const text = await readFile(join(dest, "etc/default/cni-shim"), "utf8");
    for (const [flag, env, def] of SETTINGS_TABLE) {
      expect(text).toContain(`# ${flag}: `);
      expect(text).toContain(`\n#${env}=${def}\n`);
    }
    // All commented out: the service runs on the defaults until someone changes a line.
    expect(text.split("\n").filter((l) => l && !l.startsWith("#"))).toEqual([]);
    expect(await readFile(join(dest, PREFIX, "lib/tmpfiles.d/cni-shim.conf"), "utf8")).toContain("d /run/netns 0755 root root -");
  });

  it("installs a systemd unit started before docker.service that restarts on failure", async () => {
    const unit = await readFile(join(dest, UNIT), "utf8");
    const lines = unit.split("\n").map((l) => l.trim());
    for (const line of [
      "[Unit]",
      "Before=docker.service",
      "[Service]",
      `ExecStart=${PREFIX}/bin/cni-shim serve`,
      "EnvironmentFile=-/etc/default/cni-shim",
      "Restart=on-failure",
      "StateDirectory=cni-shim",
      "[Install]",
      "WantedBy=multi-user.target",
    ]) {
      expect(lines, line).toContain(line);
    }
    expect(unit).not.toContain("@");
  });

  it("passes systemd-analyze verify without a single complaint", async () => {
    const which = await sh("sh", ["-c", "command -v systemd-analyze"], { reject: false });
    if (which.failed) throw new Error("systemd-analyze is missing: install systemd (make deps / scripts/install-deps.sh does it)");
    // Verify inside DESTDIR (where ExecStart exists), with this host's own units next to it.
    await mkdir(join(dest, "usr/lib/systemd"), { recursive: true });
    await cp("/usr/lib/systemd/system", join(dest, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    const res = await sh("systemd-analyze", ["verify", "--man=no", `--root=${dest}`, "cni-shim.service"], { reject: false });
    expect({ exitCode: res.exitCode, output: `${res.stdout}${res.stderr}` }).toEqual({ exitCode: 0, output: "" });
    await rm(join(dest, "usr/lib/systemd"), { recursive: true, force: true });
  });

  it("make uninstall removes every file it installed and keeps an edited settings file", async () => {
    await make("uninstall", dest);
    expect(await files(dest)).toEqual([]);
    // Once more with edited settings: those stay (and survive a reinstall).
    await make("install", dest);
    await appendFile(join(dest, "etc/default/cni-shim"), "CNI_SHIM_LOG_LEVEL=debug\n");
    await make("install", dest);
    expect(await readFile(join(dest, "etc/default/cni-shim"), "utf8")).toContain("\nCNI_SHIM_LOG_LEVEL=debug\n");
    const out = await make("uninstall", dest);
    expect(out.stdout).toContain("keeping /etc/default/cni-shim (edited)");
    expect(await files(dest)).toEqual(["etc/default/cni-shim"]);
  }, 600_000); // two installs, each a build and an npm prune: minutes on a loaded 2-core machine
});
