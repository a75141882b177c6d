// The CNI runtime driving the REAL reference plugins (/usr/lib/cni, Debian 1.1.1) against a
// network namespace of our own: bridge + host-local + portmap + firewall + tuning, and loopback
// as its own list (like kubelet). Needs root, iproute2, iptables and the plugins; a missing
// prerequisite fails the whole file with a message.
//
// Everything is unique to this run (netns, bridge, subnet, network names, container ids) and all
// plugin state goes to this test's temp dir, so it coexists with other tests and real workloads.
// Traffic: only to 127.0.0.1 (DNAT'ed by portmap into our own netns).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa, type ResultPromise } from "execa";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CniRuntime } from "../../src/cni/runtime.js";
import { confListFromObject, type LoadedConfList } from "../../src/cni/config.js";
import type { ExecRecord } from "../../src/cni/invoke.js";
import { run } from "../../src/util/command.js";
import { httpGet } from "../../src/util/http.js";
import { bridgePlugin } from "../helpers/conflists.js";

const CNI_BIN = "/usr/lib/cni";
const PLUGINS = ["bridge", "host-local", "portmap", "firewall", "tuning", "loopback"];

const R = randomBytes(2).toString("hex");
const NETNS = `cnishim-it-${R}`;
const NETNS_PATH = `/var/run/netns/${NETNS}`;
const BRIDGE = `cshit${R}`; // 9 chars, unique per run
const NET = `cnishim-it-${R}`;
const LO_NET = `cnishim-it-lo-${R}`;
const CID = `cnishimit${randomBytes(12).toString("hex")}`;
const FAIL_CID = `${CID}-fail`;
const TIMING_RUNS = 5;
const timingId = (i: number) => `${CID}-t${i}`;

let octet = 0; // X of 10.250.X.0/24, chosen free in beforeAll
let hostPort = 0;
let tmp = "";
let rt: CniRuntime;
let mainNet: LoadedConfList;
let loNet: LoadedConfList;
const execs: ExecRecord[] = [];
let netnsCreated = false;
let httpd: ResultPromise | undefined;

const subnet = () => `10.250.${octet}.0/24`;
const gateway = () => `10.250.${octet}.1`;
const containerIp = () => `10.250.${octet}.7`;
const ipamDir = () => join(tmp, "ipam");
const tuningDir = () => join(tmp, "tuning");

const mainBridge = (ipamType?: string) => bridgePlugin({ bridge: BRIDGE, subnet: subnet(), gateway: gateway(), dataDir: ipamDir(), ipamType, ipsCapability: true });

function mainConf(overrides: Record<string, unknown> = {}) {
  return {
    cniVersion: "1.0.0",
    name: NET,
    plugins: [
      mainBridge(),
      { type: "portmap", snat: true, capabilities: { portMappings: true } },
      { type: "firewall" },
      { type: "tuning", mtu: 1400, sysctl: { "net.ipv4.conf.eth0.arp_notify": "1" }, dataDir: tuningDir() },
    ],
    ...overrides,
  };
}

const sh = (cmd: string, args: string[]) => run(cmd, args, { timeoutMs: 20_000 });
const nsExec = (args: string[]) => sh("ip", ["netns", "exec", NETNS, ...args]);
/** `ip -j` output, read as the entries these tests look at. */
const json = <T>(text: string): T[] => JSON.parse(text || "[]") as T[];

/** An entry of `ip -j addr show` (the fields read here). */
interface IpAddrEntry {
  ifname: string;
  flags: string[];
  operstate: string;
  mtu: number;
  addr_info: Array<{ family: string; local: string; prefixlen: number }>;
}

async function iptablesRules(table: "nat" | "filter"): Promise<string[]> {
  return (await sh("iptables", ["-w", "-t", table, "-S"])).split("\n").filter(Boolean);
}

/** Lines of `iptables -S` (nat and filter) that mention `needle` (a string, or an IP not followed by a digit). */
async function rulesMentioning(needles: string[]): Promise<string[]> {
  const res = needles.map((n) => new RegExp(`${n.replace(/[.]/g, "\\.")}(?![0-9a-zA-Z])`));
  const out: string[] = [];
  for (const table of ["nat", "filter"] as const) {
    for (const line of await iptablesRules(table)) if (res.some((re) => re.test(line))) out.push(`${table}: ${line}`);
  }
  return out;
}

