// Swarm networks on a node: the bodies a real Docker 28.5 sent for a swarm network's tasks on a
// single-node swarm (test/fixtures/libnetwork-swarm-28.5): swarm's 25-character network ids, the
// options of the node's config-only network, a network made without --config-from, and the
// create/delete rounds a worker goes through (its first task creates the network, its last
// deletes it). CNI, host and Docker are fakes.
import { readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EMBEDDED_CONF_DIR } from "../../src/cni/config.js";
import { TranslationError } from "../../src/driver/translation-error.js";
import * as api from "../../src/libnetwork/schemas.js";
import { setLogLevel } from "../../src/util/log.js";
import { harness, type Harness } from "../helpers/driver-fakes.js";

setLogLevel("error");

const FIXTURES = new URL("../fixtures/libnetwork-swarm-28.5/", import.meta.url);
const fixture = (file: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(file, FIXTURES), "utf8")) as Record<string, unknown>;
const SWARM_NET = "ssd6lnubfd95pgyrmiktm8e1b";

const configFrom = (generic?: Record<string, string>) => {
  const req = api.CreateNetworkRequest.parse(fixture("01-CreateNetwork-config-from.json"));
  return generic ? { ...req, Options: { ...req.Options, [api.OPT.generic]: generic } } : req;
};
const endpoint = () => api.CreateEndpointRequest.parse(fixture("02-CreateEndpoint.json"));

/** The node's conflist its config-only network names (-o cni.network=swnet), as in the capture. */
const swnet = {
  cniVersion: "1.0.0",
  name: "swnet",
  plugins: [{ type: "bridge", bridge: "cs-swtest", isGateway: true, ipam: { type: "host-local", ranges: [[{ subnet: "10.231.0.0/24", gateway: "10.231.0.1" }]] } }],
};

let h: Harness;
let confDir: string;
beforeEach(async () => {
  confDir = await mkdtemp(join(tmpdir(), "cni-shim-swarm-"));
  await writeFile(join(confDir, "10-swnet.conflist"), JSON.stringify(swnet));
  h = await harness({ confDirs: [confDir, EMBEDDED_CONF_DIR] });
});
afterEach(async () => {
  await h.cleanup();
  await rm(confDir, { recursive: true, force: true });
});

describe("swarm network ids on the wire", () => {
  it("takes every body Docker 28.5 sent for a swarm network's task", () => {
    const schemas: Record<string, { parse(v: unknown): unknown }> = {
      CreateNetwork: api.CreateNetworkRequest,
      CreateEndpoint: api.CreateEndpointRequest,
      Join: api.JoinRequest,
      ProgramExternalConnectivity: api.ProgramExternalConnectivityRequest,
      EndpointOperInfo: api.EndpointRequest,
      Leave: api.EndpointRequest,
      DeleteEndpoint: api.EndpointRequest,
      DeleteNetwork: api.NetworkRequest,
      DiscoverNew: api.DiscoveryNotification,
    };
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThan(12);
    for (const file of files) {
      const call = /^\d+-([A-Za-z]+)/.exec(file)![1]!;
      expect(() => schemas[call]!.parse(fixture(file)), file).not.toThrow();
    }
    expect(api.isSwarmNetworkId(SWARM_NET)).toBe(true);
  });

  it.each([
    ["24 characters", SWARM_NET.slice(1)],
    ["26 characters", `${SWARM_NET}a`],
    ["upper case", SWARM_NET.toUpperCase()],
    ["a 64-character id that is not hex", "z".repeat(64)],
  ])("refuses a network id of %s", (_what, id) => {
    const r = api.NetworkRequest.safeParse({ NetworkID: id });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe("must be a 64-character hex id or a 25-character swarm network id as Docker sends it");
  });

  it("keeps endpoint ids at 64 hex characters (swarm's tasks get libnetwork's own)", () => {
    expect(api.EndpointRequest.safeParse({ NetworkID: SWARM_NET, EndpointID: SWARM_NET }).success).toBe(false);
  });
});

