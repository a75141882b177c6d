// The CNI dhcp IPAM end to end on a null-IPAM network: a DHCP server (busybox udhcpd) serves a
// bridge of the test's own from a namespace of its own; the chain is bridge + dhcp, and cni-shim
// serve starts the dhcp daemon (on a socket of the test's own). The container's address comes
// from udhcpd's range, docker inspect shows it, it is kept across renewals (short leases), and
// the lease is released at teardown. A dhcp network with no server fails `docker run` within the
// exec timeout and leaves nothing. Traffic goes only to the test's own namespaces and containers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { dhcpDaemonFiles } from "../../src/cni/dhcp.js";
import { freeOctet, scopedLeftovers } from "../helpers/scoped-leaks.js";
import { IMAGE, cleanup, docker, rand, requirePrerequisites, sh, startPlugin, waitFor, type PluginHandle } from "../helpers/e2e.js";

const id = rand();
const LEASE_S = 30;
const EXEC_TIMEOUT_MS = 12_000;

async function ifaceOf(container: string): Promise<{ address?: string; mac?: string }> {
  const addr = (await docker(["exec", container, "ip", "-o", "-4", "addr", "show", "dev", "eth0"])).stdout;
  const link = (await docker(["exec", container, "ip", "-o", "link", "show", "dev", "eth0"])).stdout;
  return { address: /inet (\S+)/.exec(addr)?.[1], mac: /link\/ether (\S+)/.exec(link)?.[1] };
}

async function bridgePorts(bridge: string): Promise<string[]> {
  const out = (await sh("ip", ["-j", "link", "show", "master", bridge])).stdout;
  return (JSON.parse(out || "[]") as Array<{ ifname: string }>).map((l) => l.ifname);
}

async function ourNetns(): Promise<string[]> {
  return (await sh("ip", ["netns", "list"])).stdout
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n.startsWith("cni-shim-"));
}

