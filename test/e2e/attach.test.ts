// `cni-shim attach` / `detach` through the CLI on real --network none containers: the CNI list
// applied the Docker-era kubelet way, and a DEL that leaves nothing, also once the container is gone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, IMAGE, docker, httpGet, rand, requirePrerequisites, sh } from "../helpers/e2e.js";
import { freeOctet, scopedLeftovers, type Scope } from "../helpers/scoped-leaks.js";
import { podNetworkList } from "../helpers/conflists.js";

const id = rand();
const listName = `e2e-attach-${id}`;
const bridge = `csa${id}`;
const hostPort = 19000 + (parseInt(id.slice(2, 5), 16) % 900);
let octet = 0;
const prefix = () => `10.251.${octet}.`;

describe("cni-shim attach / detach", () => {
  let base: string;
  let confDir: string;
  let stateDir: string;
  let cacheDir: string;
  const web = `cs-att-web-${id}`;
  const gone = `cs-att-gone-${id}`;
  const bridged = `cs-att-bridged-${id}`;
  const ids: Record<string, string> = {};

  const cli = (args: string[]) => sh("node", [CLI, ...args, "--conf-dir", confDir, "--state-dir", stateDir, "--cache-dir", cacheDir], { reject: false, timeoutMs: 60_000 });
  const scope = (): Scope => ({ addressPrefixes: [prefix()], ids: Object.values(ids), hostPorts: [hostPort], cacheDir, stateDir });
  /** Leftovers of this test, plus the host-local reservations and bridge ports (kept by design: bridge and store stay, like on a node). */
  async function leftovers(): Promise<Record<string, string[]>> {
    const out = await scopedLeftovers(scope());
    const reservations = (await readdir(join("/var/lib/cni/networks", listName)).catch(() => [])).filter((f) => f !== "lock" && !f.startsWith("last_reserved_ip"));
    if (reservations.length) out.reservations = reservations;
    const ports = await sh("ip", ["-j", "link", "show", "master", bridge], { reject: false });
    const names = ports.failed ? [] : (JSON.parse(ports.stdout || "[]") as Array<{ ifname: string }>).map((l) => l.ifname);
    if (names.length) out.bridgePorts = names;
    return out;
  }
  async function start(name: string, network: string, cmd: string[]): Promise<string> {
    const cid = (await docker(["run", "-d", "--name", name, "--network", network, IMAGE, ...cmd])).stdout;
    ids[name] = cid;
    return cid;
  }

  beforeAll(async () => {
    await requirePrerequisites();
    octet = await freeOctet("10.251", parseInt(id.slice(0, 2), 16));
    base = await mkdtemp(join(tmpdir(), "cs-att-"));
    confDir = join(base, "net.d");
    stateDir = join(base, "state");
    cacheDir = join(base, "cache");
    await sh("mkdir", ["-p", confDir]);
    await writeFile(
      join(confDir, "10-attach.conflist"),
      podNetworkList({ name: listName, bridge, subnet: `${prefix()}0/24` }),
    );
  });

  afterAll(async () => {
    for (const name of [web, gone]) await cli(["detach", name]);
    await docker(["rm", "-f", web, gone, bridged], { reject: false });
    await sh("ip", ["link", "del", bridge], { reject: false });
    await rm(join("/var/lib/cni/networks", listName), { recursive: true, force: true });
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("brings up eth0 with an address of the list's subnet, lo, the default route and the published port", async () => {
    await start(web, "none", ["httpd", "-f", "-p", "80", "-h", "/www"]);
    const res = await cli(["attach", web, "--network", listName, "-p", `${hostPort}:80`]);
    expect(res.exitCode, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout) as { ips: Array<{ address: string; gateway: string }> };
    expect(result.ips[0]!.address.startsWith(prefix())).toBe(true);
    expect(result.ips[0]!.address.endsWith("/24")).toBe(true);

    const addr = (await docker(["exec", web, "ip", "-o", "addr"])).stdout;
    expect(addr).toContain(`eth0    inet ${result.ips[0]!.address}`);
    expect(addr).toMatch(/lo +inet 127\.0\.0\.1\/8/);
    const links = (await docker(["exec", web, "ip", "-o", "link"])).stdout.split("\n");
    const eth0 = links.find((l) => /\beth0@/.test(l))!;
    expect(eth0).toMatch(/<[^>]*\bUP\b[^>]*\bLOWER_UP\b[^>]*>/);
    expect(eth0).toContain("mtu 1400");
    expect(links.find((l) => /\blo:/.test(l))).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect((await docker(["exec", web, "ip", "route"])).stdout.split("\n")[0]!.trim()).toBe(`default via ${prefix()}1 dev eth0`);

    const ports = JSON.parse((await sh("ip", ["-j", "-d", "link", "show", "master", bridge])).stdout) as Array<{ linkinfo?: { info_slave_data?: { hairpin?: boolean } } }>;
    expect(ports).toHaveLength(1);
    expect(ports[0]!.linkinfo?.info_slave_data?.hairpin).toBe(true);
    expect(await httpGet(hostPort)).toBe("cni-shim test page\n");
    expect(await readdir(join(stateDir, "attachments"))).toHaveLength(1);
    expect((await readdir(join(cacheDir, "results"))).sort()).toEqual([`cni-loopback-${ids[web]}-lo`, `${listName}-${ids[web]}-eth0`].sort());
  });

  it("refuses a container Docker networks, and a second attach of the same list", async () => {
    await start(bridged, "bridge", ["sleep", "300"]);
    const onBridge = await cli(["attach", bridged, "--network", listName]);
    expect(onBridge.exitCode).toBe(1);
    expect(onBridge.stderr).toContain("--network none");
    const again = await cli(["attach", web, "--network", listName]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain("already attached");
    await docker(["rm", "-f", bridged]);
    delete ids[bridged];
  });

  it("detach runs DEL and leaves nothing: no veth, reservation, chain, rule, cache file or record", async () => {
    const res = await cli(["detach", web]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe(`detached ${web} from ${listName}`);
    expect((await docker(["exec", web, "ip", "-o", "link"])).stdout).not.toContain("eth0");
    expect(await leftovers()).toEqual({});
    await expect(httpGet(hostPort, "127.0.0.1", 1_000)).rejects.toThrow();
    await docker(["rm", "-f", web]);
  });

  it("detach after the container was removed still leaves nothing", async () => {
    const cid = await start(gone, "none", ["sleep", "300"]);
    const res = await cli(["attach", gone, "--network", listName]);
    expect(res.exitCode, res.stderr).toBe(0);
    const ip = (JSON.parse(res.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split("/")[0]!;
    expect((await sh("iptables-save", ["-t", "nat"])).stdout).toContain(`${ip}/32`);
    await docker(["rm", "-f", gone]);
    const det = await cli(["detach", gone]);
    expect(det.exitCode, det.stderr).toBe(0);
    expect(det.stdout).toBe(`detached ${gone} from ${listName}`);
    expect(await leftovers()).toEqual({});
    expect((await sh("ip", ["netns", "list"])).stdout).not.toContain(cid.slice(0, 11));
  });
});
