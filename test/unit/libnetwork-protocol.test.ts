// The libnetwork remote driver HTTP API over a unix socket, driven the way Docker 20.10 drives
// it: POST, Accept: application/vnd.docker.plugins.v1.2+json, no Content-Type, bodies exactly as
// captured from a real engine (../../../shared/fixtures/libnetwork-20.10).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, lstat, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { createConnection, createServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, listenUnix } from "../../src/libnetwork/server.js";
import { setLogLevel } from "../../src/util/log.js";
import {
  callPlugin,
  endpointFixture,
  fixtureJson,
  networkFixture,
  fixturePath,
  fixtureWireBody,
  networkDriverFixtures,
  closeServer,
  type PluginReply,
} from "../helpers/protocol-client.js";
import { createFakeDriver, type DriverMethod, type FakeDriver } from "../helpers/protocol-fake-driver.js";

const NET_ID = "81a8d9bec29ac03a2312528635b8dd0415c3aa252fa7bbb4b6384aac5c0f64fb";
const EP_ID = "fe6a48ea14a4f8fb944114527c28971beb6915d70a049879eb8bb0f2e8553f8a";

function expectJsonReply(r: PluginReply, status: number): void {
  expect(r.status, `HTTP status, body: ${r.text}`).toBe(status);
  expect(r.text.length, "reply body must never be empty (Docker fails to decode it)").toBeGreaterThan(0);
  expect(r.json, `reply must be JSON, got: ${r.text}`).toBeTypeOf("object");
  expect(r.json).not.toBeNull();
}

function errOf(r: PluginReply): string {
  const err = (r.json as { Err?: unknown }).Err;
  expect(err, `reply ${r.text} has no "Err" string`).toBeTypeOf("string");
  return err as string;
}

let dir: string;
let socketPath: string;
let driver: FakeDriver;
let server: NetServer | undefined;

beforeAll(() => setLogLevel("error"));
afterAll(() => setLogLevel("info"));

