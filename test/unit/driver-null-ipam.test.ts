// Networks made with `--ipam-driver null`: the chain's IPAM picks the addresses and Docker is told
// them in CreateEndpoint's reply. Bodies are Docker 28.5's, captured from the real engine
// (../../../shared/fixtures/libnetwork-28.5); CNI, host and teardown are fakes.
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ConfList } from "../../src/cni/schemas.js";
import { AttachChoice } from "../../src/driver/attach-choice.js";
import { addressesFromChain } from "../../src/driver/chain-addresses.js";
import * as api from "../../src/libnetwork/schemas.js";
import { setLogLevel } from "../../src/util/log.js";
import { harness, putEndpoint, putNetwork, type Harness } from "../helpers/driver-fakes.js";

setLogLevel("error");

const FIXTURES = fileURLToPath(new URL("../../../shared/fixtures/libnetwork-28.5", import.meta.url));
if (!existsSync(FIXTURES)) throw new Error(`libnetwork 28.5 fixtures not found in ${FIXTURES}: the shared/ folder must sit beside the repository`);
const fixture = (file: string): unknown => JSON.parse(readFileSync(join(FIXTURES, file), "utf8"));

const nullNetwork = (generic: Record<string, string> = { "cni.network": "kindlike" }) => {
  const req = api.CreateNetworkRequest.parse(fixture("01-CreateNetwork-null-ipam.json"));
  return { ...req, Options: { ...req.Options, [api.OPT.generic]: generic } };
};
const nullEndpoint = (iface: Record<string, string> = {}) => {
  const req = api.CreateEndpointRequest.parse(fixture("02-CreateEndpoint-null-ipam.json"));
  return { ...req, Interface: { ...req.Interface, ...iface } };
};

