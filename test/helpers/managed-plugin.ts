// The managed plugin as a user gets it: built and pushed with `make plugin-push` to the test's own
// registry (test/helpers/registry.ts), then `docker plugin install --alias` from there, with its
// host paths (the CNI_SHIM_HOST_* settings) set to the test's own dirs and the engine's socket.
import { execa } from "execa";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, DOCKER_CLI, ENGINE, ROOT, docker } from "./e2e.js";

/** Debian's client of the system's Docker 20.10 (the engines' own clients are newer). */
const SYSTEM_DOCKER_CLI = "/usr/bin/docker";

/** The local base image (scripts/plugin-base.sh): no image registry is needed to build. */
const PLUGIN_BASE = process.env.CNI_SHIM_PLUGIN_BASE ?? "cni-shim-base:local";
/** The Docker socket of the engine under test, as the plugin must reach it. */
const DOCKER_SOCKET = process.env.CNI_SHIM_DOCKER_SOCKET ?? "/var/run/docker.sock";

/** A command run from the project root, failing with its output. */
async function runInRoot(file: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<string> {
  const res = await execa(file, args, { cwd: ROOT, env, reject: false, all: true, timeout: timeoutMs, killSignal: "SIGKILL" });
  if (res.failed) throw new Error(`${file} ${args.join(" ")} failed (${res.exitCode ?? "timeout"}):\n${res.all}`);
  return String(res.all);
}

/**
 * The base image on the engine under test. An engine of scripts/engine.sh has no route out of its
 * namespace (debootstrap needs the Debian mirror): it gets the system Docker's copy, built there
 * first when missing (make test runs the system's engine first, so it usually is there).
 */
async function ensureBase(env: Record<string, string>): Promise<void> {
  if (ENGINE === "20") return void (await runInRoot("bash", ["scripts/plugin-base.sh", PLUGIN_BASE], env, 900_000));
  if (!(await docker(["image", "inspect", PLUGIN_BASE], { reject: false })).failed) return;
  const system = { DOCKER: SYSTEM_DOCKER_CLI, DOCKER_HOST: "unix:///var/run/docker.sock" };
  const inspect = await execa(SYSTEM_DOCKER_CLI, ["image", "inspect", PLUGIN_BASE], { env: system, reject: false });
  if (inspect.failed) throw new Error(`${PLUGIN_BASE} is on neither Docker ${ENGINE} nor the system's Docker: run make plugin-base first (make test builds it on the system's Docker)`);
  await runInRoot("bash", ["-o", "pipefail", "-c", `DOCKER_HOST=unix:///var/run/docker.sock ${SYSTEM_DOCKER_CLI} save ${PLUGIN_BASE} | ${DOCKER_CLI} load -q`], {}, 600_000);
}

/** The base image, then `make plugin-push` of REGISTRY/cni-shim:TAG; returns the reference. */
export async function pushPlugin(registry: string, tag: string, pluginDir: string): Promise<string> {
  const env = { DOCKER: DOCKER_CLI, PLUGIN_DIR: pluginDir };
  await ensureBase(env);
  const make = ["--no-print-directory", "plugin-push", `REGISTRY=${registry}`, `TAG=${tag}`, `BASE=${PLUGIN_BASE}`, "INSTALL_PACKAGES=0", `DOCKER=${DOCKER_CLI}`];
  await runInRoot("make", make, env, 900_000);
  return `${registry}/cni-shim:${tag}`;
}

/**
 * Another version of the plugin `pushPlugin` built, whose dir it left in `pluginDir`: the same
 * rootfs with `version` in its package.json (what `cni-shim --version` says), created as `ref` and
 * pushed, the local copy then removed (as push-plugin.sh does). No second image build and export.
 */
export async function pushAsVersion(pluginDir: string, ref: string, version: string): Promise<void> {
  const file = join(pluginDir, "rootfs/opt/cni-shim/package.json");
  const pkg = JSON.parse(await readFile(file, "utf8")) as { version: string };
  await writeFile(file, `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  await docker(["plugin", "create", ref, pluginDir], { timeoutMs: 600_000 });
  try {
    await docker(["plugin", "push", ref], { timeoutMs: 600_000 });
  } finally {
    await docker(["plugin", "rm", "-f", ref], { reject: false });
  }
}

/** Host dirs of one installed plugin: its records, CNI cache and (empty) conf dir. */
export interface PluginDirs {
  base: string;
  state: string;
  cache: string;
  conf: string;
}

/** Dirs under a temp dir of their own; `made: false` leaves them for the plugin to make (a bare host). */
export async function pluginDirs({ made = true } = {}): Promise<PluginDirs> {
  const base = await mkdtemp(join(tmpdir(), "cs-plugin-dirs-"));
  const dirs = { base, state: join(base, "state"), cache: join(base, "var/lib/cni"), conf: join(base, "etc/cni/net.d") };
  if (made) for (const d of [dirs.state, dirs.cache, dirs.conf]) await mkdir(d, { recursive: true });
  return dirs;
}

/** The host path settings of a plugin of the test's: the engine's API socket and its own dirs. */
export const hostSettings = (dirs: PluginDirs) => [
  `CNI_SHIM_HOST_DOCKER_SOCKET=${DOCKER_SOCKET}`,
  `CNI_SHIM_HOST_STATE_DIR=${dirs.state}`,
  `CNI_SHIM_HOST_CACHE_DIR=${dirs.cache}`,
  `CNI_SHIM_HOST_CONF_DIR=${dirs.conf}`,
];

/** docker plugin install --alias ALIAS REF with the host paths set; enabled when it returns. */
export async function installPlugin(alias: string, ref: string, dirs: PluginDirs, extra: string[] = []): Promise<string> {
  const settings = [...hostSettings(dirs), ...extra];
  await docker(["plugin", "install", "--grant-all-permissions", "--alias", alias, ref, ...settings], { timeoutMs: 300_000 });
  return (await docker(["plugin", "inspect", alias, "--format", "{{.Id}}"])).stdout;
}

/** Where the engine keeps an installed plugin's rootfs (its data-root, which differs per engine). */
export async function pluginRootfs(pluginId: string): Promise<string> {
  const root = (await docker(["info", "--format", "{{.DockerRootDir}}"])).stdout;
  return join(root, "plugins", pluginId, "rootfs");
}

/** The attach path a plugin reports for new endpoints: doctor's attach check on its state dir. */
export async function attachPath(stateDir: string): Promise<{ kind: string; status: string; summary: string }> {
  const res = await execa(process.execPath, [CLI, "doctor", "--json", "--state-dir", stateDir], { reject: false });
  const check = (JSON.parse(res.stdout) as { checks: Array<{ id: string; status: string; summary: string; details?: { kind?: string } }> }).checks.find((c) => c.id === "attach");
  if (!check?.details?.kind) throw new Error(`doctor has no attach check with a path:\n${res.stdout.slice(0, 2000)}`);
  return { kind: check.details.kind, status: check.status, summary: check.summary };
}

/** A plugin's Env settings as its next enable will see them (Settings.Env), by name. */
export async function envSettings(plugin: string): Promise<Record<string, string>> {
  const env = JSON.parse((await docker(["plugin", "inspect", plugin, "--format", "{{json .Settings.Env}}"])).stdout) as string[];
  return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}
