// CNI 1.1's STATUS and GC and CHECK through the driver, with Debian sid's 1.9.1 plugins (where
// scripts/cni-plugins.sh fetches them, whatever set CNI_SHIM_CNI_PLUGINS picks): a plugin not
// ready fails `docker network create` and `docker run` and leaves nothing; an attachment
// forgotten mid-ADD (plugin killed, records removed) is released by `cni-shim gc` while a live
// one keeps working; `cni-shim endpoints --check` reports an address removed and flushed DNAT
// rules, with the 1.9.1 plugins and Debian's 1.1.1 ones.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { access, chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, IMAGE, cleanup, docker, httpGet, rand, requirePrerequisites, sh, startPlugin, waitFor, type PluginHandle } from "../helpers/e2e.js";
import { bridgePlugin } from "../helpers/conflists.js";
import { freeOctet, scopedLeftovers } from "../helpers/scoped-leaks.js";
import { pluginSetDir } from "../helpers/cni-plugin-set.js";

const PLUGINS_19 = pluginSetDir("1.9");
const id = rand();
const port = 21000 + (parseInt(id.slice(0, 3), 16) % 4000);

/**
 * The last plugin of the chains: passes the result on; answers STATUS "not ready" while
 * <control>/notready exists (with its text), and holds an ADD while <control>/hold exists.
 */
const GATE_PLUGIN = `#!/usr/bin/node
const fs = require("node:fs");
const out = (o) => process.stdout.write(JSON.stringify(o));
let input = "";
process.stdin.on("data", (d) => (input += d)).on("end", () => {
  const cmd = process.env.CNI_COMMAND;
  if (cmd === "VERSION") return out({ cniVersion: "1.1.0", supportedVersions: ["0.4.0", "1.0.0", "1.1.0"] });
  const conf = JSON.parse(input);
  const ctl = conf.control;
  if (cmd === "STATUS" && fs.existsSync(ctl + "/notready")) {
    out({ code: 50, msg: fs.readFileSync(ctl + "/notready", "utf8").trim() });
    process.exit(1);
  }
  if (cmd !== "ADD") return;
  const pass = () => out({ ...conf.prevResult, cniVersion: conf.cniVersion });
  if (!fs.existsSync(ctl + "/hold")) return pass();
  fs.writeFileSync(ctl + "/held.pid", String(process.pid));
  setTimeout(pass, 120000);
});
`;

interface Listed {
  endpoint: string;
  container: string;
  address: string;
  check?: { status: string; message: string };
}

async function endpointsCheck(plugin: PluginHandle, cniPath: string): Promise<{ code: number; rows: Listed[] }> {
  const res = await sh("node", [CLI, "endpoints", "--check", "--json", "--state-dir", plugin.stateDir, "--cache-dir", plugin.cacheDir, "--cni-path", cniPath], { reject: false });
  return { code: res.exitCode, rows: JSON.parse(res.stdout || "[]") as Listed[] };
}

const pidOf = async (container: string) => (await docker(["inspect", "-f", "{{.State.Pid}}", container])).stdout;

/** The nat chain holding the DNAT rule of a host port (portmap's CNI-DN-...). */
async function dnatChain(hostPort: number): Promise<string> {
  const line = (await sh("iptables-save", ["-t", "nat"])).stdout.split("\n").find((l) => l.includes(`--dport ${hostPort} `) && l.includes("-j DNAT"));
  if (!line) throw new Error(`no DNAT rule for host port ${hostPort}`);
  return line.split(" ")[1]!;
}

/**
 * CHECK of a healthy endpoint, then of its address removed in the container (put back after),
 * then of its DNAT rules flushed. Returns each run's complaint for the differences per plugin set.
 */