describe("dhcp IPAM on a null-IPAM network (udhcpd in a namespace of the test's own)", () => {
  let plugin: PluginHandle | undefined;
  let confDir: string;
  let work: string;
  let prefix: string;
  let udhcpd: ResultPromise | undefined;
  let udhcpdOut = "";
  let daemonPid: number | undefined;
  const bridge = `csd${id}`;
  const noServerBridge = `cse${id}`;
  const serverNs = `csd-srv-${id}`;
  const vethHost = `csd${id}h`;
  const vethSrv = `csd${id}s`;
  const cniNet = `e2e-dhcp-${id}`;
  const cniNetNone = `e2e-dhcp-none-${id}`;
  const socket = `/run/cni/dhcp-csd${id}.sock`;
  const comment = `cni-shim-e2e-dhcp-${id}`;
  const networks: string[] = [];
  const containers: string[] = [];

  const leases = async () => {
    udhcpd?.kill("SIGUSR1"); // write the lease file now
    await new Promise((r) => setTimeout(r, 300));
    return (await sh("busybox", ["dumpleases", "-f", join(work, "leases")], { reject: false })).stdout;
  };
  const daemonLog = () => readFile(dhcpDaemonFiles(plugin!.stateDir, socket).log, "utf8").catch(() => "");

  beforeAll(async () => {
    await requirePrerequisites();
    await sh("busybox", ["udhcpd", "--help"], { reject: false }).then((r) => {
      if (!`${r.stdout}${r.stderr}`.includes("udhcpd")) throw new Error("busybox udhcpd is missing: apt-get install busybox-static");
    });
    await sh("test", ["-x", "/usr/lib/cni/dhcp"]);
    prefix = `10.249.${await freeOctet("10.249", parseInt(id.slice(0, 4), 16))}`;
    work = await mkdtemp(join(tmpdir(), "cs-dhcp-"));
    confDir = join(work, "net.d");
    await sh("mkdir", ["-p", confDir]);
    // The segment: a bridge, and the server's end of a veth pair in a namespace of its own.
    await sh("ip", ["link", "add", bridge, "type", "bridge"]);
    await sh("ip", ["link", "set", bridge, "up"]);
    await sh("ip", ["netns", "add", serverNs]);
    await sh("ip", ["link", "add", vethHost, "type", "veth", "peer", "name", vethSrv]);
    await sh("ip", ["link", "set", vethSrv, "netns", serverNs]);
    await sh("ip", ["link", "set", vethHost, "master", bridge, "up"]);
    await sh("ip", ["-n", serverNs, "addr", "add", `${prefix}.2/24`, "dev", vethSrv]);
    await sh("ip", ["-n", serverNs, "link", "set", vethSrv, "up"]);
    await sh("ip", ["-n", serverNs, "link", "set", "lo", "up"]);
    // dockerd's FORWARD policy is DROP and br_netfilter sends bridged frames through it: accept
    // what stays on the test's bridge (DHCP from 0.0.0.0 included), as Docker does for docker0.
    await sh("iptables", ["-w", "5", "-I", "FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", comment, "-j", "ACCEPT"]);
    await writeFile(
      join(work, "udhcpd.conf"),
      [`start ${prefix}.100`, `end ${prefix}.150`, `interface ${vethSrv}`, `lease_file ${join(work, "leases")}`, "max_leases 51", `min_lease ${LEASE_S}`, "auto_time 1", "opt subnet 255.255.255.0", `opt lease ${LEASE_S}`].join("\n") + "\n",
    );
    await writeFile(join(work, "leases"), "");
    udhcpd = execa("ip", ["netns", "exec", serverNs, "busybox", "udhcpd", "-f", "-v", join(work, "udhcpd.conf")], { reject: false, all: true, buffer: false });
    udhcpd.all?.on("data", (d: Buffer) => (udhcpdOut += d.toString()));
    await waitFor("udhcpd to start", () => Promise.resolve(udhcpdOut.includes("started") || undefined), 5_000);
    const list = (name: string, br: string) => JSON.stringify({ cniVersion: "1.0.0", name, plugins: [{ type: "bridge", bridge: br, isGateway: false, ipMasq: false, ipam: { type: "dhcp", daemonSocketPath: socket } }] });
    await writeFile(join(confDir, "10-dhcp.conflist"), list(cniNet, bridge));
    await writeFile(join(confDir, "20-dhcp-none.conflist"), list(cniNetNone, noServerBridge));
    plugin = await startPlugin({ confDir, execTimeoutMs: EXEC_TIMEOUT_MS });
  });

  afterAll(async () => {
    const pidFile = plugin ? dhcpDaemonFiles(plugin.stateDir, socket).pid : undefined;
    if (pidFile) daemonPid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim()) || undefined;
    await cleanup(containers, networks, plugin, []);
    // The daemon serve started for the test's socket (it outlives serve by design).
    if (daemonPid) {
      try {
        process.kill(daemonPid, "SIGTERM");
      } catch {
        /* gone */
      }
    }
    await rm(socket, { force: true });
    udhcpd?.kill("SIGTERM");
    await udhcpd;
    await sh("iptables", ["-w", "5", "-D", "FORWARD", "-i", bridge, "-o", bridge, "-m", "comment", "--comment", comment, "-j", "ACCEPT"], { reject: false });
    await sh("ip", ["link", "del", vethHost], { reject: false });
    await sh("ip", ["netns", "del", serverNs], { reject: false });
    await sh("ip", ["link", "del", bridge], { reject: false });
    await sh("ip", ["link", "del", noServerBridge], { reject: false });
    await rm(work, { recursive: true, force: true });
  });

  it("serve starts the daemon; the address is leased from udhcpd's range, shown by inspect, kept across renewals, and released at teardown", async () => {
    const net = `cs-dhcp-${id}`;
    networks.push(net);
    await docker(["network", "create", "-d", plugin!.driver, "--ipam-driver", "null", "-o", `cni.network=${cniNet}`, net]);
    expect(plugin!.logs()).toContain("started the dhcp daemon");
    const c = `cs-dhcp-c-${id}`;
    containers.push(c);
    await docker(["run", "-d", "--name", c, "--network", net, IMAGE, "sleep", "600"], { timeoutMs: 60_000 });
    const eth0 = await ifaceOf(c);
    expect(eth0.address).toMatch(new RegExp(`^${prefix.replace(/\./g, "\\.")}\\.(1[0-4]\\d|150)/24$`));
    const ip = eth0.address!.split("/")[0]!;
    const fmt = `{{with index .NetworkSettings.Networks "${net}"}}{{.IPAddress}}/{{.IPPrefixLen}} {{.MacAddress}} {{.EndpointID}}{{end}}`;
    const [seenAddr, seenMac, endpointId] = (await docker(["inspect", "-f", fmt, c])).stdout.trim().split(" ");
    expect(seenAddr).toBe(eth0.address);
    expect(seenMac).toBe(eth0.mac);
    const ping = await docker(["exec", c, "ping", "-c", "1", "-W", "3", `${prefix}.2`], { reject: false });
    expect(ping.stdout, ping.stderr).toContain("1 packets received");

    // The lease moves into the container's namespace once it exists (just after Join here).
    await waitFor("the lease to move into the container", () => Promise.resolve(plugin!.logs().includes("dhcp lease moved into the container's namespace") || undefined), 35_000);
    const acks = () => udhcpdOut.split("\n").filter((l) => l.includes(`ACK to ${ip}`)).length;
    const acksAfterMove = acks();
    // A renewal: the server ACKs again (renewal at half the lease), and the daemon says so.
    await waitFor("a renewal", async () => (acks() > acksAfterMove && (await daemonLog()).includes("lease renewed") ? true : undefined), (LEASE_S + 15) * 1000);
    // The only failure the daemon logs is the release of the staging namespace's lease during
    // the move (its DHCPRELEASE cannot leave: the interface is in the container by then).
    const failures = (await daemonLog()).split("\n").filter((l) => /no such device|too many open files|failed/.test(l));
    expect(failures.every((l) => l.includes("failed to release DHCP lease: no such device")), failures.join("\n")).toBe(true);
    expect(failures.length).toBeLessThanOrEqual(1);
    expect((await ifaceOf(c)).address).toBe(eth0.address);
    const again = await docker(["exec", c, "ping", "-c", "1", "-W", "3", `${prefix}.2`], { reject: false });
    expect(again.stdout, again.stderr).toContain("1 packets received");
    const leaseOf = (text: string) => text.split("\n").find((l) => l.split(/\s+/).includes(ip));
    const held = await leases();
    expect(leaseOf(held), held).toBeDefined();
    expect(leaseOf(held), held).not.toMatch(/expired/);

    // Teardown: the lease is released (udhcpd shows it expired at once, long before its time).
    const logBefore = (await daemonLog()).length;
    await docker(["rm", "-f", c]);
    containers.splice(containers.indexOf(c), 1);
    await waitFor("the endpoint's teardown", async () => ((await sh("ls", [join(plugin!.stateDir, "endpoints")])).stdout.includes(".json") ? undefined : true), 30_000);
    const log = (await daemonLog()).slice(logBefore);
    expect(log).toContain("releasing lease");
    expect(log).not.toContain("failed to release");
    const released = await leases();
    expect(leaseOf(released), released).toMatch(/expired/);
    await docker(["network", "rm", net]);
    networks.splice(networks.indexOf(net), 1);
    expect(await bridgePorts(bridge)).toEqual([vethHost]);
    expect(await scopedLeftovers({ ids: [endpointId!], addressPrefixes: [`${prefix}.`], cacheDir: plugin!.cacheDir, stateDir: plugin!.stateDir })).toEqual({});
  }, 180_000);

  it("with no DHCP server answering, docker run fails with a clear error within the exec timeout and leaves nothing", async () => {
    const net = `cs-dhcp-none-${id}`;
    networks.push(net);
    await docker(["network", "create", "-d", plugin!.driver, "--ipam-driver", "null", "-o", `cni.network=${cniNetNone}`, net]);
    const netnsBefore = await ourNetns();
    const c = `cs-dhcp-none-c-${id}`;
    containers.push(c);
    const started = Date.now();
    const run = await docker(["run", "-d", "--name", c, "--network", net, IMAGE, "sleep", "60"], { reject: false, timeoutMs: 90_000 });
    const took = Date.now() - started;
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toMatch(/did not finish within 12000 ms/);
    expect(run.stderr).toMatch(/dhcp/);
    expect(took).toBeLessThan(EXEC_TIMEOUT_MS + 15_000);
    await docker(["rm", "-f", c], { reject: false });
    containers.splice(containers.indexOf(c), 1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await bridgePorts(noServerBridge).catch(() => [])).toEqual([]);
    // Scoped: other tests on this host make namespaces of their own meanwhile.
    const ours = new Set([...plugin!.logs().matchAll(/"endpoint":"([0-9a-f]{12})"/g)].map((m) => `cni-shim-${m[1]}`));
    expect(ours.size).toBeGreaterThan(0);
    expect((await ourNetns()).filter((n) => !netnsBefore.includes(n) && ours.has(n)), plugin!.logs().split("\n").filter((l) => /netns|endpoint/.test(l)).slice(-30).join("\n")).toEqual([]);
    const netId = (await docker(["network", "inspect", "-f", "{{.Id}}", net])).stdout.trim();
    const left = await scopedLeftovers({ cacheDir: plugin!.cacheDir, stateDir: plugin!.stateDir });
    expect(left["state/endpoints"] ?? []).toEqual([]);
    expect((left.cacheFiles ?? []).filter((f) => f.startsWith(`${cniNetNone}-`))).toEqual([]);
    await docker(["network", "rm", net]);
    networks.splice(networks.indexOf(net), 1);
    expect((await scopedLeftovers({ stateDir: plugin!.stateDir }))["state/networks"] ?? []).not.toContain(`${netId}.json`);
  }, 120_000);
});
