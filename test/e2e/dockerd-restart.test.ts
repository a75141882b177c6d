// dockerd killed with containers running: after its restart Docker drops the endpoints without
// calling a v1 plugin. Reconciliation (cni-shim gc) must then tear them down completely, and
// must not touch what Docker still uses.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdir } from "node:fs/promises";
import { CLI, IMAGE, cleanup, docker, dockerdUp, killDockerd, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

async function restartDockerd(): Promise<void> {
  await killDockerd();
  await dockerdUp();
}

describe("after a dockerd crash and restart", () => {
  let plugin: PluginHandle;
  const id = rand();
  const net = `cs-dr-${id}`;
  const gone = [`cs-dr1-${id}`, `cs-dr2-${id}`];
  const survivor = `cs-dr-live-${id}`;
  let before: HostSnapshot;

  beforeAll(async () => {
    await requirePrerequisites();
    plugin = await startPlugin({ reconcileGraceS: 0 });
    before = await settledSnapshot(plugin);
    await docker(["network", "create", "-d", plugin.driver, net]);
    for (const n of gone) await docker(["run", "-d", "--name", n, "--network", net, "-p", "80", IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
  });

  afterAll(async () => {
    await cleanup([...gone, survivor], [net], plugin);
  });

  it("reconciliation removes every endpoint Docker forgot and keeps the ones it uses", async () => {
    expect(await readdir(`${plugin.stateDir}/endpoints`)).toHaveLength(2);
    await restartDockerd();
    // Docker stopped the containers and dropped their endpoints without telling the plugin.
    const states = await Promise.all(gone.map(async (n) => (await docker(["inspect", n, "--format", "{{.State.Running}}"])).stdout));
    expect(states).toEqual(["false", "false"]);
    expect(await readdir(`${plugin.stateDir}/endpoints`)).toHaveLength(2);
    // A container started after the restart gets an address Docker reassigned from a dropped
    // endpoint: that stale endpoint is reclaimed on the spot, and the new one must survive gc.
    await docker(["run", "-d", "--name", survivor, "--network", net, IMAGE, "sleep", "300"]);
    const report = JSON.parse((await sh("node", [CLI, "gc", "--socket", plugin.socket])).stdout) as { endpointsRemoved: string[]; errors: string[] };
    expect(report.errors).toEqual([]);
    const survivorEndpoint = (await docker(["inspect", survivor, "--format", `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`])).stdout;
    expect(await readdir(`${plugin.stateDir}/endpoints`)).toEqual([`${survivorEndpoint}.json`]);
    const live = await docker(["exec", survivor, "ip", "-o", "addr", "show", "eth0"]);
    expect(live.stdout).toContain("inet ");
    await docker(["rm", "-f", survivor, ...gone]);
    expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
  });
});