async function breakAndCheck(plugin: PluginHandle, cniPath: string, container: string, hostPort: number, gateway: string) {
  const row = async () => {
    const { code, rows } = await endpointsCheck(plugin, cniPath);
    const mine = rows.find((r) => r.container === container);
    expect(mine?.check, `endpoints --check lists ${container}`).toBeDefined();
    return { code, ...mine!.check!, address: mine!.address };
  };
  const { address, ...healthy } = await row();
  const pid = await pidOf(container);
  await sh("nsenter", ["-t", pid, "-n", "ip", "addr", "del", address, "dev", "eth0"]);
  const { address: _a, ...noAddress } = await row();
  await sh("nsenter", ["-t", pid, "-n", "ip", "addr", "add", address, "dev", "eth0"]);
  await sh("nsenter", ["-t", pid, "-n", "ip", "route", "add", "default", "via", gateway]);
  await sh("iptables", ["-t", "nat", "-F", await dnatChain(hostPort)]);
  const { address: _b, ...noDnat } = await row();
  return { healthy, noAddress, noDnat };
}

/** What CHECK says on either plugin set: ok when healthy, bridge's and portmap's own complaints (exit 1) after. */
function expectCheckNames(out: Awaited<ReturnType<typeof breakAndCheck>>, pluginSet: string) {
  console.log(`CHECK with ${pluginSet}: ${JSON.stringify(out)}`);
  expect(out.healthy).toEqual({ code: 0, status: "ok", message: "ok" });
  expect(out.noAddress).toMatchObject({ code: 1, status: "failed" });
  expect(out.noAddress.message).toMatch(/"bridge" CHECK failed.*Failed to match addr/);
  expect(out.noDnat).toMatchObject({ code: 1, status: "failed" });
  expect(out.noDnat.message).toMatch(/"portmap" CHECK failed/);
}

// Each test runs docker, the chain and the CLI several times: minutes on a loaded host.
const SLOW = { timeout: 300_000 };

