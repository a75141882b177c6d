// The plugin's one question to Docker (network inspect over the Engine API socket), against a
// stand-in Engine API on a unix socket of the test's own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerNetworksOverSocket } from "../../src/docker/networks.js";

describe("dockerNetworksOverSocket", () => {
  let dir: string;
  let server: Server;
  const seen: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cs-dnet-"));
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === "/networks/live") return res.end(JSON.stringify({ Name: "n", Containers: { c1: { EndpointID: "ep1", Name: "x" } } }));
      if (req.url === "/networks/empty") return res.end(JSON.stringify({ Name: "n", Containers: null }));
      if (req.url === "/networks/odd") return res.end(JSON.stringify({ Containers: { c1: { EndpointID: 7 } } }));
      // A manager's answer for a swarm network it holds no instance of (Docker 28.5): the cluster's view.
      if (req.url === "/networks/ssd6lnubfd95pgyrmiktm8e1b") return res.end(JSON.stringify({ Name: "swnet1", Scope: "swarm", Containers: null }));
      if (req.url === "/networks/k2f3x0000000000000000000a") return res.end(JSON.stringify({ Name: "swnet2", Scope: "swarm", Containers: {} }));
      if (req.url === "/networks/busy") return res.writeHead(500).end('{"message":"daemon busy"}');
      if (req.url === "/networks/slow") return; // never answers
      res.writeHead(404).end('{"message":"network not found"}');
    });
    await new Promise<void>((r) => server.listen(join(dir, "docker.sock"), r));
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("returns the endpoints Docker still has", async () => {
    const nets = dockerNetworksOverSocket(join(dir, "docker.sock"));
    expect(await nets.inspect("live")).toEqual({ Containers: { c1: { EndpointID: "ep1" } } });
    expect(await nets.inspect("empty")).toEqual({ Containers: undefined });
    expect(seen).toContain("GET /networks/live");
  });

  it("rejects with statusCode 404 for a network Docker no longer has, and with the status otherwise", async () => {
    const nets = dockerNetworksOverSocket(join(dir, "docker.sock"));
    await expect(nets.inspect("gone")).rejects.toMatchObject({ statusCode: 404 });
    const busy = nets.inspect("busy");
    await expect(busy).rejects.toMatchObject({ statusCode: 500 });
    await expect(busy).rejects.toThrow(/daemon busy/);
    // The error names the reply and the field.
    await expect(nets.inspect("odd")).rejects.toThrow(/^Docker's network inspect of odd: unexpected output: Containers\.c1\.EndpointID: .*expected string, received number/);
  });

  it("takes a swarm network without an instance on this node for gone, and an instance's empty Containers for no endpoints", async () => {
    const nets = dockerNetworksOverSocket(join(dir, "docker.sock"));
    await expect(nets.inspect("ssd6lnubfd95pgyrmiktm8e1b")).rejects.toMatchObject({ statusCode: 404, message: "swarm network ssd6lnubfd95 has no instance on this node" });
    expect(await nets.inspect("k2f3x0000000000000000000a")).toEqual({ Containers: {} });
  });

  it("gives up on a daemon that does not answer", async () => {
    await expect(dockerNetworksOverSocket(join(dir, "docker.sock"), 200).inspect("slow")).rejects.toThrow(/no answer within 200 ms/);
    await expect(dockerNetworksOverSocket(join(dir, "absent.sock")).inspect("live")).rejects.toThrow(/ENOENT/);
  });
});
