// cni-shim networks beside Docker-managed ones (a user-defined Docker bridge) in one container, in
// every order a user or Compose gets them: created on cni-shim then connected to Docker's before
// start, `docker run` with both (API 1.44+), connect/disconnect of either kind on a running
// container (one started on cni-shim alone too), cni-shim between two Docker networks, a restart,
// Docker's gateway priority. Every interface present with its own name, docker inspect's address,
// MAC and Gateway on it, the default route where Docker puts it, and nothing left. On Docker 28+
// the chain runs in the container's namespace and Docker names and routes its interface with its
// own (docs/design.md#docker-managed-networks-beside-cni-shims).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENGINE, IMAGE, attachPathOf, cleanup, containerNet, docker, pluginCall, rand, requirePrerequisites, startPlugin, waitFor, type PluginHandle } from "../helpers/e2e.js";
import { freeOctet, scopedLeftovers } from "../helpers/scoped-leaks.js";

const id = rand();
const label = `cni-shim-e2e-mixed=${id}`;

describe(`cni-shim and Docker-managed networks in one container on Docker ${ENGINE}`, () => {
  let plugin: PluginHandle;
  let o = 0;
  let d = 0;
  const cnet = `cs-mx-c-${id}`;
  const cnet2 = `cs-mx-c2-${id}`;
  const dnet = `cs-mx-d-${id}`;
  const dnet2 = `cs-mx-d2-${id}`;
  const containers: string[] = [];
  const name = (s: string) => {
    const n = `cs-mx-${s}-${id}`;
    containers.push(n);
    return n;
  };
  let d2 = 0;
  const dockerBridges: string[] = [];
  // API 1.44+ (Docker 25+) takes several --network at create; 1.48+ (Docker 28+) --gw-priority.
  let api = 0;

  beforeAll(async () => {
    await requirePrerequisites();
    plugin = await startPlugin();
    console.log(`engine ${ENGINE}: new endpoints take the ${attachPathOf(plugin)} path`);
    // Other tests add and remove Docker networks meanwhile (a network gone between list and inspect).
    o = await waitFor("a free 10.251.X.0/24", () => freeOctet("10.251", parseInt(id.slice(0, 2), 16)), 30_000);
    d = await waitFor("a free 10.254.X.0/24", () => freeOctet("10.254", parseInt(id.slice(2, 4), 16)), 30_000);
    d2 = await waitFor("a free 10.253.X.0/24", () => freeOctet("10.253", parseInt(id.slice(4, 6), 16)), 30_000);
    await docker(["network", "create", "-d", plugin.driver, "--label", label, "--subnet", `10.251.${o}.0/24`, "--gateway", `10.251.${o}.1`, cnet]);
    await docker(["network", "create", "-d", plugin.driver, "--label", label, "--subnet", `10.252.${o}.0/24`, "--gateway", `10.252.${o}.1`, cnet2]);
    await docker(["network", "create", "--label", label, "--subnet", `10.254.${d}.0/24`, "--gateway", `10.254.${d}.1`, dnet]);
    await docker(["network", "create", "--label", label, "--subnet", `10.253.${d2}.0/24`, "--gateway", `10.253.${d2}.1`, dnet2]);
    api = Number((await docker(["version", "--format", "{{.Server.APIVersion}}"])).stdout.split(".")[1]);
    for (const n of [dnet, dnet2]) dockerBridges.push(`br-${(await docker(["network", "inspect", "-f", "{{.Id}}", n])).stdout.slice(0, 12)}`);
  }, 120_000);

  afterAll(async () => {
    await cleanup(containers, [cnet, cnet2, dnet, dnet2], plugin); // what a failed test left
  });

  const gatewayOf: Record<string, () => string> = { [cnet]: () => `10.251.${o}.1`, [cnet2]: () => `10.252.${o}.1`, [dnet]: () => `10.254.${d}.1`, [dnet2]: () => `10.253.${d2}.1` };
  const firstOf = (nets: string[]) => [...nets].sort()[0]!;
  const field = async (c: string, net: string, f: "IPAddress" | "MacAddress" | "Gateway") => (await docker(["inspect", c, "--format", `{{with index .NetworkSettings.Networks "${net}"}}{{.${f}}}{{end}}`])).stdout;

  /**
   * Every network of `nets` on an interface of its own carrying docker inspect's address and MAC,
   * no other interface but lo, Docker's Gateway for every network (hand-out or Docker's own), one
   * default route per family, via `defaultVia`'s gateway on that network's interface, and each
   * gateway answering. Returns the interface of each network.
   */
  async function expectNetworks(c: string, nets: string[], defaultVia: string): Promise<Record<string, string>> {
    const { addr, links, routes } = await containerNet(c);
    const ifOf: Record<string, string> = {};
    for (const net of nets) {
      const ip = await field(c, net, "IPAddress");
      expect(ip, `${c} on ${net}`).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const m = new RegExp(`^\\d+: (\\S+)\\s+inet ${ip.replace(/\./g, "\\.")}/24`, "m").exec(addr);
      expect(m, `${ip} of ${net} in:\n${addr}`).not.toBeNull();
      ifOf[net] = m![1]!;
      const mac = await field(c, net, "MacAddress");
      expect(links, `MAC of ${net}`).toMatch(new RegExp(`\\d+: ${ifOf[net]}(@\\S+)?: [^\\n]*\\n?[^\\n]*link/ether ${mac}`));
      expect(await field(c, net, "Gateway"), `docker inspect's Gateway on ${net}`).toBe(gatewayOf[net]!());
    }
    expect(new Set(Object.values(ifOf)).size, JSON.stringify(ifOf)).toBe(nets.length);
    const names = [...links.matchAll(/^\d+: ([^:@\s]+)/gm)].map((x) => x[1]);
    expect(names.sort()).toEqual(["lo", ...Object.values(ifOf)].sort());
    expect(routes.filter((r) => r.startsWith("default"))).toEqual([`default via ${gatewayOf[defaultVia]!()} dev ${ifOf[defaultVia]}`]);
    for (const net of nets) {
      const ping = await docker(["exec", c, "ping", "-c", "1", "-W", "3", gatewayOf[net]!()], { reject: false });
      expect(ping.stdout, `ping the gateway of ${net}`).toContain("1 packets received");
    }
    return ifOf;
  }

  it("a container on cni-shim networks only: eth0 and eth1, Docker's Gateway for each", async () => {
    const c = name("pure");
    await docker(["run", "-d", "--label", label, "--name", c, "--network", cnet, IMAGE, "sleep", "600"]);
    await docker(["network", "connect", cnet2, c]);
    const ifOf = await expectNetworks(c, [cnet, cnet2], firstOf([cnet, cnet2]));
    expect(ifOf).toEqual({ [cnet]: "eth0", [cnet2]: "eth1" });
    await docker(["rm", "-f", c]);
  });

  it("started on cni-shim alone, then Docker's bridge connected while it runs; a restart; cni-shim's disconnected and connected again", async () => {
    const c = name("alone");
    await docker(["run", "-d", "--label", label, "--name", c, "--network", cnet, IMAGE, "sleep", "600"]);
    expect(await expectNetworks(c, [cnet], cnet)).toEqual({ [cnet]: "eth0" });
    await docker(["network", "connect", dnet, c]); // issue 25: Docker named its veth eth0 too ("file exists")
    expect(await expectNetworks(c, [cnet, dnet], firstOf([cnet, dnet]))).toEqual({ [cnet]: "eth0", [dnet]: "eth1" });
    await docker(["restart", "-t", "1", c]);
    await expectNetworks(c, [cnet, dnet], firstOf([cnet, dnet]));
    await docker(["network", "disconnect", cnet, c]);
    await expectNetworks(c, [dnet], dnet);
    await docker(["network", "connect", cnet, c]);
    await expectNetworks(c, [dnet, cnet], firstOf([cnet, dnet]));
  }, 180_000); // a dozen Docker calls and pings: over a minute on a loaded machine

  it("cni-shim between two Docker networks, created and connected before start, and with docker run", async () => {
    const nets = [dnet, cnet, dnet2];
    const c = name("middle");
    await docker(["create", "--label", label, "--name", c, "--network", dnet, IMAGE, "sleep", "600"]);
    await docker(["network", "connect", cnet, c]);
    await docker(["network", "connect", dnet2, c]);
    await docker(["start", c]);
    await expectNetworks(c, nets, firstOf(nets));
    if (api < 44) return; // several --network at create: API 1.44+
    const r = name("middle-run");
    await docker(["run", "-d", "--label", label, "--name", r, ...nets.flatMap((n) => ["--network", n]), IMAGE, "sleep", "600"]);
    await expectNetworks(r, nets, firstOf(nets));
  }, 120_000);

  it("created on cni-shim, connected to Docker's bridge before start (Compose's order): both start, and survive a restart", async () => {
    const c = name("compose");
    await docker(["create", "--label", label, "--name", c, "--network", cnet, IMAGE, "sleep", "600"]);
    await docker(["network", "connect", dnet, c]);
    await docker(["start", c]);
    // Equal gateway priorities: Docker's order of its endpoints decides (the network names).
    const first = [cnet, dnet].sort()[0]!;
    await expectNetworks(c, [cnet, dnet], first);
    await docker(["restart", "-t", "1", c]);
    await expectNetworks(c, [cnet, dnet], first);
  });

  it("docker run with both networks, in either order (before API 1.44: created with one, connected to the other, started)", async () => {
    for (const nets of [
      [cnet, dnet],
      [dnet, cnet],
    ]) {
      const c = name(`run-${nets[0] === cnet ? "cd" : "dc"}`);
      if (api >= 44) await docker(["run", "-d", "--label", label, "--name", c, ...nets.flatMap((n) => ["--network", n]), IMAGE, "sleep", "600"]);
      else {
        await docker(["create", "--label", label, "--name", c, "--network", nets[0]!, IMAGE, "sleep", "600"]);
        await docker(["network", "connect", nets[1]!, c]);
        await docker(["start", c]);
      }
      await expectNetworks(c, nets, [cnet, dnet].sort()[0]!);
    }
  });

  it("connect and disconnect of either kind on a running mixed container; the gateway priority decides the default route", async () => {
    // Before Docker 28 there is no priority: Docker's order of its endpoints decides (the names).
    const prio = api >= 48 ? ["--gw-priority", "10"] : [];
    const c = name("conn");
    await docker(["run", "-d", "--label", label, "--name", c, "--network", dnet, IMAGE, "sleep", "600"]);
    await docker(["network", "connect", ...prio, cnet, c]);
    await expectNetworks(c, [dnet, cnet], prio.length ? cnet : [cnet, dnet].sort()[0]!);
    await docker(["network", "connect", cnet2, c]);
    await expectNetworks(c, [dnet, cnet, cnet2], cnet);
    await docker(["network", "disconnect", cnet, c]);
    await expectNetworks(c, [dnet, cnet2], [dnet, cnet2].sort()[0]!);
    await docker(["network", "disconnect", dnet, c]);
    await expectNetworks(c, [cnet2], cnet2);
    await docker(["network", "connect", ...prio, dnet, c]);
    await expectNetworks(c, [cnet2, dnet], prio.length ? dnet : [cnet2, dnet].sort()[0]!);
    await docker(["restart", "-t", "1", c]);
    await expectNetworks(c, [cnet2, dnet], prio.length ? dnet : [cnet2, dnet].sort()[0]!);
  }, 180_000);

  it("leaves nothing once the containers and networks are gone", async () => {
    await docker(["rm", "-f", ...containers]);
    for (const n of [cnet, cnet2, dnet, dnet2]) await docker(["network", "rm", n]);
    const settled = await pluginCall(plugin.socket, "/CniShim.Settle", "{}");
    expect(settled.status).toBe(200);
    const left = await scopedLeftovers({ addressPrefixes: [`10.251.${o}.`, `10.252.${o}.`, `10.254.${d}.`, `10.253.${d2}.`], bridges: dockerBridges, cacheDir: plugin.cacheDir, stateDir: plugin.stateDir, dockerLabel: label });
    expect(left).toEqual({});
  });
});