/** Per-container chains (CNI-<hex>, CNI-DN-<hex>) the rules mentioning `needles` jump to or live in. */
function perContainerChains(lines: string[]): string[] {
  const chains = new Set<string>();
  for (const line of lines) {
    const rule = line.replace(/^\w+: /, "");
    for (const m of rule.matchAll(/(?:-j|-A|-N) (CNI-(?:DN-)?[0-9a-f]{16,})\b/g)) chains.add(m[1]!);
  }
  return [...chains];
}

async function bridgePorts(): Promise<Array<{ ifname: string }>> {
  return json<{ ifname: string }>(await sh("ip", ["-j", "link", "show", "master", BRIDGE]));
}

async function linkInNetns(ifname: string): Promise<IpAddrEntry | undefined> {
  const res = await execa("ip", ["-n", NETNS, "-j", "addr", "show", "dev", ifname], { reject: false });
  if (res.exitCode !== 0) return undefined;
  return json<IpAddrEntry>(String(res.stdout))[0];
}

/** Files under the host-local data dir whose content names `containerId`. */
async function reservationsOf(containerId: string): Promise<string[]> {
  const out: string[] = [];
  if (!existsSync(ipamDir())) return out;
  for (const netDir of await readdir(ipamDir())) {
    for (const f of await readdir(join(ipamDir(), netDir))) {
      const text = await readFile(join(ipamDir(), netDir, f), "utf8").catch(() => "");
      if (text.includes(containerId)) out.push(`${netDir}/${f}`);
    }
  }
  return out;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function pickFreeOctet(): Promise<number> {
  const used = (await sh("ip", ["-4", "addr"])) + (await sh("ip", ["-4", "route", "show", "table", "all"]));
  for (let attempt = 0; attempt < 200; attempt++) {
    const x = 2 + Math.floor(Math.random() * 250);
    if (!used.includes(`10.250.${x}.`)) return x;
  }
  throw new Error("no free 10.250.X.0/24 subnet on this host");
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (x: number) => `${x.toFixed(0)} ms`;

async function checkPrerequisites(): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("must run as root (creates netns, bridges, iptables rules)");
  for (const p of PLUGINS) {
    await access(join(CNI_BIN, p), constants.X_OK).catch(() => problems.push(`CNI plugin ${join(CNI_BIN, p)} missing (apt-get install containernetworking-plugins)`));
  }
  for (const [tool, args] of [
    ["ip", ["-V"]],
    ["iptables", ["--version"]],
    ["/bin/busybox", ["true"]],
  ] as const) {
    await execa(tool, [...args]).catch((e: Error) => problems.push(`${tool} is not usable: ${e.message.split("\n")[0]}`));
  }
  if (problems.length) throw new Error(`integration prerequisites missing:\n - ${problems.join("\n - ")}`);
}

/** Best-effort removal of everything this file may have created; never throws. */
async function cleanupEverything(): Promise<void> {
  const errors: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (err) {
      errors.push(`${what}: ${(err as Error).message}`);
    }
  };
  if (httpd) {
    httpd.kill("SIGKILL");
    await httpd.catch(() => undefined);
  }
  // Let the plugins undo what they did for whatever is still cached.
  if (rt) {
    for (const name of [NET, LO_NET]) {
      for (const entry of await rt.cache.list(name).catch(() => [])) {
        await attempt(`DEL ${name}/${entry.containerId}`, () =>
          rt.del(CniRuntime.confListOf(entry), { containerId: entry.containerId, ifName: entry.ifName, netns: entry.netns }),
        );
      }
    }
  }
  if (netnsCreated) await attempt("ip netns del", () => sh("ip", ["netns", "del", NETNS]));
  await execa("ip", ["link", "del", BRIDGE], { reject: false });
  if (octet) {
    const ids = [CID, FAIL_CID, `${CID}-warm`, ...Array.from({ length: TIMING_RUNS }, (_, i) => timingId(i))];
    const leftovers = await rulesMentioning([...ids, containerIp()]).catch(() => [] as string[]);
    for (const line of leftovers) {
      const [table, rule] = line.split(/: (.*)/s) as [string, string];
      if (rule.startsWith("-A ")) await execa("sh", ["-c", `iptables -w -t ${table} ${rule.replace(/^-A /, "-D ")}`], { reject: false });
    }
    for (const chain of perContainerChains(leftovers)) {
      for (const table of ["nat", "filter"]) {
        await execa("iptables", ["-w", "-t", table, "-F", chain], { reject: false });
        await execa("iptables", ["-w", "-t", table, "-X", chain], { reject: false });
      }
    }
    if (leftovers.length) errors.push(`removed leftover iptables rules:\n   ${leftovers.join("\n   ")}`);
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
  if (errors.length) console.log(`[cni-real-plugins] cleanup notes:\n - ${errors.join("\n - ")}`);
}

// A failed setup (missing prerequisite) is rethrown by every test, so each one FAILS with the
// reason instead of being reported as skipped.
let setupError: Error | undefined;
function itReal(name: string, fn: () => Promise<void>) {
  it(name, async () => {
    if (setupError) throw setupError;
    await fn();
  });
}

beforeAll(async () => {
  try {
    await checkPrerequisites();
    octet = await pickFreeOctet();
    hostPort = await freeLoopbackPort();
    tmp = await mkdtemp(join(tmpdir(), "cnishim-it-"));
    await sh("ip", ["netns", "add", NETNS]);
    netnsCreated = true;
    rt = new CniRuntime({ cniPath: [CNI_BIN], cacheDir: join(tmp, "cache"), execTimeoutMs: 30_000, onExec: (r) => execs.push(r) });
    mainNet = confListFromObject(mainConf(), `${NET}.conflist`);
    loNet = confListFromObject({ cniVersion: "1.0.0", name: LO_NET, plugins: [{ type: "loopback" }] }, `${LO_NET}.conflist`);
    console.log(`[cni-real-plugins] netns ${NETNS}, bridge ${BRIDGE}, subnet ${subnet()}, container ${CID}, host port ${hostPort}`);
  } catch (err) {
    setupError = err as Error;
    await cleanupEverything();
  }
});

afterAll(async () => {
  await cleanupEverything();
});

const mainAtt = () => ({
  containerId: CID,
  netns: NETNS_PATH,
  ifName: "eth0",
  args: [["IP", containerIp()]] as Array<[string, string]>,
  capabilityArgs: {
    ips: [`${containerIp()}/24`],
    portMappings: [{ hostPort, containerPort: 80, protocol: "tcp" }],
  },
});

describe("real CNI plugins through CniRuntime", () => {
  let natChains: string[] = [];
  let hostVeth = "";

  itReal("ADD (loopback list, then bridge+portmap+firewall+tuning) configures the container and the host", async () => {
    const lo = await rt.add(loNet, { containerId: CID, netns: NETNS_PATH, ifName: "lo" });
    expect(lo.cniVersion).toBe("1.0.0");

    const out = await rt.add(mainNet, mainAtt());
    expect(out.cniVersion).toBe("1.0.0");
    expect(out.result.ips?.map((i) => i.address)).toEqual([`${containerIp()}/24`]);
    const sandboxIf = out.result.interfaces?.find((i) => i.sandbox);
    expect(sandboxIf).toMatchObject({ name: "eth0", sandbox: NETNS_PATH });
    hostVeth = out.result.interfaces?.find((i) => !i.sandbox && i.name !== BRIDGE)?.name ?? "";
    expect(hostVeth, "the result should list the host side veth").toMatch(/^veth/);

    // Inside the netns: eth0 up with the requested address and the tuned MTU, default route, lo up.
    const eth0 = await linkInNetns("eth0");
    expect(eth0, "eth0 should exist in the netns").toBeDefined();
    expect(eth0?.flags).toContain("UP");
    expect(eth0?.operstate).toBe("UP");
    expect(eth0?.mtu).toBe(1400);
    expect(eth0?.addr_info).toEqual(expect.arrayContaining([expect.objectContaining({ family: "inet", local: containerIp(), prefixlen: 24 })]));
    const routes = json<{ dst: string; gateway?: string; dev: string }>(await sh("ip", ["-n", NETNS, "-j", "-4", "route", "show", "default"]));
    expect(routes).toEqual([expect.objectContaining({ dst: "default", gateway: gateway(), dev: "eth0" })]);
    expect((await nsExec(["cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify"])).trim()).toBe("1");
    const lodev = await linkInNetns("lo");
    expect(lodev?.flags).toContain("UP");
    expect(lodev?.addr_info).toEqual(expect.arrayContaining([expect.objectContaining({ local: "127.0.0.1" })]));

    // On the host: the bridge has the gateway, the veth peer is its port.
    const br = json<IpAddrEntry>(await sh("ip", ["-j", "addr", "show", "dev", BRIDGE]))[0];
    expect(br?.addr_info).toEqual(expect.arrayContaining([expect.objectContaining({ local: gateway(), prefixlen: 24 })]));
    expect((await bridgePorts()).map((p) => p.ifname)).toEqual([hostVeth]);

    // host-local reservation in our own data dir.
    const reservation = join(ipamDir(), NET, containerIp());
    expect(existsSync(reservation), `${reservation} should exist`).toBe(true);
    expect(await readFile(reservation, "utf8")).toMatch(new RegExp(`^${CID}\\r?\\neth0`));

    // iptables: bridge ipMasq chain CNI-<hash>, portmap CNI-DN-<hash>, firewall CNI-FORWARD rules.
    const nat = await iptablesRules("nat");
    const mine = nat.filter((l) => l.includes(CID));
    natChains = perContainerChains(mine);
    const masq = natChains.find((c) => !c.startsWith("CNI-DN-"));
    const dn = natChains.find((c) => c.startsWith("CNI-DN-"));
    expect(masq, `a CNI-<hash> NAT chain commented with ${CID}; nat rules mentioning it:\n${mine.join("\n")}`).toBeDefined();
    expect(dn, `a CNI-DN-<hash> portmap chain; nat rules mentioning the container:\n${mine.join("\n")}`).toBeDefined();
    expect(nat).toContain(`-N ${masq}`);
    expect(nat).toContain(`-N ${dn}`);
    expect(mine.some((l) => l.startsWith("-A POSTROUTING") && l.includes(`-s ${containerIp()}/32`) && l.includes(`-j ${masq}`))).toBe(true);
    expect(nat.some((l) => l.startsWith(`-A ${dn} `) && l.includes(`--dport ${hostPort}`) && l.includes(`--to-destination ${containerIp()}:80`))).toBe(true);
    const fwd = await iptablesRules("filter");
    expect(fwd.filter((l) => l.startsWith("-A CNI-FORWARD ") && l.includes(`${containerIp()}/32`)).length, "firewall rules for the IP in CNI-FORWARD").toBeGreaterThanOrEqual(2);

    // tuning keeps its restore data in the dataDir we gave it.
    expect((await readdir(tuningDir())).some((f) => f.includes(CID))).toBe(true);

    // Both attachments are cached.
    expect(existsSync(rt.cache.path(NET, CID, "eth0"))).toBe(true);
    expect(existsSync(rt.cache.path(LO_NET, CID, "lo"))).toBe(true);
  });

  itReal("portmap forwards 127.0.0.1:<hostPort> to a server in the netns", async () => {
    const www = join(tmp, "www");
    await mkdir(www, { recursive: true });
    const token = `hello-${randomBytes(6).toString("hex")}`;
    await writeFile(join(www, "index.html"), token);
    httpd = execa("ip", ["netns", "exec", NETNS, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", www], { reject: false });
    try {
      let last: unknown;
      let got: { status: number; body: string } | undefined;
      for (let i = 0; i < 50 && !got; i++) {
        try {
          got = await httpGet("127.0.0.1", hostPort, 2_000);
        } catch (err) {
          last = err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(got, `no answer from 127.0.0.1:${hostPort}: ${String(last)}`).toBeDefined();
      expect(got!.status).toBe(200);
      expect(got!.body).toBe(token);
    } finally {
      httpd.kill("SIGKILL");
      await httpd;
      httpd = undefined;
    }
  });

  itReal("DEL removes everything the ADD created", async () => {
    await rt.del(mainNet, { containerId: CID, netns: NETNS_PATH, ifName: "eth0" });
    await rt.del(loNet, { containerId: CID, netns: NETNS_PATH, ifName: "lo" });

    expect(await linkInNetns("eth0")).toBeUndefined();
    expect(await bridgePorts()).toEqual([]);
    expect(existsSync(join(ipamDir(), NET, containerIp()))).toBe(false);
    expect(await reservationsOf(CID)).toEqual([]);
    expect(await rulesMentioning([CID, containerIp()])).toEqual([]);
    const nat = await iptablesRules("nat");
    for (const chain of natChains) expect(nat.filter((l) => l.split(" ")[1] === chain || l.includes(`-j ${chain}`))).toEqual([]);
    expect((await readdir(tuningDir())).filter((f) => f.includes(CID))).toEqual([]);
    expect(existsSync(rt.cache.path(NET, CID, "eth0"))).toBe(false);
    expect(existsSync(rt.cache.path(LO_NET, CID, "lo"))).toBe(false);

    // DEL again: idempotent against the real plugins too.
    await rt.del(mainNet, { containerId: CID, netns: NETNS_PATH, ifName: "eth0" });
  });

  itReal("a chain whose IPAM plugin is missing fails naming it and leaves nothing behind", async () => {
    const failNet = confListFromObject(
      { ...mainConf(), name: `${NET}-fail`, plugins: [mainBridge("host-local-missing"), { type: "portmap", snat: true, capabilities: { portMappings: true } }, { type: "firewall" }] },
      "fail.conflist",
    );
    const portsBefore = (await bridgePorts()).map((p) => p.ifname);
    const err = await rt
      .add(failNet, { containerId: FAIL_CID, netns: NETNS_PATH, ifName: "eth1", capabilityArgs: { portMappings: [{ hostPort, containerPort: 80, protocol: "tcp" }] } })
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    console.log(`[cni-real-plugins] failing chain error: ${(err as Error).message}`);
    expect((err as Error).message).toContain("host-local-missing");
    expect(await linkInNetns("eth1")).toBeUndefined();
    expect((await bridgePorts()).map((p) => p.ifname)).toEqual(portsBefore);
    expect(await reservationsOf(FAIL_CID)).toEqual([]);
    expect(await rulesMentioning([FAIL_CID])).toEqual([]);
    expect(existsSync(rt.cache.path(`${NET}-fail`, FAIL_CID, "eth1"))).toBe(false);
  });

  itReal(`timing: ${TIMING_RUNS} ADD/DEL rounds of the chain (printed, not asserted)`, async () => {
    await rt.add(mainNet, { containerId: `${CID}-warm`, netns: NETNS_PATH, ifName: "eth0" }); // warm the VERSION probe cache
    await rt.del(mainNet, { containerId: `${CID}-warm`, netns: NETNS_PATH, ifName: "eth0" });
    const rows: Array<{ addWall: number; addExec: number; delWall: number; delExec: number }> = [];
    const perPlugin = new Map<string, { ADD: number[]; DEL: number[] }>();
    for (let i = 0; i < TIMING_RUNS; i++) {
      const id = timingId(i);
      const att = { containerId: id, netns: NETNS_PATH, ifName: "eth0", capabilityArgs: { portMappings: [{ hostPort, containerPort: 80, protocol: "tcp" }] } };
      const from = execs.length;
      let t = performance.now();
      await rt.add(mainNet, att);
      const addWall = performance.now() - t;
      const mid = execs.length;
      t = performance.now();
      await rt.del(mainNet, { containerId: id, netns: NETNS_PATH, ifName: "eth0" });
      const delWall = performance.now() - t;
      const addRecs = execs.slice(from, mid);
      const delRecs = execs.slice(mid);
      expect(addRecs.map((r) => `${r.command} ${r.plugin}`)).toEqual(["ADD bridge", "ADD portmap", "ADD firewall", "ADD tuning"]);
      expect(delRecs.map((r) => `${r.command} ${r.plugin}`)).toEqual(["DEL tuning", "DEL firewall", "DEL portmap", "DEL bridge"]);
      for (const r of [...addRecs, ...delRecs]) {
        const e = perPlugin.get(r.plugin) ?? { ADD: [], DEL: [] };
        e[r.command as "ADD" | "DEL"].push(r.ms);
        perPlugin.set(r.plugin, e);
      }
      const sum = (rs: ExecRecord[]) => rs.reduce((a, r) => a + r.ms, 0);
      rows.push({ addWall, addExec: sum(addRecs), delWall, delExec: sum(delRecs) });
    }
    const addWall = median(rows.map((r) => r.addWall));
    const addExec = median(rows.map((r) => r.addExec));
    const delWall = median(rows.map((r) => r.delWall));
    const delExec = median(rows.map((r) => r.delExec));
    const lines = [
      `[cni-real-plugins] timing, median of ${TIMING_RUNS} rounds (bridge+portmap+firewall+tuning):`,
      `  ADD wall ${ms(addWall)}, sum of plugin execs ${ms(addExec)}, runtime overhead ${ms(median(rows.map((r) => r.addWall - r.addExec)))}`,
      `  DEL wall ${ms(delWall)}, sum of plugin execs ${ms(delExec)}, runtime overhead ${ms(median(rows.map((r) => r.delWall - r.delExec)))}`,
      `  per plugin (median ADD / DEL): ${[...perPlugin].map(([p, v]) => `${p} ${ms(median(v.ADD))} / ${ms(median(v.DEL))}`).join(", ")}`,
      `  rounds: ${rows.map((r) => `${r.addWall.toFixed(0)}/${r.delWall.toFixed(0)}`).join(" ")} ms (ADD/DEL wall)`,
    ];
    console.log(lines.join("\n"));

    // And the rounds left nothing behind either.
    const ids = Array.from({ length: TIMING_RUNS }, (_, i) => timingId(i));
    expect(await bridgePorts()).toEqual([]);
    expect(await rulesMentioning([...ids, `${CID}-warm`])).toEqual([]);
    for (const id of ids) expect(await reservationsOf(id)).toEqual([]);
    expect(await rt.cache.list(NET)).toEqual([]);
  });
});