describe("remote driver protocol over the unix socket", () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cnishim-proto-"));
    socketPath = join(dir, "cni-shim.sock");
    driver = createFakeDriver();
    server = await listenUnix(createApp(driver), socketPath);
  });
  afterAll(async () => {
    await closeServer(server);
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => driver.reset());

  describe("handshake with empty bodies", () => {
    it("answers /Plugin.Activate with Implements NetworkDriver", async () => {
      const r = await callPlugin(socketPath, "/Plugin.Activate");
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Implements: ["NetworkDriver"] });
      expect(String(r.headers["content-type"]).split(";")[0]!.trim()).toBe("application/vnd.docker.plugins.v1.2+json");
      expect(driver.calls.map((c) => c.method)).toEqual(["activated"]);
    });

    it("answers /NetworkDriver.GetCapabilities: local data scope, global connectivity (swarm's DNS records reach the other nodes)", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.GetCapabilities");
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Scope: "local", ConnectivityScope: "global" });
      expect(String(r.headers["content-type"]).split(";")[0]!.trim()).toBe("application/vnd.docker.plugins.v1.2+json");
    });

    it("sends no Content-Type itself, like Docker, and still gets parsed (sanity of the client)", async () => {
      // A GetCapabilities with a body of just "\n" (what an encoder of nothing would send).
      const r = await callPlugin(socketPath, "/NetworkDriver.GetCapabilities", "\n");
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Scope: "local", ConnectivityScope: "global" });
    });
  });

  describe("Go's exact bytes on the wire", () => {
    /** One raw HTTP/1.1 exchange, written the way Go's net/http client writes Docker's request. */
    const rawExchange = (text: string) =>
      new Promise<string>((resolve, reject) => {
        const c = createConnection(socketPath);
        let data = "";
        c.on("data", (b: Buffer) => {
          data += b.toString();
          // One complete reply is enough: the header block plus Content-Length bytes.
          const m = /\r\ncontent-length: (\d+)\r\n/i.exec(data);
          const head = data.indexOf("\r\n\r\n");
          if (m && head >= 0 && Buffer.byteLength(data.slice(head + 4)) >= Number(m[1])) c.end();
        });
        c.on("end", () => resolve(data));
        c.on("error", reject);
        c.write(text);
      });
    const goRequest = (path: string, body: string) =>
      `POST ${path} HTTP/1.1\r\nHost: \r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Accept: application/vnd.docker.plugins.v1.2+json\r\nAccept-Encoding: gzip\r\n\r\n${body}`;

    it("an empty Host header and no Content-Type are accepted (Activate, empty body)", async () => {
      const out = await rawExchange(goRequest("/Plugin.Activate", ""));
      expect(out.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
      expect(JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4))).toEqual({ Implements: ["NetworkDriver"] });
    });

    it("a fixture body sent as raw bytes reaches the driver", async () => {
      const out = await rawExchange(goRequest("/NetworkDriver.CreateEndpoint", fixtureWireBody("02-CreateEndpoint-publish.json")));
      expect(out.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
      expect(driver.callsOf("createEndpoint")[0]!.Interface?.Address).toBe("172.18.0.2/16");
    });
  });

  describe("real request bodies from Docker 20.10", () => {
    const fixtures = networkDriverFixtures();

    const methodFor: Record<string, DriverMethod> = {
      CreateNetwork: "createNetwork",
      DeleteNetwork: "deleteNetwork",
      CreateEndpoint: "createEndpoint",
      EndpointOperInfo: "endpointOperInfo",
      DeleteEndpoint: "deleteEndpoint",
      Join: "join",
      Leave: "leave",
      ProgramExternalConnectivity: "programExternalConnectivity",
      RevokeExternalConnectivity: "revokeExternalConnectivity",
    };

    it.each(fixtures)("%s reaches the driver once and gets 200 with a JSON body", async (file) => {
      const path = fixturePath(file);
      const wire = fixtureWireBody(file);
      expect(wire.endsWith("}\n")).toBe(true);
      const r = await callPlugin(socketPath, path, wire);
      expectJsonReply(r, 200);
      const method = methodFor[path.replace("/NetworkDriver.", "")];
      expect(method, `no driver method for ${path}`).toBeDefined();
      expect(driver.calls.map((c) => c.method)).toEqual([method]);
      // Everything Docker sent is what the driver got (DeleteNetwork only takes the id).
      const sent = fixtureJson(file);
      const got = driver.calls[0]!.arg;
      if (method === "deleteNetwork") expect(got).toBe(sent.NetworkID);
      else expect(got).toMatchObject(sent);
    });

    it("CreateNetwork (opts): id, IPv4 pool/gateway, generic -o options", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", fixtureWireBody("01-CreateNetwork-opts.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({});
      const req = driver.callsOf("createNetwork")[0]!;
      expect(req.NetworkID).toBe(NET_ID);
      expect(req.IPv4Data).toHaveLength(1);
      expect(req.IPv4Data[0]!.Pool).toBe("172.18.0.0/16");
      expect(req.IPv4Data[0]!.Gateway).toBe("172.18.0.1/16");
      expect(req.IPv4Data[0]!.AddressSpace).toBe("LocalDefault");
      expect(req.IPv6Data).toEqual([]);
      expect(req.Options["com.docker.network.generic"]).toEqual({ "com.example.x": "1", foo: "bar" });
      expect(req.Options["com.docker.network.enable_ipv6"]).toBe(false);
    });

    it("CreateNetwork (ipv6, internal, aux addresses)", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", fixtureWireBody("01-CreateNetwork-ipv6-internal-aux.json"));
      expectJsonReply(r, 200);
      const req = driver.callsOf("createNetwork")[0]!;
      expect(req.IPv4Data[0]).toMatchObject({ Pool: "10.98.0.0/24", Gateway: "10.98.0.254/24", AuxAddresses: { r1: "10.98.0.5/24" } });
      expect(req.IPv6Data).toHaveLength(1);
      expect(req.IPv6Data[0]).toMatchObject({ Pool: "fd00:99::/64", Gateway: "fd00:99::1/64" });
      expect(req.Options["com.docker.network.internal"]).toBe(true);
      expect(req.Options["com.docker.network.enable_ipv6"]).toBe(true);
    });

    it("CreateEndpoint (publish): address, empty MAC, portmap and exposed ports", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", fixtureWireBody("02-CreateEndpoint-publish.json"));
      expectJsonReply(r, 200);
      const req = driver.callsOf("createEndpoint")[0]!;
      expect(req.NetworkID).toBe(NET_ID);
      expect(req.EndpointID).toBe(EP_ID);
      expect(req.Interface).toEqual({ Address: "172.18.0.2/16", AddressIPv6: "", MacAddress: "" });
      expect(req.Options["com.docker.network.portmap"]).toEqual([{ Proto: 6, IP: "", Port: 80, HostIP: "", HostPort: 8081, HostPortEnd: 8081 }]);
      expect(req.Options["com.docker.network.endpoint.exposedports"]).toEqual([{ Proto: 6, Port: 80 }]);
    });

    it("CreateEndpoint (mac): the user MAC in the interface and base64 in the options", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", fixtureWireBody("02-CreateEndpoint-mac.json"));
      expectJsonReply(r, 200);
      const req = driver.callsOf("createEndpoint")[0]!;
      expect(req.Interface?.MacAddress).toBe("02:00:00:00:00:0a");
      expect(req.Interface?.Address).toBe("172.20.0.2/16");
      expect(req.Options["com.docker.network.endpoint.macaddress"]).toBe("AgAAAAAK");
    });

    it("CreateEndpoint passes the driver's Interface reply through", async () => {
      driver.replies.createEndpoint = { Interface: { MacAddress: "7a:11:22:33:44:55" } };
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", fixtureWireBody("02-CreateEndpoint-publish.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Interface: { MacAddress: "7a:11:22:33:44:55" } });
    });

    it.each(["03-Join-publish.json", "03-Join-network-connect.json"])("Join (%s): SandboxKey reaches the driver and its JoinResponse comes back", async (file) => {
      const joinReply = {
        InterfaceName: { SrcName: "csfe6a48ea14a4", DstPrefix: "eth" },
        Gateway: "172.18.0.1",
        StaticRoutes: [{ Destination: "10.10.0.0/16", RouteType: 0, NextHop: "172.18.0.254" }],
        DisableGatewayService: true,
      };
      driver.replies.join = joinReply;
      const r = await callPlugin(socketPath, "/NetworkDriver.Join", fixtureWireBody(file));
      expectJsonReply(r, 200);
      expect(r.json).toEqual(joinReply);
      const req = driver.callsOf("join")[0]!;
      expect(req.SandboxKey).toBe(fixtureJson(file).SandboxKey);
      expect(req.SandboxKey).toMatch(/^\/var\/run\/docker\/netns\/[0-9a-f]{12}$/);
      expect(req.EndpointID).toBe(EP_ID);
    });

    it("Join with an empty JoinResponse still answers a JSON object", async () => {
      driver.replies.join = {};
      const r = await callPlugin(socketPath, "/NetworkDriver.Join", fixtureWireBody("03-Join-publish.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({});
    });

    it("ProgramExternalConnectivity carries the portmap options", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.ProgramExternalConnectivity", fixtureWireBody("04-ProgramExternalConnectivity.json"));
      expectJsonReply(r, 200);
      const req = driver.callsOf("programExternalConnectivity")[0]!;
      expect(req.Options["com.docker.network.portmap"]).toEqual([{ Proto: 6, IP: "", Port: 80, HostIP: "", HostPort: 8081, HostPortEnd: 8081 }]);
    });

    it("EndpointOperInfo replies with a Value object, empty or the driver's", async () => {
      let r = await callPlugin(socketPath, "/NetworkDriver.EndpointOperInfo", fixtureWireBody("05-EndpointOperInfo.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Value: {} });
      driver.replies.endpointOperInfo = { "cni-shim.address": "172.18.0.2/16" };
      r = await callPlugin(socketPath, "/NetworkDriver.EndpointOperInfo", fixtureWireBody("05-EndpointOperInfo.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Value: { "cni-shim.address": "172.18.0.2/16" } });
      expect(driver.callsOf("endpointOperInfo")).toHaveLength(2);
      expect(driver.callsOf("endpointOperInfo")[0]!.EndpointID).toBe(EP_ID);
    });

    it("DeleteNetwork hands the driver the network id", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.DeleteNetwork", fixtureWireBody("09-DeleteNetwork.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({});
      expect(driver.callsOf("deleteNetwork")).toEqual([NET_ID]);
    });

    it.each([
      ["06-RevokeExternalConnectivity.json", "revokeExternalConnectivity"],
      ["07-Leave.json", "leave"],
      ["08-DeleteEndpoint.json", "deleteEndpoint"],
    ] as const)("%s hands the driver both ids and answers {}", async (file, method) => {
      const r = await callPlugin(socketPath, fixturePath(file), fixtureWireBody(file));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({});
      expect(driver.callsOf(method)).toEqual([expect.objectContaining({ NetworkID: NET_ID, EndpointID: EP_ID })]);
    });

    it("a full container lifecycle in Docker's order reaches the driver in that order", async () => {
      const order = [
        "01-CreateNetwork-opts.json",
        "02-CreateEndpoint-publish.json",
        "03-Join-publish.json",
        "04-ProgramExternalConnectivity.json",
        "05-EndpointOperInfo.json",
        "06-RevokeExternalConnectivity.json",
        "07-Leave.json",
        "08-DeleteEndpoint.json",
        "09-DeleteNetwork.json",
      ];
      for (const file of order) expectJsonReply(await callPlugin(socketPath, fixturePath(file), fixtureWireBody(file)), 200);
      expect(driver.calls.map((c) => c.method)).toEqual([
        "createNetwork",
        "createEndpoint",
        "join",
        "programExternalConnectivity",
        "endpointOperInfo",
        "revokeExternalConnectivity",
        "leave",
        "deleteEndpoint",
        "deleteNetwork",
      ]);
    });
  });

  describe("real request bodies of a swarm network's task, from Docker 28.5", () => {
    const swarmFixture = (file: string) => readFileSync(new URL(`../fixtures/libnetwork-swarm-28.5/${file}`, import.meta.url), "utf8").trimEnd() + "\n";

    it("answers a task's whole life on a swarm network (25-character network id) and hands each call on", async () => {
      const order = ["00-DiscoverNew.json", "01-CreateNetwork-config-from.json", "02-CreateEndpoint-publish-host.json", "03-Join-publish-host.json", "05-EndpointOperInfo.json", "07-Leave.json", "08-DeleteEndpoint.json", "09-DeleteNetwork.json"];
      for (const file of order) expectJsonReply(await callPlugin(socketPath, fixturePath(file), swarmFixture(file)), 200);
      expect(driver.calls.map((c) => c.method)).toEqual(["createNetwork", "createEndpoint", "join", "endpointOperInfo", "leave", "deleteEndpoint", "deleteNetwork"]);
      expect(driver.callsOf("createNetwork")[0]).toMatchObject({ NetworkID: "ssd6lnubfd95pgyrmiktm8e1b", Options: { "com.docker.network.generic": { "cni.network": "swnet" }, "com.docker.network.internal": false } });
      expect(driver.callsOf("join")[0]).toMatchObject({ NetworkID: "ssd6lnubfd95pgyrmiktm8e1b", Options: { "com.docker.network.portmap": [{ Proto: 6, Port: 80, HostPort: 18080 }] } });
    });

    it("answers DiscoverNew with {} and bothers no driver call", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.DiscoverNew", swarmFixture("00-DiscoverNew.json"));
      expectJsonReply(r, 200);
      expect(r.json).toEqual({});
      expect(driver.calls).toEqual([]);
    });

    it("refuses a network id that is neither 64 hex nor swarm's 25 characters, naming both", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.DeleteNetwork", '{"NetworkID":"SSD6LNUBFD95PGYRMIKTM8E1B"}\n');
      expectJsonReply(r, 500);
      expect(errOf(r)).toBe("NetworkDriver.DeleteNetwork: malformed request: NetworkID: must be a 64-character hex id or a 25-character swarm network id as Docker sends it");
      expect(driver.calls).toEqual([]);
    });
  });

  describe("IPAM is not implemented", () => {
    it.each([
      ["/IpamDriver.GetCapabilities", undefined],
      ["/IpamDriver.GetDefaultAddressSpaces", undefined],
      ["/IpamDriver.RequestPool", "ipam-01-RequestPool.json"],
      ["/IpamDriver.RequestAddress", "ipam-02-RequestAddress-gateway.json"],
      ["/IpamDriver.RequestAddress", "ipam-03-RequestAddress-endpoint.json"],
      ["/IpamDriver.ReleaseAddress", undefined],
      ["/IpamDriver.ReleasePool", undefined],
    ] as const)("%s (%s) answers 404 with a JSON body", async (path, file) => {
      const r = await callPlugin(socketPath, path, file ? fixtureWireBody(file) : undefined);
      expectJsonReply(r, 404);
      expect(driver.calls).toEqual([]);
    });
  });

  describe("malformed requests: 500 {Err} naming the bad field, driver not called", () => {
    const net = networkFixture("01-CreateNetwork-opts.json");
    const ep = endpointFixture("02-CreateEndpoint-publish.json");
    const join = fixtureJson("03-Join-publish.json");
    const leave = fixtureJson("07-Leave.json");
    const { SandboxKey: _drop, ...joinNoSandbox } = join;
    const cases: Array<[string, string, string, RegExp[]]> = [
      ["invalid JSON", "/NetworkDriver.CreateNetwork", '{"NetworkID": "81a8', [/JSON/]],
      ["not JSON at all", "/NetworkDriver.Leave", "hello\n", [/JSON/]],
      ["NetworkID missing", "/NetworkDriver.CreateNetwork", JSON.stringify({ ...net, NetworkID: undefined }) + "\n", [/NetworkID/]],
      ["NetworkID not 64-hex", "/NetworkDriver.CreateNetwork", JSON.stringify({ ...net, NetworkID: "mynet" }) + "\n", [/NetworkID/, /64/]],
      ["NetworkID with upper-case hex", "/NetworkDriver.DeleteNetwork", JSON.stringify({ NetworkID: NET_ID.toUpperCase() }) + "\n", [/NetworkID/]],
      ["NetworkID a number", "/NetworkDriver.DeleteNetwork", JSON.stringify({ NetworkID: 12345 }) + "\n", [/NetworkID/]],
      [
        "IPv4Data Pool not a CIDR",
        "/NetworkDriver.CreateNetwork",
        JSON.stringify({ ...net, IPv4Data: [{ AddressSpace: "LocalDefault", Pool: "172.18.0.0", Gateway: "172.18.0.1/16" }] }) + "\n",
        [/IPv4Data\.0\.Pool/],
      ],
      [
        "IPv6Data Gateway garbage",
        "/NetworkDriver.CreateNetwork",
        JSON.stringify({ ...net, IPv6Data: [{ Pool: "fd00::/64", Gateway: "nope" }] }) + "\n",
        [/IPv6Data\.0\.Gateway/],
      ],
      ["IPv4Data not a list", "/NetworkDriver.CreateNetwork", JSON.stringify({ ...net, IPv4Data: "172.18.0.0/16" }) + "\n", [/IPv4Data/]],
      [
        "Interface.MacAddress malformed",
        "/NetworkDriver.CreateEndpoint",
        JSON.stringify({ ...ep, Interface: { ...ep.Interface, MacAddress: "02:00:00:00:0a" } }) + "\n",
        [/Interface\.MacAddress/],
      ],
      [
        "Interface.Address without prefix",
        "/NetworkDriver.CreateEndpoint",
        JSON.stringify({ ...ep, Interface: { ...ep.Interface, Address: "172.18.0.2" } }) + "\n",
        [/Interface\.Address/],
      ],
      ["EndpointID missing", "/NetworkDriver.CreateEndpoint", JSON.stringify({ ...ep, EndpointID: undefined }) + "\n", [/EndpointID/]],
      ["Join without SandboxKey", "/NetworkDriver.Join", JSON.stringify(joinNoSandbox) + "\n", [/SandboxKey/]],
      ["Join with an empty SandboxKey", "/NetworkDriver.Join", JSON.stringify({ ...join, SandboxKey: "" }) + "\n", [/SandboxKey/]],
      ["EndpointID a number", "/NetworkDriver.Leave", JSON.stringify({ ...leave, EndpointID: 7 }) + "\n", [/EndpointID/]],
      ["Options a string", "/NetworkDriver.CreateNetwork", JSON.stringify({ ...net, Options: "x" }) + "\n", [/Options/]],
      ["a JSON array instead of an object", "/NetworkDriver.Leave", "[]\n", [/malformed|object/i]],
    ];

    it.each(cases)("%s", async (_name, path, body, patterns) => {
      const r = await callPlugin(socketPath, path, body);
      expectJsonReply(r, 500);
      const err = errOf(r);
      for (const p of patterns) expect(err).toMatch(p);
      // The message says which call it was, as Docker shows it to the user.
      expect(err).toContain(path.slice(1));
      expect(driver.calls, "the driver must not see a malformed request").toEqual([]);
    });

    it("reports every bad field at once", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.Join", JSON.stringify({ NetworkID: 1, EndpointID: "x" }) + "\n");
      expectJsonReply(r, 500);
      const err = errOf(r);
      expect(err).toMatch(/NetworkID/);
      expect(err).toMatch(/EndpointID/);
      expect(err).toMatch(/SandboxKey/);
      expect(driver.calls).toEqual([]);
    });

    it("an empty body on a call that needs ids is rejected, not passed on", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint");
      expectJsonReply(r, 500);
      expect(errOf(r)).toMatch(/NetworkID/);
      expect(driver.calls).toEqual([]);
    });
  });

  describe("driver errors", () => {
    it.each([
      ["createNetwork", "01-CreateNetwork-opts.json", "CNI network \"k8s\" hands out 10.244.1.0/24"],
      ["createEndpoint", "02-CreateEndpoint-publish.json", "plugin bridge failed (ADD): failed to set bridge addr"],
      ["join", "03-Join-publish.json", "endpoint fe6a48ea14a4 is not ready"],
      ["endpointOperInfo", "05-EndpointOperInfo.json", "no such endpoint"],
      ["deleteEndpoint", "08-DeleteEndpoint.json", "DEL failed: iptables busy"],
      ["deleteNetwork", "09-DeleteNetwork.json", "network still has endpoints"],
    ] as const)("%s throwing gives 500 with Err = its message", async (method, file, message) => {
      driver.failures[method] = new Error(message);
      const r = await callPlugin(socketPath, fixturePath(file), fixtureWireBody(file));
      expectJsonReply(r, 500);
      expect(r.json).toEqual({ Err: message });
      expect(driver.callsOf(method)).toHaveLength(1);
    });

    it("the server keeps answering after a driver error", async () => {
      driver.failures.createEndpoint = new Error("boom");
      expectJsonReply(await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", fixtureWireBody("02-CreateEndpoint-publish.json")), 500);
      delete driver.failures.createEndpoint;
      expectJsonReply(await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", fixtureWireBody("02-CreateEndpoint-publish.json")), 200);
    });
  });

  describe("unknown calls", () => {
    it("an unknown path answers 404 with a JSON body", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.Frobnicate", fixtureWireBody("07-Leave.json"));
      expectJsonReply(r, 404);
      expect(errOf(r)).toContain("NetworkDriver.Frobnicate");
      expect(driver.calls).toEqual([]);
    });

    it("a GET, even of a known path, answers 404 with a JSON body", async () => {
      for (const path of ["/Plugin.Activate", "/", "/NetworkDriver.CreateNetwork"]) {
        const r = await callPlugin(socketPath, path, undefined, { method: "GET" });
        expectJsonReply(r, 404);
      }
      expect(driver.calls).toEqual([]);
    });

    it("the server still works after unknown and bad calls", async () => {
      await callPlugin(socketPath, "/nope", "garbage");
      await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", "{{{");
      await callPlugin(socketPath, "/x", undefined, { method: "DELETE" });
      const r = await callPlugin(socketPath, "/Plugin.Activate");
      expectJsonReply(r, 200);
      expect(r.json).toEqual({ Implements: ["NetworkDriver"] });
    });
  });

  describe("tolerance", () => {
    it("accepts unknown extra fields at every level and passes them on", async () => {
      const body = networkFixture("01-CreateNetwork-opts.json");
      body.FutureField = { a: 1 };
      body.IPv4Data[0]!.FutureIPAMField = "x";
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", JSON.stringify(body) + "\n");
      expectJsonReply(r, 200);
      const req = driver.callsOf("createNetwork")[0]!;
      expect(req.IPv4Data[0]!.Pool).toBe("172.18.0.0/16");
      expect(req.FutureField).toEqual({ a: 1 });

      const ep = endpointFixture("02-CreateEndpoint-publish.json");
      ep.Interface.NewThing = true;
      ep.Extra = [1, 2];
      const r2 = await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", JSON.stringify(ep) + "\n");
      expectJsonReply(r2, 200);
      expect(driver.callsOf("createEndpoint")[0]!.Interface?.Address).toBe("172.18.0.2/16");
    });

    it("accepts unknown fields in Join and Leave too", async () => {
      const join = { ...fixtureJson("03-Join-publish.json"), NewJoinField: "x" };
      expectJsonReply(await callPlugin(socketPath, "/NetworkDriver.Join", JSON.stringify(join) + "\n"), 200);
      const leave = { ...fixtureJson("07-Leave.json"), Whatever: null };
      expectJsonReply(await callPlugin(socketPath, "/NetworkDriver.Leave", JSON.stringify(leave) + "\n"), 200);
      expect(driver.calls.map((c) => c.method)).toEqual(["join", "leave"]);
      expect(driver.callsOf("join")[0]!.SandboxKey).toBe("/var/run/docker/netns/d3f9693074e5");
    });

    it("accepts null Options / IPv6Data as Docker's Go nil values", async () => {
      const body = { NetworkID: NET_ID, Options: null, IPv4Data: [{ Pool: "10.1.0.0/24" }], IPv6Data: null };
      const r = await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", JSON.stringify(body) + "\n");
      expectJsonReply(r, 200);
      const req = driver.callsOf("createNetwork")[0]!;
      expect(req.Options).toEqual({});
      expect(req.IPv6Data).toEqual([]);
    });

    it("accepts a body without the trailing newline and with a Content-Type", async () => {
      const r = await callPlugin(socketPath, "/NetworkDriver.Leave", JSON.stringify(fixtureJson("07-Leave.json")), {
        headers: { "Content-Type": "application/json" },
      });
      expectJsonReply(r, 200);
      expect(driver.callsOf("leave")).toHaveLength(1);
    });

    it("the swarm-only calls do not fail", async () => {
      for (const call of ["DiscoverNew", "DiscoverDelete", "FreeNetwork"]) {
        const r = await callPlugin(socketPath, `/NetworkDriver.${call}`, JSON.stringify({ DiscoveryType: 1, DiscoveryData: {} }) + "\n");
        expectJsonReply(r, 200);
      }
      const r = await callPlugin(socketPath, "/NetworkDriver.AllocateNetwork", "{}\n");
      expectJsonReply(r, 200);
      expect(r.json).toHaveProperty("Options", {});
    });
  });
});

describe("listenUnix", () => {
  let d: string;
  const servers: NetServer[] = [];
  beforeEach(async () => {
    d = await mkdtemp(join(tmpdir(), "cnishim-sock-"));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await closeServer(s);
    await rm(d, { recursive: true, force: true });
  });

  it("creates the socket with mode 0600 and serves on it", async () => {
    const path = join(d, "plugins", "cni-shim.sock"); // the directory does not exist yet
    const umaskBefore = process.umask();
    servers.push(await listenUnix(createApp(createFakeDriver()), path));
    expect(process.umask(), "listenUnix must restore the umask").toBe(umaskBefore);
    const st = await lstat(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const r = await callPlugin(path, "/Plugin.Activate");
    expect(r.status).toBe(200);
  });

  it("replaces a stale socket file left by a server that died", async () => {
    const path = join(d, "cni-shim.sock");
    // A process that listens and is SIGKILLed leaves its socket file behind (a clean close would
    // unlink it).
    const child = spawn(
      process.execPath,
      ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("ready"))`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (b: Buffer) => b.toString().includes("ready") && resolve());
      child.once("exit", (code) => reject(new Error(`helper exited early (${code})`)));
    });
    await new Promise<void>((resolve) => {
      child.removeAllListeners("exit");
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
    expect((await lstat(path)).isSocket(), "the dead server's socket file is still there").toBe(true);
    await expect(callPlugin(path, "/Plugin.Activate")).rejects.toThrow(/ECONNREFUSED/);

    const driver = createFakeDriver();
    servers.push(await listenUnix(createApp(driver), path));
    const r = await callPlugin(path, "/NetworkDriver.GetCapabilities");
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ Scope: "local", ConnectivityScope: "global" });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it("refuses a path another live server is listening on, and leaves it alone", async () => {
    const path = join(d, "cni-shim.sock");
    const other = createServer((c) => {
      c.on("error", () => {}); // listenUnix's liveness probe hangs up at once
      c.end("other\n");
    });
    await new Promise<void>((resolve) => other.listen(path, () => resolve()));
    servers.push(other);
    await expect(listenUnix(createApp(createFakeDriver()), path)).rejects.toThrow(/another process is (already )?serving/);
    // The other server's socket is untouched and still answers.
    expect((await lstat(path)).isSocket()).toBe(true);
    const answer = await new Promise<string>((resolve, reject) => {
      const c = createConnection(path);
      let data = "";
      c.on("data", (b: Buffer) => (data += b.toString()));
      c.on("end", () => resolve(data));
      c.on("error", reject);
    });
    expect(answer).toBe("other\n");
  });

  it("refuses a regular file at the path and does not delete it", async () => {
    const path = join(d, "cni-shim.sock");
    await writeFile(path, "not a socket\n");
    await expect(listenUnix(createApp(createFakeDriver()), path)).rejects.toThrow(/not a socket/);
    expect(await readFile(path, "utf8")).toBe("not a socket\n");
  });

  it("two plugin servers in one process: the second one is refused", async () => {
    const path = join(d, "cni-shim.sock");
    servers.push(await listenUnix(createApp(createFakeDriver()), path));
    await expect(listenUnix(createApp(createFakeDriver()), path)).rejects.toThrow(/another process/);
    expect((await callPlugin(path, "/Plugin.Activate")).status).toBe(200);
  });
});
