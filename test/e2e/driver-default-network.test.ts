// The README scenario end to end: real dockerd, real CNI plugins, the embedded default config.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IMAGE, cleanup, containerNet, docker, httpGet, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

describe("docker network on the embedded default CNI config", () => {
  let plugin: PluginHandle;
  const id = rand();
  const net = `cs-e2e-${id}`;
  const web = `cs-web-${id}`;
  const client = `cs-client-${id}`;
  const containers = [web, client];
  let before: HostSnapshot;
  let netId = "";
  const hostPort = 18000 + Math.floor(Math.random() * 1000);

  beforeAll(async () => {
    await requirePrerequisites();
    plugin = await startPlugin();
    before = await settledSnapshot(plugin);
    netId = (await docker(["network", "create", "-d", plugin.driver, net])).stdout;
    await docker(["run", "-d", "--name", web, "--network", net, "-p", `${hostPort}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    await docker(["run", "-d", "--name", client, "--network", net, IMAGE, "sleep", "300"]);
  });

  afterAll(async () => {
    await cleanup(containers, [net], plugin);
  });

  it("gives each container eth0 with the address and MAC docker inspect shows", async () => {
    for (const name of containers) {
      const networks = JSON.parse((await docker(["inspect", name, "--format", `{{json .NetworkSettings.Networks}}`])).stdout) as Record<string, { IPAddress: string; IPPrefixLen: number; MacAddress: string }>;
      const inspect = networks[net]!;
      const { addr, links } = await containerNet(name);
      expect(addr).toContain(`eth0    inet ${inspect.IPAddress}/${inspect.IPPrefixLen}`);
      expect(inspect.MacAddress).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(links).toContain(`link/ether ${inspect.MacAddress}`);
      // Only lo and eth0: no docker_gwbridge interface behind CNI's back.
      expect(links.split("\n").map((l) => l.split(":")[1]?.trim().split("@")[0])).toEqual(["lo", "eth0"]);
    }
  });

  it("routes by default via the CNI gateway, which is Docker's gateway", async () => {
    const gw = (await docker(["network", "inspect", net, "--format", "{{(index .IPAM.Config 0).Gateway}}"])).stdout;
    const { routes } = await containerNet(client);
    expect(routes[0]).toBe(`default via ${gw} dev eth0`);
    const networks = (await docker(["network", "ls", "--format", "{{.Name}}"])).stdout.split("\n");
    const gwbridge = networks.includes("docker_gwbridge") ? (JSON.parse((await docker(["network", "inspect", "docker_gwbridge", "--format", "{{json .Containers}}"])).stdout) as Record<string, { Name: string }>) : {};
    expect(Object.values(gwbridge).map((c) => c.Name)).not.toContain(client);
  });

  it("puts the host side of each veth on the network's own bridge with hairpin on", async () => {
    const bridge = `cs-${netId.slice(0, 12)}`;
    const ports = JSON.parse((await sh("ip", ["-j", "-d", "link", "show", "master", bridge])).stdout) as Array<{ ifname: string; linkinfo?: { info_slave_data?: { hairpin?: boolean } } }>;
    expect(ports).toHaveLength(2);
    for (const p of ports) expect(p.linkinfo?.info_slave_data?.hairpin).toBe(true);
  });

  it("lets containers reach each other by address", async () => {
    const target = (await docker(["inspect", web, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`])).stdout;
    const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", target], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
    const page = await docker(["exec", client, "wget", "-qO-", `http://${target}/`]);
    expect(page.stdout).toBe("cni-shim test page");
    // Docker's embedded DNS serves user-defined networks of any driver: names resolve too.
    const byName = await docker(["exec", client, "ping", "-c", "1", "-W", "3", web], { reject: false });
    expect(byName.stdout).toContain(`(${target})`);
    expect(byName.stdout).toContain("1 packets received");
  });

  it("publishes -p through CNI portmap, reachable from the host and from other containers", async () => {
    expect(await httpGet(hostPort)).toBe("cni-shim test page\n");
    const nat = (await sh("iptables-save", ["-t", "nat"])).stdout;
    expect(nat).toMatch(new RegExp(`--dports? ${hostPort} .*-j CNI-DN-`));
    const gw = (await docker(["network", "inspect", net, "--format", "{{(index .IPAM.Config 0).Gateway}}"])).stdout;
    const viaHostAddress = await docker(["exec", client, "wget", "-qO-", `http://${gw}:${hostPort}/`], { reject: false });
    expect(viaHostAddress.stdout).toBe("cni-shim test page");
  });

  it("leaves nothing behind after stop, kill and rm", async () => {
    const webIP = (await docker(["inspect", web, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`])).stdout;
    await docker(["stop", "-t", "1", web]);
    await docker(["kill", client]);
    await docker(["rm", web, client]);
    const after = await settledSnapshot(plugin);
    expect(leaked(before, after)).toEqual({});
    const rules = (await sh("iptables-save", [])).stdout;
    expect(rules).not.toContain(`${webIP}/32`);
    expect(rules).not.toMatch(new RegExp(`--dports? ${hostPort} `));
    expect((await sh("ls", [`${plugin.stateDir}/endpoints`], { reject: false })).stdout).toBe("");
    await docker(["network", "rm", net]);
    const links = (await sh("ip", ["-br", "link"])).stdout;
    expect(links).not.toContain(`cs-${netId.slice(0, 12)}`);
  });
});