describe("CreateNetwork of a swarm network", () => {
  it("takes the node's config-only options (cni.network) and pool from Docker's body", async () => {
    await h.driver.createNetwork(configFrom());
    const rec = await h.state.getNetwork(SWARM_NET);
    expect(rec).toMatchObject({ id: SWARM_NET, mode: "named", ipv4: { pool: "10.231.0.0/24", gateway: "10.231.0.1/24" }, addresses: "docker", internal: false });
    expect(rec?.conflist.name).toBe("swnet");
  });

  it("names the default config's CNI network and bridge after the swarm id", async () => {
    await h.driver.createNetwork(configFrom({}));
    const rec = await h.state.getNetwork(SWARM_NET);
    expect(rec?.mode).toBe("default");
    expect(rec?.conflist.name).toBe("cni-shim-ssd6lnubfd95");
    expect(rec?.ownedBridge).toBe("cs-ssd6lnubfd95");
  });

  it("takes a config-only network without -o for the embedded default, on its --subnet", async () => {
    await h.driver.createNetwork(api.CreateNetworkRequest.parse(fixture("01-CreateNetwork-config-from-default.json")));
    const rec = await h.state.getNetwork("w05fdo4lgxd2igky97mgajjbs");
    expect(rec).toMatchObject({ mode: "default", ownedBridge: "cs-w05fdo4lgxd2", ipv4: { pool: "10.232.0.0/24" } });
    expect(JSON.stringify(rec?.conflist)).toContain("10.232.0.0/24");
  });

  it("takes a config-only network made with --ipam-driver null: the node's conflist picks the addresses", async () => {
    await writeFile(join(confDir, "20-swnull.conflist"), JSON.stringify({ ...swnet, name: "swnull" }));
    await h.driver.createNetwork(api.CreateNetworkRequest.parse(fixture("01-CreateNetwork-config-from-null-ipam.json")));
    expect(await h.state.getNetwork("8ll6iljq22h0vuobeikglmzdy")).toMatchObject({ mode: "named", addresses: "cni" });
  });

  it("refuses a swarm network made without --config-from, saying what to run", async () => {
    const req = api.CreateNetworkRequest.parse(fixture("01-CreateNetwork-no-config-from.json"));
    const err = await h.driver.createNetwork(req).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(TranslationError);
    expect(err?.message).toMatch(/^swarm network 2bjabi9i26opwm5ymhsl5ruty was created without --config-from/);
    expect(err?.message).toContain("docker network create --config-only");
    expect(err?.message).toContain("--scope swarm --config-from CFG");
    expect(await h.state.listNetworks()).toEqual([]);
  });

  it("takes a local network without the config-only mark as before", async () => {
    const req = configFrom({ "cni.network": "swnet" });
    const local = { ...req, NetworkID: "a".repeat(64), Options: { ...req.Options } };
    delete local.Options[api.OPT.internal];
    await h.driver.createNetwork(local);
    expect((await h.state.getNetwork("a".repeat(64)))?.conflist.name).toBe("swnet");
  });
});

describe("a worker's rounds of the same swarm network", () => {
  it("creates and deletes it again and again: one record while it lives, nothing between rounds", async () => {
    for (let round = 0; round < 3; round++) {
      await h.driver.createNetwork(configFrom());
      await h.driver.createEndpoint(endpoint());
      expect((await h.state.listNetworks()).map((n) => n.id)).toEqual([SWARM_NET]);
      expect((await h.state.listEndpoints()).map((e) => e.networkId)).toEqual([SWARM_NET]);
      await h.driver.deleteEndpoint(api.EndpointRequest.parse(fixture("08-DeleteEndpoint.json")));
      await h.driver.deleteNetwork(SWARM_NET);
      await h.driver.settle();
      expect(await h.state.listNetworks()).toEqual([]);
      expect(await h.state.listEndpoints()).toEqual([]);
    }
    expect(h.cni.adds).toHaveLength(3);
    expect(h.cni.entries.size).toBe(0);
  });

  it("replaces the record of a round whose DeleteNetwork never came, and keeps owning the bridge it made", async () => {
    await h.driver.createNetwork(configFrom({}));
    h.host.hostLinks.add("cs-ssd6lnubfd95"); // the chain made it in that round
    await h.driver.createNetwork(configFrom({}));
    expect(await h.state.listNetworks()).toHaveLength(1);
    expect((await h.state.getNetwork(SWARM_NET))?.ownedBridge).toBe("cs-ssd6lnubfd95");
  });

  it("does not take over a bridge of the same name that someone else made", async () => {
    h.host.hostLinks.add("cs-ssd6lnubfd95");
    await h.driver.createNetwork(configFrom({}));
    expect((await h.state.getNetwork(SWARM_NET))?.ownedBridge).toBeUndefined();
  });
});
