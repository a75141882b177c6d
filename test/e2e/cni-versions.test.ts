// cniVersions through `docker network create` on the plugin set under test
// (CNI_SHIM_CNI_PLUGINS): the version sent is libcni 1.2's choice, the highest of the list's
// "cniVersion" and "cniVersions" up to spec 1.1.0; plugins that lack it fail the create, naming
// the plugin, its versions and the fix, and nothing is left. Real dockerd, real plugins.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMAGE, cleanup, docker, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { CNI_PLUGINS, SPEAKS_1_1 } from "../helpers/cni-plugin-set.js";
import { bridgePlugin } from "../helpers/conflists.js";
import { freeOctet, scopedLeftovers } from "../helpers/scoped-leaks.js";

const id = rand(3);

/** The cniVersion of the cached ADD result of the network's only attachment. */
async function cachedVersion(cacheDir: string, list: string): Promise<string> {
  const files = (await readdir(join(cacheDir, "results"))).filter((f) => f.startsWith(`${list}-`));
  expect(files).toHaveLength(1);
  const entry = JSON.parse(await readFile(join(cacheDir, "results", files[0]!), "utf8")) as { result: { cniVersion: string } };
  return entry.result.cniVersion;
}

describe(`cniVersions on CNI plugins ${CNI_PLUGINS}`, () => {
  let plugin: PluginHandle;
  let confDir: string;
  const octets: number[] = [];
  const lists = { both: `cv-${id}-both`, above: `cv-${id}-above` };
  const nets = [`cs-cv-both-${id}`, `cs-cv-above-${id}`];
  const containers = [`cs-cv-a-${id}`, `cs-cv-b-${id}`];
  const bridges = [`cv${id}both`, `cv${id}abv`];

  beforeAll(async () => {
    await requirePrerequisites();
    confDir = await mkdtemp(join(tmpdir(), "cs-cv-"));
    for (const [i, [key, name]] of Object.entries(lists).entries()) {
      octets.push(await freeOctet("10.243", parseInt(id, 16) + i * 11));
      const versions = key === "both" ? { cniVersion: "1.0.0", cniVersions: ["1.0.0", "1.1.0"] } : { cniVersion: "0.4.0", cniVersions: ["1.2.0", "1.0.0"] };
      const plugins = [bridgePlugin({ bridge: bridges[i]!, subnet: `10.243.${octets[i]}.0/24` }), { type: "portmap", capabilities: { portMappings: true } }, { type: "firewall" }];
      await writeFile(join(confDir, `10-${key}.conflist`), JSON.stringify({ ...versions, name, plugins }));
    }
    plugin = await startPlugin({ confDir });
  });

  afterAll(async () => {
    await cleanup(containers, nets, plugin, [confDir]);
    // A named list's bridge is the list's, not the network's: cni-shim leaves it, as on a node.
    for (const b of bridges) await sh("ip", ["link", "del", b], { reject: false });
  });

  const create = (i: number, list: string) =>
    docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${list}`, "--subnet", `10.243.${octets[i]}.0/24`, "--gateway", `10.243.${octets[i]}.1`, nets[i]!], { reject: false });

  it(SPEAKS_1_1 ? "a list with cniVersions [1.0.0, 1.1.0] is sent 1.1.0" : "a list with cniVersions [1.0.0, 1.1.0] fails docker network create: the plugins stop at 1.0.0", async () => {
    const res = await create(0, lists.both);
    if (SPEAKS_1_1) {
      expect(res.exitCode, res.stderr).toBe(0);
      await docker(["run", "-d", "--name", containers[0]!, "--network", nets[0]!, IMAGE, "sleep", "300"]);
      expect(await cachedVersion(plugin.cacheDir, lists.both)).toBe("1.1.0");
      await docker(["rm", "-f", containers[0]!]);
      await docker(["network", "rm", nets[0]!]);
    } else {
      expect(res.exitCode).not.toBe(0);
      expect(res.stderr).toContain(`network "${lists.both}" asks for cniVersion 1.1.0 (the highest of its "cniVersion" and "cniVersions" up to 1.1.0, as libcni chooses)`);
      expect(res.stderr).toContain('plugin "bridge" speaks only 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0');
      expect(res.stderr).toContain('plugin "firewall" speaks only 0.4.0, 1.0.0');
      expect(res.stderr).toContain('set "cniVersion" to 1.0.0 and drop the versions above it from "cniVersions" (the highest all its plugins speak), or use plugins that speak 1.1.0');
      expect((await docker(["network", "inspect", nets[0]!], { reject: false })).exitCode).not.toBe(0);
    }
    expect(await scopedLeftovers({ networks: [lists.both], addressPrefixes: [`10.243.${octets[0]}.`], cacheDir: plugin.cacheDir, stateDir: plugin.stateDir })).toEqual({});
  });

  it("versions above 1.1.0 in cniVersions are skipped: [1.2.0, 1.0.0] with cniVersion 0.4.0 is sent 1.0.0", async () => {
    const res = await create(1, lists.above);
    expect(res.exitCode, res.stderr).toBe(0);
    await docker(["run", "-d", "--name", containers[1]!, "--network", nets[1]!, IMAGE, "sleep", "300"]);
    expect(await cachedVersion(plugin.cacheDir, lists.above)).toBe("1.0.0");
    await docker(["rm", "-f", containers[1]!]);
    await docker(["network", "rm", nets[1]!]);
    expect(await scopedLeftovers({ networks: [lists.above], addressPrefixes: [`10.243.${octets[1]}.`], cacheDir: plugin.cacheDir, stateDir: plugin.stateDir })).toEqual({});
  });
});
