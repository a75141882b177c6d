// The managed plugin's config.json against the settings table, the Dockerfile and the host
// directories packaging creates: the pieces that must agree for `docker plugin enable` to work.
import { describe, expect, it } from "vitest";
import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_SOCKET, SETTINGS_TABLE } from "../../src/settings.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const config = JSON.parse(readFileSync(join(ROOT, "plugin-config/config.json"), "utf8")) as {
  entrypoint: string[];
  interface: { types: string[]; socket: string };
  network: { type: string };
  pidhost?: boolean;
  propagatedmount?: string;
  linux: { capabilities: string[] };
  mounts: Array<{ name: string; source: string; destination: string; type: string; options: string[]; settable?: string[] }>;
  env: Array<{ name: string; value: string; settable?: string[] }>;
};
/** The host paths the entrypoint binds (or links) inside, and where. */
const HOST_PATHS: Record<string, string> = {
  CNI_SHIM_HOST_STATE_DIR: "CNI_SHIM_STATE_DIR",
  CNI_SHIM_HOST_CACHE_DIR: "CNI_SHIM_CACHE_DIR",
  CNI_SHIM_HOST_CONF_DIR: "CNI_SHIM_CONF_DIR",
  CNI_SHIM_HOST_DOCKER_SOCKET: "CNI_SHIM_DOCKER_SOCKET",
};
const PLUGIN_ONLY_ENV = ["CNI_SHIM_IPTABLES_BACKEND", "CNI_SHIM_HOST_NETNS_DIR", ...Object.keys(HOST_PATHS)];
const env = Object.fromEntries(config.env.map((e) => [e.name, e]));
const mount = (dest: string) => config.mounts.find((m) => m.destination === dest);

describe("plugin-config/config.json", () => {
  it("is a v2 network driver plugin on cni-shim.sock with host networking", () => {
    expect(config.interface).toEqual({ types: ["docker.networkdriver/1.0"], socket: basename(DEFAULT_SOCKET) });
    expect(config.network.type).toBe("host");
    // CAP_SYS_PTRACE (with pidhost): Docker's sandbox keys opened in dockerd's view, /proc/<pid>/root (src/host/sandbox-key.ts).
    expect(config.linux.capabilities.sort()).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]);
  });

  it("starts through the entrypoint script the Dockerfile installs", () => {
    expect(config.entrypoint).toEqual(["/opt/cni-shim/plugin-entrypoint.sh", "serve"]);
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    expect(dockerfile).toContain("COPY packaging/plugin-entrypoint.sh ./plugin-entrypoint.sh");
    expect(dockerfile).toContain("COPY packaging/plugin-host.sh ./plugin-host.sh");
    expect(readFileSync(join(ROOT, ".dockerignore"), "utf8")).toContain("!packaging/plugin-host.sh");
    expect(dockerfile).toContain("WORKDIR /opt/cni-shim");
    expect(statSync(join(ROOT, "packaging/plugin-entrypoint.sh")).mode & 0o111).toBe(0o111);
    expect(readFileSync(join(ROOT, ".dockerignore"), "utf8")).toContain("!packaging/plugin-entrypoint.sh");
    // serve starts with the node flags of packaging/serve-node-flags, which the image must carry.
    expect(dockerfile).toContain("COPY packaging/serve-node-flags ./serve-node-flags");
    expect(readFileSync(join(ROOT, ".dockerignore"), "utf8")).toContain("!packaging/serve-node-flags");
    expect(readFileSync(join(ROOT, "packaging/plugin-entrypoint.sh"), "utf8")).toContain("exec node $(cat /opt/cni-shim/serve-node-flags) /opt/cni-shim/dist/cli/main.js");
  });

  it("lists every setting in Env, with the table's default where settable", () => {
    for (const [, name, def] of SETTINGS_TABLE) {
      expect(env[name], name).toBeDefined();
      if (env[name]!.settable?.includes("value")) expect(env[name]!.value, name).toBe(def);
    }
    const known = new Set<string>([...SETTINGS_TABLE.map((s) => s[1]), ...PLUGIN_ONLY_ENV]);
    expect(config.env.map((e) => e.name).filter((n) => !known.has(n))).toEqual([]);
  });

  it("mounts only the host's /, and takes the host paths as settable Env whose defaults are the paths inside", () => {
    expect(env.CNI_SHIM_SOCKET!.value).toBe(DEFAULT_SOCKET);
    for (const name of ["CNI_SHIM_SOCKET", "CNI_SHIM_STATE_DIR", "CNI_SHIM_CACHE_DIR", "CNI_SHIM_CONF_DIR", "CNI_SHIM_DOCKER_SOCKET", "CNI_PATH"]) expect(env[name]!.settable ?? [], name).toEqual([]);
    // Nothing has to exist on the host for `docker plugin enable`: the entrypoint makes and binds
    // each host path (packaging/plugin-host.sh), and Env settings survive `docker plugin upgrade`.
    expect(config.mounts).toEqual([expect.objectContaining({ name: "host", source: "/", destination: "/host", type: "bind" })]);
    expect(config.mounts[0]!.settable).toBeUndefined();
    for (const [setting, inside] of Object.entries(HOST_PATHS)) {
      expect(env[setting]!.settable, setting).toEqual(["value"]);
      expect(env[setting]!.value, setting).toBe(env[inside]!.value);
    }
    const lib = readFileSync(join(ROOT, "packaging/plugin-host.sh"), "utf8");
    for (const [setting, inside] of Object.entries(HOST_PATHS)) expect(lib).toContain(`${setting} "\${${setting}:-${env[setting]!.value}}" "$${inside}"`);
  });

  it("shares the host's / with it (rshared), and a propagated mount so that Docker makes the root rshared", () => {
    // rshared: the staging namespaces `ip netns add` mounts in the netns dir reach the host's.
    expect(mount("/host")!.options).toEqual(["rbind", "rshared"]);
    expect(config.propagatedmount).toBeTruthy();
    expect(config.pidhost).toBe(true);
  });

  it("has every default host dir in the tmpfiles entry (the plain program's defaults too)", () => {
    const tmpfiles = readFileSync(join(ROOT, "packaging/cni-shim.tmpfiles"), "utf8");
    for (const name of ["CNI_SHIM_HOST_STATE_DIR", "CNI_SHIM_HOST_CACHE_DIR", "CNI_SHIM_HOST_CONF_DIR", "CNI_SHIM_HOST_NETNS_DIR"]) expect(tmpfiles).toMatch(new RegExp(`^d ${env[name]!.value} `, "m"));
  });
});