const kindlike = {
  cniVersion: "0.4.0",
  name: "kindlike",
  plugins: [
    { type: "ptp", ipMasq: false, ipam: { type: "host-local", ranges: [[{ subnet: "10.244.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] } },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
};
const noIpam = { cniVersion: "0.4.0", name: "noipam", plugins: [{ type: "ptp" }] };

let h: Harness;
let confDir: string;
afterEach(async () => {
  await h?.cleanup();
  if (confDir) await rm(confDir, { recursive: true, force: true });
});

async function withConfDir(o: { attach?: AttachChoice } = {}) {
  confDir = await mkdtemp(join(tmpdir(), "cni-shim-netd-"));
  await writeFile(join(confDir, "10-kindlike.conflist"), JSON.stringify(kindlike));
  await writeFile(join(confDir, "20-noipam.conflist"), JSON.stringify(noIpam));
  h = await harness({ ...o, confDirs: [confDir] });
}

describe("null IPAM: how the network is told apart", () => {
  it("Docker 28.5's null-IPAM pools (0.0.0.0/0, no gateway) mean the chain picks; its default IPAM's pools do not", () => {
    expect(addressesFromChain(api.CreateNetworkRequest.parse(fixture("01-CreateNetwork-null-ipam.json")))).toBe(true);
    expect(addressesFromChain(api.CreateNetworkRequest.parse(fixture("01-CreateNetwork.json")))).toBe(false);
  });
});

describe("null IPAM: CreateNetwork", () => {
  beforeEach(async () => withConfDir());

  it("records that the chain picks the addresses and keeps no pool of Docker's", async () => {
    await h.driver.createNetwork(nullNetwork());
    const net = await h.state.getNetwork(nullNetwork().NetworkID);
    expect(net?.addresses).toBe("cni");
    expect(net?.ipv4).toBeUndefined();
    expect(net?.conflist.name).toBe("kindlike");
  });

  it("the embedded default config is refused with what to give instead", async () => {
    await expect(h.driver.createNetwork(nullNetwork({}))).rejects.toThrow(/--ipam-driver null needs a conflist with its own IPAM: give -o cni.network=NAME/);
    expect(await h.state.listNetworks()).toEqual([]);
  });

  it("a chain with no IPAM is refused with what to add", async () => {
    await expect(h.driver.createNetwork(nullNetwork({ "cni.network": "noipam" }))).rejects.toThrow(/CNI network "noipam" has no IPAM .* add an IPAM/);
    expect(await h.state.listNetworks()).toEqual([]);
  });
});

describe("null IPAM: CreateEndpoint and Join", () => {
  const ifResult = (address?: string) => (att: { ifName: string; netns?: string }) => ({
    cniVersion: "0.4.0",
    interfaces: [{ name: "veth1", mac: "0a:00:00:00:00:09" }, { name: att.ifName, mac: "0a:58:0a:f4:00:07", sandbox: att.netns }],
    ips: address ? [{ version: "4", address, gateway: "10.244.0.1", interface: 1 }] : [],
  });

  it("runs the chain with no address of Docker's and replies with the address and MAC its IPAM gave", async () => {
    await withConfDir();
    await h.driver.createNetwork(nullNetwork());
    h.cni.resultFor = ifResult("10.244.0.7/24");
    const reply = await h.driver.createEndpoint(nullEndpoint());
    expect(reply).toEqual({ Interface: { Address: "10.244.0.7/24", MacAddress: "0a:58:0a:f4:00:07" } });
    const add = h.cni.adds[0]!;
    expect(add.capabilityArgs?.ips).toBeUndefined();
    expect((add.args ?? []).map(([k]) => k)).not.toContain("IP");
    const rec = await h.state.getEndpoint(nullEndpoint().EndpointID);
    expect(rec).toMatchObject({ phase: "ready", address: "10.244.0.7/24", macAddress: "0a:58:0a:f4:00:07" });
  });

  it("Join gives the gateway from the routes the chain left", async () => {
    await withConfDir();
    await h.driver.createNetwork(nullNetwork());
    h.cni.resultFor = ifResult("10.244.0.7/24");
    h.host.stagingRoutes = [
      { dst: "0.0.0.0/0", gateway: "10.244.0.1", dev: "eth0" },
      { dst: "10.244.0.0/24", gateway: "10.244.0.1", dev: "eth0" },
      { dst: "10.244.0.1", dev: "eth0", scope: "link" },
    ];
    await h.driver.createEndpoint(nullEndpoint());
    const join = await h.driver.join({ ...api.JoinRequest.parse(fixture("03-Join.json")), EndpointID: nullEndpoint().EndpointID, NetworkID: nullEndpoint().NetworkID });
    expect(join.Gateway).toBe("10.244.0.1");
    expect(join.InterfaceName?.SrcName).toMatch(/^cs/);
  });

  it("an IPAM that returns no address fails CreateEndpoint with what to check, and the chain is torn down", async () => {
    await withConfDir();
    await h.driver.createNetwork(nullNetwork());
    h.cni.resultFor = ifResult(undefined);
    await expect(h.driver.createEndpoint(nullEndpoint())).rejects.toThrow(/gave the container no address .*check the chain's IPAM/);
    expect(h.teardown.containerIds()).toEqual([nullEndpoint().EndpointID]);
    expect(await h.state.listEndpoints()).toEqual([]);
  });

  it("--ip on a null-IPAM network is refused before any ADD, with what to do", async () => {
    await withConfDir();
    await h.driver.createNetwork(nullNetwork());
    await expect(h.driver.createEndpoint(nullEndpoint({ Address: "10.244.0.50/24" }))).rejects.toThrow(/--ipam-driver null: the chain's IPAM picks the addresses, so --ip\/--ip6 cannot be honoured/);
    expect(h.cni.adds).toEqual([]);
    expect(await h.state.listEndpoints()).toEqual([]);
  });
});

describe("null IPAM on an engine whose namespace exists at Join (in-sandbox): the address taken ahead", () => {
  const KEY = "/var/run/docker/netns/3922e3390e0b";
  const id = () => nullEndpoint().EndpointID;
  const ipamGives = (address?: string) => () => ({ cniVersion: "0.4.0", ips: address ? [{ version: "4", address, gateway: "10.244.0.1" }] : [] });
  const joinSandbox = () => h.driver.join({ ...api.JoinRequest.parse(fixture("03-Join.json")), EndpointID: id(), NetworkID: nullEndpoint().NetworkID, SandboxKey: KEY });
  beforeEach(async () => {
    await withConfDir({ attach: new AttachChoice("sandbox") });
    await h.driver.createNetwork(nullNetwork());
    h.host.sandboxes.set(KEY, []);
  });

  it("CreateEndpoint runs the IPAM alone and replies with its address and a MAC made of it; no chain, no staging namespace", async () => {
    h.cni.ipamResultFor = ipamGives("10.244.0.7/24");
    const reply = await h.driver.createEndpoint(nullEndpoint());
    expect(reply).toEqual({ Interface: { Address: "10.244.0.7/24", MacAddress: "02:42:0a:f4:00:07" } });
    expect(h.cni.ipamCalls).toEqual([{ command: "ADD", containerId: id(), ifName: "eth0" }]);
    expect(h.cni.adds).toEqual([]);
    expect(h.host.namespaces.size).toBe(0);
    expect(await h.state.getEndpoint(id())).toMatchObject({ phase: "ready", attach: "in-sandbox", address: "10.244.0.7/24", ipamHeld: "eth0", macAddress: "02:42:0a:f4:00:07" });
  });

  it("Join gives the address back and runs the chain in the container's namespace asking for it (IP=, the list takes no ips capability)", async () => {
    h.cni.ipamResultFor = ipamGives("10.244.0.7/24");
    h.cni.resultFor = (att) => ({ cniVersion: "0.4.0", interfaces: [{ name: att.ifName, mac: "02:42:0a:f4:00:07", sandbox: att.netns }], ips: [{ version: "4", address: "10.244.0.7/24", interface: 0 }] });
    await h.driver.createEndpoint(nullEndpoint());
    expect(await joinSandbox()).toEqual({ DisableGatewayService: true });
    expect(h.cni.ipamCalls.map((c) => `${c.command} ${c.ifName}`)).toEqual(["ADD eth0", "DEL eth0"]);
    expect(h.cni.adds).toHaveLength(1);
    const add = h.cni.adds[0]!;
    expect(add).toMatchObject({ netns: KEY, ifName: "eth0" });
    expect(add.args?.[0]).toEqual(["IP", "10.244.0.7"]);
    expect(add.capabilityArgs?.mac).toBe("02:42:0a:f4:00:07");
    const rec = await h.state.getEndpoint(id());
    expect(rec).toMatchObject({ phase: "joined", sandboxKey: KEY, address: "10.244.0.7/24" });
    expect(rec?.ipamHeld).toBeUndefined();
  });

  it("no allocation of the network runs between a Join's give-back and its chain's ADD (another endpoint's IPAM ADD waits)", async () => {
    let n = 6;
    h.cni.ipamResultFor = () => ipamGives(`10.244.0.${++n}/24`)();
    h.cni.resultFor = (att) => ({ cniVersion: "0.4.0", interfaces: [{ name: att.ifName, sandbox: att.netns }], ips: [{ version: "4", address: "10.244.0.7/24", interface: 0 }] });
    await h.driver.createEndpoint(nullEndpoint());
    let open!: () => void;
    h.cni.addGate = new Promise((r) => (open = r));
    const joining = joinSandbox();
    for (let i = 0; i < 20 && h.cni.adds.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(h.cni.adds).toHaveLength(1); // A's chain ADD is running (held at the gate)
    const other = "c".repeat(64);
    const creating = h.driver.createEndpoint({ ...nullEndpoint(), EndpointID: other });
    await new Promise((r) => setTimeout(r, 50));
    expect(h.cni.ipamCalls.map((c) => `${c.command} ${c.containerId.slice(0, 1)}`)).toEqual([`ADD ${id().slice(0, 1)}`, `DEL ${id().slice(0, 1)}`]);
    open();
    await joining;
    expect((await creating).Interface?.Address).toBe("10.244.0.8/24");
    expect(h.cni.ipamCalls.map((c) => `${c.command} ${c.containerId.slice(0, 1)}`).at(-1)).toBe("ADD c");
  });

  it("a chain that takes the ips capability is asked through it", async () => {
    const withIps = { ...kindlike, name: "kindips", plugins: [{ ...kindlike.plugins[0], capabilities: { ips: true } }, kindlike.plugins[1]] };
    await writeFile(join(confDir, "15-kindips.conflist"), JSON.stringify(withIps));
    const other = { ...nullNetwork({ "cni.network": "kindips" }), NetworkID: "e".repeat(64) };
    await h.driver.createNetwork(other);
    h.cni.ipamResultFor = ipamGives("10.244.0.8/24");
    h.cni.resultFor = (att) => ({ cniVersion: "0.4.0", interfaces: [{ name: att.ifName, sandbox: att.netns }], ips: [{ version: "4", address: "10.244.0.8/24", interface: 0 }] });
    await h.driver.createEndpoint({ ...nullEndpoint(), NetworkID: other.NetworkID });
    await h.driver.join({ ...api.JoinRequest.parse(fixture("03-Join.json")), EndpointID: id(), NetworkID: other.NetworkID, SandboxKey: KEY });
    expect(h.cni.adds[0]?.capabilityArgs?.ips).toEqual(["10.244.0.8/24"]);
    expect((h.cni.adds[0]?.args ?? []).map(([k]) => k)).not.toContain("IP");
  });

  it("a chain that gives another address at Join than the IPAM did fails the Join with it", async () => {
    h.cni.ipamResultFor = ipamGives("10.244.0.7/24");
    h.cni.resultFor = (att) => ({ cniVersion: "0.4.0", interfaces: [{ name: att.ifName, sandbox: att.netns }], ips: [{ version: "4", address: "10.244.0.9/24", interface: 0 }] });
    await h.driver.createEndpoint(nullEndpoint());
    await expect(joinSandbox()).rejects.toThrow(/10\.244\.0\.7/);
  });

  it("DeleteEndpoint before any Join tears the endpoint down (the chain's DEL gives the address back)", async () => {
    h.cni.ipamResultFor = ipamGives("10.244.0.7/24");
    await h.driver.createEndpoint(nullEndpoint());
    await h.driver.deleteEndpoint({ NetworkID: nullEndpoint().NetworkID, EndpointID: id() });
    expect(h.teardown.containerIds()).toEqual([id()]);
    expect(h.teardown.targets[0]!.attachment.ifName).toBe("eth0");
    expect(await h.state.listEndpoints()).toEqual([]);
  });

  it("an IPAM that returns no address fails CreateEndpoint with what to check, and what it took is torn down", async () => {
    h.cni.ipamResultFor = ipamGives(undefined);
    await expect(h.driver.createEndpoint(nullEndpoint())).rejects.toThrow(/gave the container no address .*check the chain's IPAM/);
    expect(h.teardown.containerIds()).toEqual([id()]);
    expect(await h.state.listEndpoints()).toEqual([]);
  });

  it("a Join that finds no namespace gives the address back and takes the hand-out, asking for the same address", async () => {
    h.cni.ipamResultFor = ipamGives("10.244.0.7/24");
    h.cni.resultFor = (att) => ({ cniVersion: "0.4.0", interfaces: [{ name: att.ifName, sandbox: att.netns }], ips: [{ version: "4", address: "10.244.0.7/24", interface: 0 }] });
    await h.driver.createEndpoint(nullEndpoint());
    h.host.sandboxes.delete(KEY);
    const reply = await joinSandbox();
    expect(reply.InterfaceName?.SrcName).toMatch(/^cs/);
    expect(h.cni.ipamCalls.map((c) => c.command)).toEqual(["ADD", "DEL"]);
    expect(h.cni.adds[0]?.args?.[0]).toEqual(["IP", "10.244.0.7"]);
    expect(await h.state.getEndpoint(id())).toMatchObject({ phase: "joined", attach: "staging-handoff", address: "10.244.0.7/24" });
  });

  it("an IPAM that cannot hand out a requested address (here static) keeps the hand-out", async () => {
    const staticList = { cniVersion: "0.4.0", name: "staticnet", plugins: [{ type: "ptp", ipam: { type: "static", addresses: [{ address: "10.246.0.5/24" }] } }] };
    await writeFile(join(confDir, "40-static.conflist"), JSON.stringify(staticList));
    const other = { ...nullNetwork({ "cni.network": "staticnet" }), NetworkID: "d".repeat(64) };
    await h.driver.createNetwork(other);
    h.cni.resultFor = ifResultStatic;
    await h.driver.createEndpoint({ ...nullEndpoint(), NetworkID: other.NetworkID });
    expect((await h.state.getEndpoint(id()))?.attach).toBe("staging-handoff");
    expect(h.cni.ipamCalls).toEqual([]);
    expect(h.cni.adds).toHaveLength(1);
  });
});

const ifResultStatic = (att: { ifName: string; netns?: string }) => ({
  cniVersion: "0.4.0",
  interfaces: [{ name: att.ifName, sandbox: att.netns }],
  ips: [{ version: "4", address: "10.246.0.5/24", interface: 0 }],
});

describe("null IPAM: an ADD cut short", () => {
  it("the teardown of a record with no result and no address finds the address in host-local's reservations (firewall's rules name it)", async () => {
    await withConfDir();
    const dataDir = join(confDir, "ipam");
    const list: ConfList = {
      cniVersion: "0.4.0",
      name: "cutshort",
      plugins: [{ type: "ptp", ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.244.0.0/24" }]] } }, { type: "firewall" }],
    };
    const net = await putNetwork(h.state, nullNetwork().NetworkID, list);
    await h.state.putNetwork({ ...net, addresses: "cni" });
    const id = nullEndpoint().EndpointID;
    await mkdir(join(dataDir, "cutshort"), { recursive: true });
    await writeFile(join(dataDir, "cutshort", "10.244.0.9"), `${id}\neth0`);
    await writeFile(join(dataDir, "cutshort", "10.244.0.10"), `${"f".repeat(64)}\neth0`); // another container's
    await writeFile(join(dataDir, "cutshort", "last_reserved_ip.0"), "10.244.0.10");
    await putEndpoint(h.state, { id, networkId: net.id, phase: "adding", address: undefined });
    await h.driver.recover();
    await h.driver.settle();
    expect(h.teardown.containerIds()).toEqual([id]);
    expect(h.teardown.targets[0]!.intendedAddresses).toEqual(["10.244.0.9/24"]);
  });
});

describe("the warning for namespace-wide settings (tuning's sysctls) at CreateNetwork", () => {
  const sysctlList: ConfList = {
    cniVersion: "0.4.0",
    name: "withsysctl",
    plugins: [{ type: "ptp", ipam: { type: "host-local", ranges: [[{ subnet: "10.245.0.0/24" }]] } }, { type: "tuning", sysctl: { "net.core.somaxconn": "1234" } }],
  };
  const dockerIpam = () => ({ ...nullNetwork({ "cni.network": "withsysctl" }), IPv4Data: [{ AddressSpace: "LocalDefault", Pool: "10.245.0.0/24", Gateway: "10.245.0.1/24" }] });
  const warnings = async (attach: AttachChoice, req: api.CreateNetworkRequest) => {
    await withConfDir({ attach });
    await writeFile(join(confDir, "30-sysctl.conflist"), JSON.stringify(sysctlList));
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => (lines.push(String(chunk)), true));
    setLogLevel("warn");
    try {
      await h.driver.createNetwork(req);
    } finally {
      setLogLevel("error");
      spy.mockRestore();
    }
    return lines.filter((l) => l.includes("setting cannot reach the container"));
  };

  it("warns where the chain runs in staging (the hand-out)", async () => {
    expect(await warnings(new AttachChoice("handoff"), dockerIpam())).toHaveLength(1);
  });

  it("stays quiet where the chain runs in the container's namespace (in-sandbox)", async () => {
    expect(await warnings(new AttachChoice("sandbox"), dockerIpam())).toEqual([]);
  });

  it("stays quiet on a null-IPAM network with host-local on an in-sandbox engine: the address is taken ahead, the chain runs in the container's namespace", async () => {
    expect(await warnings(new AttachChoice("sandbox"), nullNetwork({ "cni.network": "withsysctl" }))).toEqual([]);
  });

  it("warns on a null-IPAM network on a hand-out engine", async () => {
    expect(await warnings(new AttachChoice("handoff"), nullNetwork({ "cni.network": "withsysctl" }))).toHaveLength(1);
  });
});
