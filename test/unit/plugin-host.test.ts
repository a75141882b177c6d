// packaging/plugin-host.sh, the managed plugin's host paths, run by sh against a fake host: a temp
// dir as $HOST, and mountinfo files as the plugin's and dockerd's namespaces would show them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const LIB = fileURLToPath(new URL("../../packaging/plugin-host.sh", import.meta.url));

/** `sh -c '. plugin-host.sh; SCRIPT'` with HOST set; never rejects. */
const run = (host: string, script: string) => execa("sh", ["-c", `. "${LIB}"; ${script}`], { env: { HOST: host }, reject: false });

/** A mountinfo line: id, parent, dev, root, mount point, options, optional fields, fs type. */
const line = (id: number, point: string, tags: string, fstype: string) => `${id} 1 0:${id} / ${point} rw,relatime ${tags} - ${fstype} ${fstype} rw`.replace("  ", " ");

describe("packaging/plugin-host.sh", () => {
  let host = "";
  beforeAll(async () => {
    host = await mkdtemp(join(tmpdir(), "cs-plugin-host-"));
    // Debian's layout: /var/run -> /run (absolute, so the host's), and a relative link.
    await mkdir(join(host, "run"));
    await mkdir(join(host, "var/lib"), { recursive: true });
    await symlink("/run", join(host, "var/run"));
    await symlink("lib", join(host, "var/state"));
    await symlink("/loop", join(host, "loop"));
  });
  afterAll(async () => {
    await rm(host, { recursive: true, force: true });
  });

  it("resolves a path as the host does: its absolute symlinks under $HOST, missing components kept", async () => {
    const path = async (p: string) => (await run(host, `host_path '${p}'`)).stdout;
    expect(await path("/var/run/docker.sock")).toBe("/run/docker.sock");
    expect(await path("/var/state/cni-shim/")).toBe("/var/lib/cni-shim");
    expect(await path("/srv/not/there/yet")).toBe("/srv/not/there/yet");
    expect(await path("/var/lib/../run/./netns")).toBe("/run/netns");
    expect(await path("/")).toBe("/");
    expect((await run(host, "host_path relative/path")).exitCode).toBe(1);
    expect((await run(host, "host_path /loop/x")).exitCode).toBe(1);
  });

  it("fails with one line saying what to run when the netns dir is not shared with dockerd's namespace", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cs-plugin-host-mi-"));
    try {
      const self = join(dir, "self");
      const parent = join(dir, "parent");
      await writeFile(parent, `${[line(1, "/", "", "ext4"), line(2, "/run/netns", "shared:2", "ext4")].join("\n")}\n`);
      const check = (netnsTags: string) => writeFile(self, `${[line(1, "/", "", "ext4"), line(9, "/run/netns", netnsTags, "ext4")].join("\n")}\n`);
      const netnsShared = () => run(host, `netns_shared /run/netns /srv/netns ${self} ${parent}`);
      await check("shared:2");
      expect(await netnsShared()).toMatchObject({ exitCode: 0, stderr: "" });
      // Shared, but with a peer group of the plugin's own (a private host mount made shared inside).
      for (const tags of ["shared:7", "", "master:2"]) {
        await check(tags);
        const res = await netnsShared();
        expect(res.exitCode, tags).toBe(1);
        expect(res.stderr.split("\n"), tags).toEqual([
          "cni-shim plugin: the host's netns dir /srv/netns (CNI_SHIM_HOST_NETNS_DIR) is not a shared mount, so staging namespaces would vanish with the plugin; run on the host: mount --bind /srv/netns /srv/netns && mount --make-shared /srv/netns, then docker plugin enable again",
        ]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("lists the namespace copies under $HOST that no unmount on the host would reach, and only those", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cs-plugin-host-mi-"));
    try {
      const self = join(dir, "self");
      const parent = join(dir, "parent");
      await writeFile(parent, `${[line(1, "/", "", "ext4"), line(2, "/run/netns", "shared:2", "ext4"), line(3, "/run/netns/staging", "shared:3", "nsfs")].join("\n")}\n`);
      const mounts = [
        line(10, host, "shared:20", "ext4"),
        line(11, `${host}/run/docker/netns/abc`, "shared:21", "nsfs"), // a private host mount, made shared inside
        line(12, `${host}/run/docker/netns/def`, "", "nsfs"),
        line(13, `${host}/run/netns/staging`, "shared:3", "nsfs"), // a peer: the host's unmount reaches it, ours would reach the host
        line(14, "/run/netns/staging", "shared:3", "nsfs"),
        line(15, "/elsewhere/ns", "", "nsfs"), // not under $HOST
        line(16, `${host}/run/docker`, "shared:22", "tmpfs"),
      ];
      await writeFile(self, `${mounts.join("\n")}\n`);
      const res = await run(host, `own_nsfs_copies ${self} ${parent}`);
      expect(res.stdout.split("\n")).toEqual([`${host}/run/docker/netns/abc`, `${host}/run/docker/netns/def`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
