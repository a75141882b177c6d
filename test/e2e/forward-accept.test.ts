// A cluster's conflist without the firewall plugin (kindnet: ptp + host-local + portmap) on a
// Docker host, whose FORWARD policy is DROP: cni-shim accepts the network's forwarding in its
// own chain CNI-SHIM-FORWARD, so two containers reach each other by address and HTTP; the rules
// come back after crashes and flushes and go with the network; --accept-forwarding false adds none.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forwardOwner } from "../../src/driver/forward-accept.js";
import { FORWARD_CHAIN } from "../../src/host/forward-chain-plan.js";
import { CLI, ENGINE, IMAGE, cleanup, docker, rand, requirePrerequisites, sh, startPlugin, waitFor, type PluginHandle } from "../helpers/e2e.js";

const id = rand();
const octet = 100 + (parseInt(id.slice(0, 2), 16) % 100);
const subnet = `10.253.${octet}.0/24`;
const gateway = `10.253.${octet}.1`;
const offSubnet = `10.253.${octet + 1}.0/24`;
const offGateway = `10.253.${octet + 1}.1`;
const listName = `e2e-kindnet-${id}`;
const offListName = `e2e-kindnet-off-${id}`;

/** kind's kindnet as a node has it, without the firewall plugin cni-shim's kind profile adds. */
function kindnet(name: string, range: string, dataDir: string) {
  return JSON.stringify({
    cniVersion: "0.4.0",
    name,
    plugins: [
      { type: "ptp", ipMasq: false, mtu: 1500, ipam: { type: "host-local", dataDir, routes: [{ dst: "0.0.0.0/0" }], ranges: [[{ subnet: range }]] } },
      { type: "portmap", capabilities: { portMappings: true } },
    ],
  });
}

const iptablesS = async () => (await sh("iptables", ["-w", "5", "-S"])).stdout.split("\n");
/** This plugin's rules in cni-shim's chain (the comment names the network and the state dir's owner tag). */
const rulesOf = async (plugin: PluginHandle) => (await iptablesS()).filter((l) => l.startsWith(`-A ${FORWARD_CHAIN} `) && l.includes(`owner ${forwardOwner(plugin.stateDir)}`));
const jumps = async () => (await iptablesS()).filter((l) => / -j CNI-SHIM-FORWARD$/.test(l));
const chainExists = async () => (await iptablesS()).includes(`-N ${FORWARD_CHAIN}`);
const ipOf = async (container: string, net: string) => (await docker(["inspect", "-f", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, container])).stdout;

/** Remove this plugin's rules and, when nothing else is in it, the chain and its jump: what a reboot or a flush leaves. */
async function wipeOurs(plugin: PluginHandle): Promise<void> {
  for (const rule of await rulesOf(plugin)) await sh("sh", ["-c", `iptables -w 5 ${rule.replace(/^-A /, "-D ")}`]);
  const left = (await iptablesS()).filter((l) => l.startsWith(`-A ${FORWARD_CHAIN} `));
  if (left.length) return;
  for (const j of await jumps()) await sh("sh", ["-c", `iptables -w 5 ${j.replace(/^-A /, "-D ")}`]);
  await sh("iptables", ["-w", "5", "-X", FORWARD_CHAIN], { reject: false });
}

