// -o cni.network=NAME: a conflist from the conf dir used as is, as on a cluster node; and the
// errors a user gets for a bad conflist, a subnet mismatch, a missing plugin, a hung plugin.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile, chmod, rm, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bridgePlugin } from "../helpers/conflists.js";
import { IMAGE, cleanup, containerNet, docker, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

const id = rand();
const octet = 100 + (parseInt(id.slice(0, 2), 16) % 100);
const subnet = `10.252.${octet}.0/24`;
const gateway = `10.252.${octet}.1`;
const podNet = `e2e-pod-net-${id}`;
const bridge = `cse${id}`;

function podConflist(name: string, plugins: unknown[]) {
  return JSON.stringify({ cniVersion: "1.0.0", name, plugins }, null, 2);
}
const podBridge = () => bridgePlugin({ bridge, subnet, mtu: 1450 });

describe("networks from a named conflist", () => {
  let plugin: PluginHandle;
  let confDir: string;
  let binDir: string;
  const networks: string[] = [];
  const containers: string[] = [];
  let before: HostSnapshot;

  beforeAll(async () => {
    await requirePrerequisites();
    confDir = await mkdtemp(join(tmpdir(), "cs-conf-"));
    binDir = await mkdtemp(join(tmpdir(), "cs-bin-"));
    await writeFile(join(confDir, "10-pod.conflist"), podConflist(podNet, [podBridge(), { type: "portmap", snat: true, capabilities: { portMappings: true } }, { type: "firewall" }]));
    await writeFile(join(confDir, "20-broken.conflist"), `{"cniVersion": "1.0.0", "name": "e2e-broken-${id}", "plugins": [ {"bridge": "x"} ]}`);
    await writeFile(join(confDir, "30-missing.conflist"), podConflist(`e2e-missing-${id}`, [podBridge(), { type: "no-such-plugin-bin" }]));
    await writeFile(join(confDir, "40-hang.conflist"), podConflist(`e2e-hang-${id}`, [podBridge(), { type: "cs-hang" }]));
    // A plugin that answers VERSION but hangs on ADD: docker run must still return.
    await writeFile(
      join(binDir, "cs-hang"),
      `#!/bin/sh\nif [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'; exit 0; fi\nif [ "$CNI_COMMAND" = ADD ]; then sleep 600; fi\nexit 0\n`,
    );
    await chmod(join(binDir, "cs-hang"), 0o755);
    plugin = await startPlugin({ confDir, cniPath: `${binDir}:/usr/lib/cni`, execTimeoutMs: 3000 });
    before = await settledSnapshot(plugin);
  });

  afterAll(async () => {
    await cleanup(containers, networks, plugin, [confDir, binDir]);
    await sh("ip", ["link", "del", bridge], { reject: false });
    await rm(`/var/lib/cni/networks/${podNet}`, { recursive: true, force: true });
  });

  it("refuses Docker's auto pool and says which --subnet/--gateway to pass", async () => {
    const res = await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${podNet}`, `cs-mismatch-${id}`], { reject: false });
    networks.push(`cs-mismatch-${id}`);
    expect(res.failed).toBe(true);
    expect(res.stderr).toContain(`--subnet ${subnet} --gateway ${gateway}`);
    expect((await docker(["network", "ls", "-q", "--filter", `name=cs-mismatch-${id}`])).stdout).toBe("");
  });

  it("rejects a name that is a path", async () => {
    const res = await docker(["network", "create", "-d", plugin.driver, "-o", "cni.network=../etc/passwd", `cs-path-${id}`], { reject: false });
    networks.push(`cs-path-${id}`);
    expect(res.failed).toBe(true);
    expect(res.stderr).toContain("not a CNI network name");
  });

  it("names the file and field of a bad conflist", async () => {
    const res = await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=e2e-broken-${id}`, `cs-broken-${id}`], { reject: false });
    networks.push(`cs-broken-${id}`);
    expect(res.failed).toBe(true);
    expect(res.stderr).toContain("20-broken.conflist");
    expect(res.stderr).toContain("plugins.0.type");
  });

  it("names a missing plugin binary and where it looked, at network create", async () => {
    const res = await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=e2e-missing-${id}`, "--subnet", subnet, `cs-missing-${id}`], { reject: false });
    networks.push(`cs-missing-${id}`);
    expect(res.failed).toBe(true);
    expect(res.stderr).toContain('CNI plugin "no-such-plugin-bin" not found');
    expect(res.stderr).toContain("/usr/lib/cni");
  });

  it("runs containers with the conflist as is when the subnet matches", async () => {
    const net = `cs-pod-${id}`;
    networks.push(net);
    await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${podNet}`, "--subnet", subnet, "--gateway", gateway, net]);
    const name = `cs-pod-c-${id}`;
    containers.push(name);
    const ip = `10.252.${octet}.77`;
    const mac = "02:42:0a:fc:00:4d";
    await docker(["run", "-d", "--name", name, "--network", net, "--ip", ip, "--mac-address", mac, IMAGE, "sleep", "300"]);
    const { addr, routes, links } = await containerNet(name);
    expect(addr).toContain(`eth0    inet ${ip}/24`);
    expect(links).toContain(`link/ether ${mac}`);
    expect(links).toMatch(/eth0.*mtu 1450/);
    expect(routes[0]).toBe(`default via ${gateway} dev eth0`);
    const ports = JSON.parse((await sh("ip", ["-j", "link", "show", "master", bridge])).stdout) as unknown[];
    expect(ports).toHaveLength(1);
    await docker(["rm", "-f", name]);
    await docker(["network", "rm", net]);
  });

  it("does not hang docker run when a plugin hangs: the exec times out and everything is rolled back", async () => {
    const net = `cs-hang-${id}`;
    networks.push(net);
    await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=e2e-hang-${id}`, "--subnet", subnet, "--gateway", gateway, net]);
    const started = Date.now();
    const res = await docker(["run", "--rm", "--network", net, IMAGE, "true"], { reject: false, timeoutMs: 60_000 });
    expect(res.failed).toBe(true);
    expect(res.stderr).toContain('CNI plugin "cs-hang" ADD did not finish within 3000 ms');
    expect(Date.now() - started).toBeLessThan(30_000);
    await docker(["network", "rm", net]);
  });

  it("names a plugin binary that disappeared after network create, at docker run", async () => {
    const net = `cs-gone-${id}`;
    networks.push(net);
    await writeFile(join(binDir, "cs-vanishing"), await readFile("/usr/lib/cni/tuning"));
    await chmod(join(binDir, "cs-vanishing"), 0o755);
    await writeFile(join(confDir, "50-vanishing.conflist"), podConflist(`e2e-vanishing-${id}`, [podBridge(), { type: "cs-vanishing" }]));
    await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=e2e-vanishing-${id}`, "--subnet", subnet, "--gateway", gateway, net]);
    await rm(join(binDir, "cs-vanishing"));
    const res = await docker(["run", "--rm", "--network", net, IMAGE, "true"], { reject: false });
    expect(res.failed).toBe(true);
    expect(res.stderr).toContain('CNI plugin "cs-vanishing" not found');
    await docker(["network", "rm", net]);
  });

  it("left nothing behind", async () => {
    for (const n of networks.splice(0)) await docker(["network", "rm", n], { reject: false });
    expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
    expect((await sh("ls", [`${plugin.stateDir}/endpoints`], { reject: false })).stdout).toBe("");
    expect((await sh("ls", [`${plugin.stateDir}/networks`], { reject: false })).stdout).toBe("");
  });
});
