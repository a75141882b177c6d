// Phase "reboot": --restart always containers; plugin, dockerd, containerd and the containers
// killed, then what a reboot wipes is removed (veths, named netns, the network's bridge and
// iptables state, sandbox mounts) and everything restarted with a new boot id.
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { allBack, freshRun, restartSet } from "./containers.js";
import type { DockerdFigures } from "./dockerd.js";
import { dockerdUp, killDockerd } from "./engine.js";
import { ifnames } from "./leaks.js";
import { namesOf, type NetworkNames } from "./network.js";
import { runPhase, type PhaseRun } from "./phase.js";
import type { Plugin } from "./plugin.js";
import { DOCKER, rand } from "./settings.js";
import { must, sh } from "./shell.js";
import { rulesOfNetworkRemoval } from "./iptables-wipe.js";

export type RebootFigures = Omit<DockerdFigures, "dockerdKills"> & { dockerdKills?: undefined };

/** What a reboot takes with it, for this network only: kernel state and /run. */
async function wipeLikeReboot(plugin: Plugin, netId: string, sandboxKeys: string[], names: NetworkNames) {
  const bridge = names.bridge ?? `cs-${netId}`;
  // Sandboxes (/run/docker/netns) and our staging namespaces (/run/netns).
  for (const key of sandboxKeys) {
    await sh("umount", ["-l", key]);
    await rm(key, { force: true });
  }
  for (const f of await readdir(join(plugin.stateDir, "endpoints")).catch(() => [])) {
    const rec = JSON.parse(await readFile(join(plugin.stateDir, "endpoints", f), "utf8")) as { stagingNetns: string; tmpName: string };
    await sh("ip", ["netns", "del", rec.stagingNetns]);
    await sh("ip", ["link", "del", rec.tmpName]);
  }
  for (const port of ifnames((await sh("ip", ["-j", "link", "show", "master", bridge])).out)) await sh("ip", ["link", "del", port]);
  await sh("ip", ["link", "del", bridge]);
  // Every iptables rule that names the network, and the per-attachment chains they jump to.
  for (const tool of ["iptables", "ip6tables"]) {
    const script = rulesOfNetworkRemoval((await sh(`${tool}-save`, [])).out, names.cniName ?? `cni-shim-${netId}`);
    if (script) await must(`${tool}-restore`, ["-w", "5", "--noflush"], { input: script });
  }
}

/** Power off: nothing gets to clean up; then what a reboot wipes goes. */
async function powerOff(r: PhaseRun, containers: string[]) {
  const pids: string[] = [];
  const sandboxKeys: string[] = [];
  for (const c of containers) {
    pids.push(await must(DOCKER, ["inspect", c, "--format", "{{.State.Pid}}"]));
    sandboxKeys.push(await must(DOCKER, ["inspect", c, "--format", "{{.NetworkSettings.SandboxKey}}"]));
  }
  const netId = (await must(DOCKER, ["network", "inspect", r.net, "--format", "{{.Id}}"])).slice(0, 12);
  await r.plugin.kill9();
  await killDockerd({ alsoContainerd: true });
  await sh("kill", ["-9", ...pids]);
  await wipeLikeReboot(r.plugin, netId, sandboxKeys, namesOf(r.net));
}

export async function rebootPhase(): Promise<RebootFigures> {
  const fig: RebootFigures = { containers: 3, back: 0, notBack: [], freshRunOk: 0, unexpectedFailures: [], leaks: {}, seconds: 0 };
  return runPhase({ teardown: "background", netPrefix: "soak-rb", bootId: `soak-boot-1-${rand()}` }, fig, async (r) => {
    const set = await restartSet(r.net, r.containers);
    await allBack(set, r.net, fig, "before");
    fig.back = 0;
    await powerOff(r, set.map((c) => c.name));
    // Power on: the plugin (its unit starts before docker.service), then dockerd.
    r.plugin.bootId = `soak-boot-2-${rand()}`;
    await r.plugin.start();
    await dockerdUp();
    await allBack(set, r.net, fig, "after reboot");
    await freshRun(r.net, "soak-rb-fresh", r.containers, fig, "fresh run after reboot");
  });
}
