// docker network connect/disconnect on running containers, and restarts of the plugin with
// live containers: teardown must still be complete.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IMAGE, cleanup, containerNet, docker, pluginCall, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

describe("endpoint lifecycle", () => {
  let plugin: PluginHandle;
  const id = rand();
  const net = `cs-life-${id}`;
  const containers: string[] = [];
  let before: HostSnapshot;

  beforeAll(async () => {
    await requirePrerequisites();
    plugin = await startPlugin();
    before = await settledSnapshot(plugin);
    await docker(["network", "create", "-d", plugin.driver, net]);
  });

  afterAll(async () => {
    await cleanup(containers, [net], plugin);
  });

  const addressOn = async (name: string) => (await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`])).stdout;

  it("connects and disconnects a running container that is also on Docker's bridge", async () => {
    const name = `cs-conn-${id}`;
    containers.push(name);
    await docker(["run", "-d", "--name", name, IMAGE, "sleep", "300"]);
    const onBridgeOnly = await settledSnapshot(plugin);
    await docker(["network", "connect", net, name]);
    const ip = await addressOn(name);
    const mac = (await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").MacAddress}}`])).stdout;
    const { addr, routes, links } = await containerNet(name);
    expect(addr).toMatch(new RegExp(`eth1\\s+inet ${ip.replace(/\./g, "\\.")}/`));
    expect(links).toContain(`link/ether ${mac}`);
    // Docker's bridge keeps the default route; the CNI network is reachable on eth1.
    expect(routes[0]).toMatch(/^default via \S+ dev eth0/);
    const peer = `cs-peer-${id}`;
    containers.push(peer);
    await docker(["run", "-d", "--name", peer, "--network", net, IMAGE, "sleep", "300"]);
    const ping = await docker(["exec", name, "ping", "-c", "1", "-W", "3", await addressOn(peer)], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
    await docker(["network", "disconnect", net, name]);
    expect((await containerNet(name)).links).not.toContain("eth1");
    await docker(["rm", "-f", peer]);
    expect(leaked(onBridgeOnly, await settledSnapshot(plugin))).toEqual({});
    await docker(["rm", "-f", name]);
  });

  it("tears down fully after the plugin was killed and restarted with containers running", async () => {
    const names = [`cs-rs1-${id}`, `cs-rs2-${id}`];
    containers.push(...names);
    for (const n of names) await docker(["run", "-d", "--name", n, "--network", net, "-p", "80", IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    const ips = await Promise.all(names.map(addressOn));
    await plugin.stop("SIGKILL");
    await plugin.start(); // same socket, same state dir; Docker does not re-activate
    const ping = await docker(["exec", names[0]!, "ping", "-c", "1", "-W", "3", ips[1]!], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
    await docker(["stop", "-t", "1", ...names]);
    await docker(["rm", ...names]);
    expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
    const rules = (await sh("iptables-save", [])).stdout;
    for (const ip of ips) expect(rules).not.toContain(`${ip}/32`);
  });

  it("gives a dual-stack network both address families and both default routes", async () => {
    const v6net = `cs-v6-${id}`;
    const name = `cs-v6c-${id}`;
    const o = 100 + (parseInt(id.slice(0, 2), 16) % 100);
    try {
      await docker(["network", "create", "-d", plugin.driver, "--ipv6", "--subnet", `10.254.${o}.0/24`, "--subnet", `fd00:cafe:${o}::/64`, v6net]);
      await docker(["run", "-d", "--name", name, "--network", v6net, IMAGE, "sleep", "300"]);
      const v6 = (await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${v6net}").GlobalIPv6Address}}`])).stdout;
      expect(v6.startsWith(`fd00:cafe:${o}::`)).toBe(true);
      const addr = (await docker(["exec", name, "ip", "-o", "addr", "show", "eth0"])).stdout;
      expect(addr).toContain(`inet 10.254.${o}.`);
      expect(addr).toContain(`inet6 ${v6}/64`);
      expect((await docker(["exec", name, "ip", "-6", "route"])).stdout).toContain(`default via fd00:cafe:${o}::1 dev eth0`);
      await docker(["rm", "-f", name]);
      await docker(["network", "rm", v6net]);
      expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
    } finally {
      await docker(["rm", "-f", name], { reject: false });
      await docker(["network", "rm", v6net], { reject: false });
    }
  });

  it("answers a second DeleteEndpoint and one without Join (idempotent) through the socket", async () => {
    const body = JSON.stringify({ NetworkID: "a".repeat(64), EndpointID: "b".repeat(64) });
    for (let i = 0; i < 2; i++) {
      const res = await pluginCall(plugin.socket, "/NetworkDriver.DeleteEndpoint", body);
      expect(res).toEqual({ status: 200, body: "{}" });
    }
  });
});