describe("CNI 1.1 STATUS, GC and CHECK with the 1.9.1 plugins", SLOW, () => {
  let plugin: PluginHandle;
  let dir: string;
  let control: string;
  let cniPath: string;
  let subnet = "";
  let prefix = "";
  const cniNet = `cs-ops-${id}`;
  const bridge = `cso${id}`;
  const dockerNet = `cs-ops-net-${id}`;
  const live = `cs-ops-live-${id}`;
  const forgotten = `cs-ops-lost-${id}`;
  const ids: string[] = [];

  beforeAll(async () => {
    await requirePrerequisites();
    try {
      await access(join(PLUGINS_19, "bridge"), constants.X_OK);
    } catch {
      throw new Error(`the 1.9.1 CNI plugins are not in ${PLUGINS_19}: fetch them: bash scripts/cni-plugins.sh fetch 1.9 (make test does)`);
    }
    prefix = `10.236.${await freeOctet("10.236", parseInt(id.slice(0, 2), 16))}.`;
    subnet = `${prefix}0/24`;
    dir = await mkdtemp(join(tmpdir(), "cs-ops-"));
    control = join(dir, "control");
    await sh("mkdir", ["-p", control, join(dir, "bin"), join(dir, "net.d")]);
    await writeFile(join(dir, "bin", "cs-gate"), GATE_PLUGIN);
    await chmod(join(dir, "bin", "cs-gate"), 0o755);
    const plugins = [
      bridgePlugin({ bridge, subnet, dataDir: join(dir, "ipam") }),
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "firewall" },
      { type: "tuning" },
      { type: "cs-gate", control },
    ];
    await writeFile(join(dir, "net.d", "10-ops.conflist"), JSON.stringify({ cniVersion: "1.1.0", name: cniNet, plugins }));
    cniPath = `${join(dir, "bin")}:${PLUGINS_19}`;
    plugin = await startPlugin({ confDir: join(dir, "net.d"), cniPath, reconcileGraceS: 0, startWaitMs: 60_000 });
  });

  afterAll(async () => {
    const held = await readFile(join(control, "held.pid"), "utf8").catch(() => "");
    if (held) await sh("kill", ["-9", held.trim()], { reject: false }); // our own gate plugin, if a test left it holding
    await docker(["rm", "-f", live, forgotten], { reject: false });
    const logs = plugin.logs();
    await cleanup([], [dockerNet], plugin);
    await sh("ip", ["link", "del", bridge], { reject: false });
    const left = await scopedLeftovers({ bridges: [bridge], addressPrefixes: [prefix], ids, hostPorts: [port, port + 1] });
    if (Object.keys(left).length) console.log(logs.split("\n").filter((l) => /teardown|"level":"(warn|error)"|"command":"DEL"/.test(l)).join("\n"));
    await rm(dir, { recursive: true, force: true });
    expect(left).toEqual({});
  });

  it("STATUS: a plugin not ready fails docker network create with its message and leaves no network", async () => {
    await writeFile(join(control, "notready"), "waiting for the uplink");
    const res = await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${cniNet}`, "--subnet", subnet, dockerNet], { reject: false });
    expect(res.failed).toBe(true);
    expect(res.stderr).toMatch(/not ready \(STATUS\): CNI plugin "cs-gate" STATUS failed \(code 50\): waiting for the uplink/);
    expect((await docker(["network", "ls", "-q", "--filter", `name=${dockerNet}`])).stdout).toBe("");
    expect(await readdir(join(plugin.stateDir, "networks")).catch(() => [])).toEqual([]);
    await rm(join(control, "notready"));
    await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${cniNet}`, "--subnet", subnet, dockerNet]);
  });

  it("STATUS: a plugin not ready fails docker run with its message; nothing is added or recorded", async () => {
    await writeFile(join(control, "notready"), "rebuilding the bridge");
    const res = await docker(["run", "-d", "--name", live, "--network", dockerNet, IMAGE, "sleep", "600"], { reject: false });
    expect(res.failed).toBe(true);
    expect(res.stderr).toMatch(/CNI plugin "cs-gate" STATUS failed \(code 50\): rebuilding the bridge/);
    await docker(["rm", "-f", live], { reject: false });
    expect(await readdir(join(plugin.stateDir, "endpoints")).catch(() => [])).toEqual([]);
    expect(await readdir(join(dir, "ipam", cniNet)).catch(() => [])).not.toContain(`${prefix}2`);
    expect(plugin.logs()).not.toMatch(/"plugin":"bridge","command":"ADD"/);
    const doctor = await sh("node", [CLI, "doctor", "--json", "--socket", plugin.socket, "--state-dir", plugin.stateDir, "--cni-path", cniPath], { reject: false, timeoutMs: 120_000 });
    const status = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; summary: string }> }).checks.filter((c) => c.id === "network-status");
    expect(status).toEqual([expect.objectContaining({ status: "fail", summary: expect.stringContaining('"cs-gate" STATUS failed (code 50): rebuilding the bridge') as unknown })]);
    await rm(join(control, "notready"));
  });

  it("GC: what an attachment forgotten mid-ADD holds is released by cni-shim gc; the live one keeps working", async () => {
    await docker(["run", "-d", "--name", live, "--network", dockerNet, "-p", `${port}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    const liveEp = (await docker(["inspect", live, "--format", `{{(index .NetworkSettings.Networks "${dockerNet}").EndpointID}}`])).stdout;
    ids.push(liveEp);
    // The forgotten one: its ADD held in the last plugin, the plugin killed, its records removed.
    await writeFile(join(control, "hold"), "");
    const running = docker(["run", "-d", "--name", forgotten, "--network", dockerNet, "-p", `${port + 1}:80`, IMAGE, "sleep", "600"], { reject: false, timeoutMs: 120_000 });
    await waitFor("the forgotten ADD to reach the last plugin", () => readFile(join(control, "held.pid"), "utf8").catch(() => undefined), 60_000);
    await plugin.stop("SIGKILL");
    await sh("kill", ["-9", (await readFile(join(control, "held.pid"), "utf8")).trim()]);
    await rm(join(control, "hold"));
    const lostEp = (await readdir(join(plugin.stateDir, "endpoints"))).map((f) => f.replace(/\.json$/, "")).find((e) => e !== liveEp)!;
    expect(lostEp).toBeDefined();
    ids.push(lostEp);
    await rm(join(plugin.stateDir, "endpoints", `${lostEp}.json`));
    const reservations = await readdir(join(dir, "ipam", cniNet));
    const lostIp = (await Promise.all(reservations.map(async (f) => [f, await readFile(join(dir, "ipam", cniNet, f), "utf8").catch(() => "")] as const))).find(([, text]) => text.startsWith(lostEp))?.[0];
    expect(lostIp, "the forgotten ADD's host-local reservation").toBeDefined();
    const held = async () => ({
      reservation: (await readdir(join(dir, "ipam", cniNet))).includes(lostIp!),
      rules: (await sh("iptables-save", [])).stdout.split("\n").filter((l) => l.includes(`${lostIp}/`) || l.includes(lostEp) || l.includes(`--dport ${port + 1} `)).length,
      bridgePorts: (JSON.parse((await sh("ip", ["-j", "link", "show", "master", bridge])).stdout || "[]") as unknown[]).length,
    });
    const atKill = await held();
    expect(atKill).toMatchObject({ reservation: true, bridgePorts: 2 });
    expect(atKill.rules).toBeGreaterThan(3); // portmap's DNAT chain and jump, firewall's, ipMasq's
    await plugin.start();
    await running;
    await docker(["rm", "-f", forgotten], { reject: false });
    const afterRestart = await held();
    const gc = await sh("node", [CLI, "gc", "--socket", plugin.socket], { reject: false, timeoutMs: 120_000 });
    expect(gc.exitCode, gc.stdout + gc.stderr).toBe(0);
    const afterGc = await held();
    console.log(`forgotten attachment ${lostIp}: at the kill ${JSON.stringify(atKill)}, after the restart ${JSON.stringify(afterRestart)}, after cni-shim gc ${JSON.stringify(afterGc)}`);
    expect(afterGc).toEqual({ reservation: false, rules: 0, bridgePorts: 1 });
    const released = plugin.logs().split("\n").filter((l) => l.includes("released what a forgotten attachment held"));
    expect(released.join("\n")).toContain(`${lostIp}/24`);
    // The plugins were sent GC with the live endpoint as valid, and said yes.
    for (const p of ["bridge", "portmap", "firewall", "tuning", "cs-gate"]) expect(plugin.logs()).toMatch(new RegExp(`"plugin":"${p}","command":"GC".*"ok":true`));
    expect(await httpGet(port)).toBe("cni-shim test page\n");
  });

  it("CHECK: endpoints --check says ok, then names an address removed and a flushed DNAT chain (exit 1)", async () => {
    expectCheckNames(await breakAndCheck(plugin, cniPath, live, port, `${prefix}1`), "1.9.1");
  });
});

describe("CHECK with Debian's 1.1.1 plugins (a 1.0.0 list)", SLOW, () => {
  let plugin: PluginHandle;
  let dir: string;
  let prefix = "";
  const cniNet = `cs-ops1-${id}`;
  const bridge = `csp${id}`;
  const dockerNet = `cs-ops1-net-${id}`;
  const web = `cs-ops1-web-${id}`;
  const hostPort = port + 2;

  beforeAll(async () => {
    await requirePrerequisites();
    prefix = `10.236.${await freeOctet("10.236", parseInt(id.slice(2, 4), 16) + 100)}.`;
    dir = await mkdtemp(join(tmpdir(), "cs-ops1-"));
    await sh("mkdir", ["-p", join(dir, "net.d")]);
    const plugins = [bridgePlugin({ bridge, subnet: `${prefix}0/24`, dataDir: join(dir, "ipam") }), { type: "portmap", capabilities: { portMappings: true } }, { type: "firewall" }, { type: "tuning" }];
    await writeFile(join(dir, "net.d", "10-ops.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: cniNet, plugins }));
    plugin = await startPlugin({ confDir: join(dir, "net.d"), cniPath: "/usr/lib/cni", startWaitMs: 60_000 });
    await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${cniNet}`, "--subnet", `${prefix}0/24`, dockerNet]);
    await docker(["run", "-d", "--name", web, "--network", dockerNet, "-p", `${hostPort}:80`, IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
  });

  afterAll(async () => {
    await cleanup([web], [dockerNet], plugin);
    await sh("ip", ["link", "del", bridge], { reject: false });
    const left = await scopedLeftovers({ bridges: [bridge], addressPrefixes: [prefix], hostPorts: [hostPort] });
    await rm(dir, { recursive: true, force: true });
    expect(left).toEqual({});
  });

  it("names an address removed (bridge) and flushed DNAT rules (portmap)", async () => {
    expectCheckNames(await breakAndCheck(plugin, "/usr/lib/cni", web, hostPort, `${prefix}1`), "1.1.1");
  });
});