describe("forwarding of a network whose chain has no firewall plugin, under FORWARD policy DROP", () => {
  let plugin: PluginHandle;
  let offPlugin: PluginHandle | undefined;
  let confDir: string;
  let ipamDir: string;
  let policyBefore: string | undefined;
  const containers: string[] = [];
  const networks: string[] = [];
  const net = `cs-kindnet-${id}`;
  let netId = "";

  beforeAll(async () => {
    await requirePrerequisites();
    policyBefore = /^-P FORWARD (\S+)/m.exec((await sh("iptables", ["-w", "5", "-S", "FORWARD"])).stdout)?.[1];
    // dockerd sets DROP when it turns forwarding on itself. The engine harness's namespace inherits
    // forwarding on, so its dockerd leaves ACCEPT: set what dockerd sets, there only (its own
    // tables). On the system's engine (the host's tables) never change it: it must be DROP.
    if (ENGINE !== "20" && policyBefore !== "DROP") await sh("iptables", ["-w", "5", "-P", "FORWARD", "DROP"]);
    confDir = await mkdtemp(join(tmpdir(), "cs-fwd-conf-"));
    ipamDir = await mkdtemp(join(tmpdir(), "cs-fwd-ipam-"));
    await writeFile(join(confDir, "10-kindnet.conflist"), kindnet(listName, subnet, ipamDir));
    await writeFile(join(confDir, "20-kindnet-off.conflist"), kindnet(offListName, offSubnet, ipamDir));
    plugin = await startPlugin({ confDir });
  });

  afterAll(async () => {
    try {
      await docker(["rm", "-f", ...containers], { reject: false });
      for (const n of networks) await docker(["network", "rm", n], { reject: false });
      if (offPlugin) await cleanup([], [], offPlugin);
      await cleanup([], [], plugin, [confDir, ipamDir]);
    } finally {
      if (ENGINE !== "20" && policyBefore && policyBefore !== "DROP") await sh("iptables", ["-w", "5", "-P", "FORWARD", policyBefore], { reject: false });
    }
  });

  it("two containers reach each other by address and HTTP, and the rules are cni-shim's own", async () => {
    expect((await sh("iptables", ["-w", "5", "-S", "FORWARD"])).stdout).toMatch(/^-P FORWARD DROP$/m);
    networks.push(net);
    netId = (await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${listName}`, "--subnet", subnet, "--gateway", gateway, net])).stdout;
    const rules = await rulesOf(plugin);
    expect(rules.sort()).toEqual(
      [
        `-A ${FORWARD_CHAIN} -s ${subnet} -m comment --comment "cni-shim network ${netId} owner ${forwardOwner(plugin.stateDir)}" -j ACCEPT`,
        `-A ${FORWARD_CHAIN} -d ${subnet} -m comment --comment "cni-shim network ${netId} owner ${forwardOwner(plugin.stateDir)}" -j ACCEPT`,
      ].sort(),
    );
    expect(await jumps()).toEqual([`-A DOCKER-USER -j ${FORWARD_CHAIN}`]);
    expect(plugin.logs()).toContain(`forwarding accepted for ${subnet} because its chain has no firewall plugin`);

    const web = `cs-fwd-web-${id}`;
    const client = `cs-fwd-client-${id}`;
    containers.push(web, client);
    await docker(["run", "-d", "--name", web, "--network", net, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    await docker(["run", "-d", "--name", client, "--network", net, IMAGE, "sleep", "600"]);
    const webIp = await ipOf(web, net);
    const clientIp = await ipOf(client, net);
    expect(webIp).toMatch(/^10\.253\./);
    // ptp routes peers through the host: this is forwarded traffic, which the DROP policy would stop.
    await docker(["exec", client, "ping", "-c", "1", "-W", "2", webIp], { timeoutMs: 15_000 });
    await docker(["exec", web, "ping", "-c", "1", "-W", "2", clientIp], { timeoutMs: 15_000 });
    const page = await docker(["exec", client, "timeout", "5", "wget", "-q", "-O", "-", `http://${webIp}/`], { timeoutMs: 15_000 });
    expect(page.stdout).toBe("cni-shim test page");
    // The log says it once for the network, not per container.
    expect(plugin.logs().split("\n").filter((l) => l.includes("forwarding accepted for")).length).toBe(1);
  });

  it("puts the rules back after a kill -9 and a reboot's empty tables, and drops rules of networks it no longer has", async () => {
    await plugin.stop("SIGKILL");
    await wipeOurs(plugin);
    expect(await rulesOf(plugin)).toEqual([]);
    // A rule of a network whose record is gone (removed while the plugin was down).
    const ghost = `ghost${rand(8)}`;
    await sh("iptables", ["-w", "5", "-N", FORWARD_CHAIN], { reject: false });
    await sh("iptables", ["-w", "5", "-A", FORWARD_CHAIN, "-s", "10.253.250.0/24", "-m", "comment", "--comment", `cni-shim network ${ghost} owner ${forwardOwner(plugin.stateDir)}`, "-j", "ACCEPT"]);
    await plugin.start();
    await waitFor("the network's rules back and the ghost's gone", async () => {
      const rules = await rulesOf(plugin);
      return rules.length === 2 && rules.every((r) => r.includes(netId)) ? true : undefined;
    });
    expect(await jumps()).toEqual([`-A DOCKER-USER -j ${FORWARD_CHAIN}`]);
    const webIp = await ipOf(`cs-fwd-web-${id}`, net);
    await docker(["exec", `cs-fwd-client-${id}`, "timeout", "5", "wget", "-q", "-O", "-", `http://${webIp}/`], { timeoutMs: 15_000 });
  });

  it("puts the jump back at reconciliation when DOCKER-USER was flushed under it", async () => {
    // What a dockerd restart that recreates DOCKER-USER (or a hand) does to cni-shim's jump.
    await sh("iptables", ["-w", "5", "-D", "DOCKER-USER", "-j", FORWARD_CHAIN]);
    const gc = await sh("node", [CLI, "gc", "--socket", plugin.socket, "--state-dir", plugin.stateDir, "--log-level", "error"]);
    expect(JSON.parse(gc.stdout)).toMatchObject({ errors: [] });
    expect(await jumps()).toEqual([`-A DOCKER-USER -j ${FORWARD_CHAIN}`]);
    const webIp = await ipOf(`cs-fwd-web-${id}`, net);
    await docker(["exec", `cs-fwd-client-${id}`, "ping", "-c", "1", "-W", "2", webIp], { timeoutMs: 15_000 });
  });

  it("leaves no rule, chain or jump after docker network rm", async () => {
    await docker(["rm", "-f", `cs-fwd-web-${id}`, `cs-fwd-client-${id}`]);
    await docker(["network", "rm", net]);
    expect(await rulesOf(plugin)).toEqual([]);
    expect(plugin.logs()).toContain('"msg":"forwarding rules removed"');
    // Other serves on this host's tables (the system engine's other tests) may still have rules in the chain.
    const others = (await iptablesS()).filter((l) => l.startsWith(`-A ${FORWARD_CHAIN} `));
    if (!others.length) {
      expect(await chainExists()).toBe(false);
      expect(await jumps()).toEqual([]);
    }
    if (ENGINE !== "20") expect(others).toEqual([]); // the engine's own tables: nobody else's
  });

  it("takes the chain's host-local range as the subnet of a null-IPAM network", async () => {
    const nullNet = `cs-kindnet-null-${id}`;
    networks.push(nullNet);
    const nullId = (await docker(["network", "create", "-d", plugin.driver, "--ipam-driver", "null", "-o", `cni.network=${listName}`, nullNet])).stdout;
    expect((await rulesOf(plugin)).sort()).toEqual([`-A ${FORWARD_CHAIN} -d ${subnet} -m comment --comment "cni-shim network ${nullId} owner ${forwardOwner(plugin.stateDir)}" -j ACCEPT`, `-A ${FORWARD_CHAIN} -s ${subnet} -m comment --comment "cni-shim network ${nullId} owner ${forwardOwner(plugin.stateDir)}" -j ACCEPT`]);
    const a = `cs-fwd-null-a-${id}`;
    const b = `cs-fwd-null-b-${id}`;
    containers.push(a, b);
    await docker(["run", "-d", "--name", a, "--network", nullNet, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    await docker(["run", "-d", "--name", b, "--network", nullNet, IMAGE, "sleep", "600"]);
    const page = await docker(["exec", b, "timeout", "5", "wget", "-q", "-O", "-", `http://${await ipOf(a, nullNet)}/`], { timeoutMs: 15_000 });
    expect(page.stdout).toBe("cni-shim test page");
    await docker(["rm", "-f", a, b]);
    await docker(["network", "rm", nullNet]);
    expect(await rulesOf(plugin)).toEqual([]);
  });

  it("adds no rule with --accept-forwarding false: the containers reach their gateway but not each other", async () => {
    offPlugin = await startPlugin({ confDir, args: ["--accept-forwarding", "false"] });
    const offNet = `cs-kindnet-off-${id}`;
    networks.push(offNet);
    await docker(["network", "create", "-d", offPlugin.driver, "-o", `cni.network=${offListName}`, "--subnet", offSubnet, "--gateway", offGateway, offNet]);
    expect(await rulesOf(offPlugin)).toEqual([]);
    expect(offPlugin.logs()).toContain("--accept-forwarding false");
    expect(offPlugin.logs()).not.toContain("forwarding accepted for");
    const a = `cs-fwd-off-a-${id}`;
    const b = `cs-fwd-off-b-${id}`;
    containers.push(a, b);
    for (const c of [a, b]) await docker(["run", "-d", "--name", c, "--network", offNet, IMAGE, "sleep", "600"]);
    await docker(["exec", a, "ping", "-c", "1", "-W", "2", offGateway], { timeoutMs: 15_000 });
    const peer = await docker(["exec", a, "ping", "-c", "1", "-W", "2", await ipOf(b, offNet)], { reject: false, timeoutMs: 15_000 });
    expect(peer.failed).toBe(true);
    await docker(["rm", "-f", a, b]);
    await docker(["network", "rm", offNet]);
    expect(await rulesOf(offPlugin)).toEqual([]);
  });
});
