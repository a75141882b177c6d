// What a user does with cni-shim, on whichever engine the harness points at (make test runs it on
// Docker 20.10, 26 and 28): two containers by address and by name, -p, --ip and --mac-address,
// connect/disconnect of a running container onto a second cni-shim network, restart, and nothing
// left behind.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE, IMAGE, attachPathOf, cleanup, containerNet, docker, httpGet, rand, requirePrerequisites, startPlugin, waitFor, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

const httpd = ["httpd", "-f", "-p", "80", "-h", "/www"];

describe(`the user's scenario on Docker ${ENGINE}`, () => {
  let plugin: PluginHandle;
  const id = rand();
  const o = 10 + (parseInt(id.slice(0, 2), 16) % 200);
  const netA = `cs-sc-a-${id}`;
  const netB = `cs-sc-b-${id}`;
  const [web, client, pinned] = [`cs-web-${id}`, `cs-cli-${id}`, `cs-pin-${id}`];
  const containers = [web, client, pinned];
  const port = 20000 + (parseInt(id.slice(2, 6), 16) % 20000);
  let before: HostSnapshot;

  beforeAll(async () => {
    await requirePrerequisites();
    const version = (await docker(["version", "--format", "{{.Server.Version}}"])).stdout;
    console.log(`engine ${ENGINE}: Docker ${version}`);
    plugin = await startPlugin();
    console.log(`engine ${ENGINE}: new endpoints take the ${attachPathOf(plugin)} path`);
    before = await settledSnapshot(plugin);
    await docker(["network", "create", "-d", plugin.driver, "--subnet", `10.251.${o}.0/24`, "--gateway", `10.251.${o}.1`, netA]);
    await docker(["network", "create", "-d", plugin.driver, "--subnet", `10.252.${o}.0/24`, "--gateway", `10.252.${o}.1`, netB]);
    await docker(["run", "-d", "--name", web, "--network", netA, "--network-alias", "www", "-p", `${port}:80`, IMAGE, ...httpd]);
    await docker(["run", "-d", "--name", client, "--network", netA, IMAGE, "sleep", "600"]);
  });

  afterAll(async () => {
    await cleanup(containers, [netA, netB], plugin);
  });

  const inspect = async (name: string, net: string, field: "IPAddress" | "MacAddress" | "Gateway") => (await docker(["inspect", name, "--format", `{{(index .NetworkSettings.Networks "${net}").${field}}}`])).stdout;

  /** docker inspect's address and MAC are the ones on the container's interface. */
  async function expectInspectMatches(name: string, net: string, ifname: string): Promise<string> {
    const [ip, mac] = [await inspect(name, net, "IPAddress"), await inspect(name, net, "MacAddress")];
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const { addr, links } = await containerNet(name);
    expect(addr).toMatch(new RegExp(`${ifname}\\s+inet ${ip.replace(/\./g, "\\.")}/24`));
    expect(links).toMatch(new RegExp(`${ifname}(@\\S+)?: [^\\n]*\\n?[^\\n]*link/ether ${mac}`));
    return ip;
  }

  it("gives each container the address and MAC docker inspect shows, and Docker's gateway", async () => {
    await expectInspectMatches(web, netA, "eth0");
    await expectInspectMatches(client, netA, "eth0");
    // In the container's own namespace the chain's routes are the container's, and Docker is
    // given no gateway (it would add a second default route): docker inspect shows none.
    // --attach auto: the hand-out, or (28+) the chain's interface handed to Docker from the container's namespace.
    expect(await inspect(client, netA, "Gateway")).toBe(`10.251.${o}.1`);
    expect((await containerNet(client)).routes[0]).toBe(`default via 10.251.${o}.1 dev eth0`);
  });

  it("reaches a peer by address, by name and by alias through Docker's embedded DNS", async () => {
    const ip = await inspect(web, netA, "IPAddress");
    for (const target of [ip, web, "www"]) {
      const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", target], { reject: false });
      expect(ping.stdout, `ping ${target}`).toContain("1 packets received");
    }
    const lookup = await docker(["exec", client, "nslookup", "www", "127.0.0.11"], { reject: false });
    expect(lookup.stdout).toContain(ip);
    const page = await docker(["exec", client, "timeout", "5", "wget", "-qO-", "http://www/"], { reject: false });
    expect(page.stdout).toContain("cni-shim test page");
  });

  it("publishes -p on the host", async () => {
    expect(await waitFor("the published port", async () => (await httpGet(port)) || undefined)).toContain("cni-shim test page");
  });

  it("gives --ip and --mac-address to eth0 and docker inspect", async () => {
    const mac = `02:42:0a:fb:${o.toString(16).padStart(2, "0")}:63`;
    await docker(["run", "-d", "--name", pinned, "--network", netA, "--ip", `10.251.${o}.99`, "--mac-address", mac, IMAGE, ...httpd]);
    expect(await expectInspectMatches(pinned, netA, "eth0")).toBe(`10.251.${o}.99`);
    expect(await inspect(pinned, netA, "MacAddress")).toBe(mac);
    const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", `10.251.${o}.99`], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
  });

  it("connects a running container to a second cni-shim network and disconnects it", async () => {
    await docker(["network", "connect", netB, client]);
    await docker(["network", "connect", netB, pinned]);
    const ip = await expectInspectMatches(client, netB, "eth1");
    expect(ip.startsWith(`10.252.${o}.`)).toBe(true);
    // The first network keeps the default route; the second is reachable on eth1.
    expect((await containerNet(client)).routes[0]).toBe(`default via 10.251.${o}.1 dev eth0`);
    const peer = await inspect(pinned, netB, "IPAddress");
    const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", peer], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
    await docker(["network", "disconnect", netB, client]);
    await docker(["network", "disconnect", netB, pinned]);
    expect((await containerNet(client)).links).not.toContain("eth1");
  });

  it("connects a container that publishes a port to a second network: the port stays with the first", async () => {
    await docker(["network", "connect", netB, web]);
    const ip = await expectInspectMatches(web, netB, "eth1");
    expect(ip.startsWith(`10.252.${o}.`)).toBe(true);
    expect(await httpGet(port)).toContain("cni-shim test page");
    await docker(["network", "disconnect", netB, web]);
    expect(await httpGet(port)).toContain("cni-shim test page");
  });

  it("keeps networking across a container restart", async () => {
    await docker(["restart", "-t", "1", web]);
    await expectInspectMatches(web, netA, "eth0");
    expect(await waitFor("the published port after restart", async () => (await httpGet(port)) || undefined)).toContain("cni-shim test page");
    const ping = await docker(["exec", client, "ping", "-c", "1", "-W", "3", web], { reject: false });
    expect(ping.stdout).toContain("1 packets received");
  });

  it("leaves nothing behind once the containers are gone", async () => {
    await docker(["rm", "-f", ...containers]);
    expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
  });
});
