// Published ports through CNI portmap: a host IP, a host-port range, host port 0 (any free
// port) and udp, and `cni-shim endpoints` telling the user which host ports were chosen.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, IMAGE, cleanup, docker, httpGet, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { leaked, settledSnapshot, type HostSnapshot } from "../helpers/host-snapshot.js";

describe("published ports", () => {
  let plugin: PluginHandle;
  const id = rand();
  const net = `cs-ports-${id}`;
  const web = `cs-ports-web-${id}`;
  const base = 20000 + (parseInt(id.slice(0, 3), 16) % 8000);
  const [fixedLocal, rangeStart, rangeEnd, udpPort] = [base, base + 10, base + 19, base + 30];
  let before: HostSnapshot;
  let ports: string[] = [];
  let ip = "";

  beforeAll(async () => {
    await requirePrerequisites();
    plugin = await startPlugin();
    before = await settledSnapshot(plugin);
    await docker(["network", "create", "-d", plugin.driver, net]);
    await docker([
      "run", "-d", "--name", web, "--network", net,
      "-p", `127.0.0.1:${fixedLocal}:80`, "-p", `${rangeStart}-${rangeEnd}:80`, "-p", "80", "-p", `${udpPort}:5353/udp`,
      IMAGE, "httpd", "-f", "-p", "80", "-h", "/www",
    ]);
    ip = (await docker(["inspect", web, "--format", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`])).stdout;
    const listed = JSON.parse((await sh("node", [CLI, "endpoints", "--json", "--state-dir", plugin.stateDir])).stdout) as Array<{ container: string; address: string; ports: string[] }>;
    const mine = listed.find((e) => e.container === web);
    expect(mine, `cni-shim endpoints lists ${web}`).toBeDefined();
    expect(mine!.address.startsWith(`${ip}/`)).toBe(true);
    ports = mine!.ports;
  });

  afterAll(async () => {
    await cleanup([web], [net], plugin);
  });

  it("lists every published port with the host port it got", () => {
    expect(ports).toHaveLength(4);
    expect(ports).toContain(`127.0.0.1:${fixedLocal}->80/tcp`);
    expect(ports).toContain(`${udpPort}->5353/udp`);
    const ranged = ports.map((p) => /^(\d+)->80\/tcp$/.exec(p)?.[1]).filter(Boolean).map(Number);
    expect(ranged).toHaveLength(2);
    expect(ranged.some((p) => p >= rangeStart && p <= rangeEnd)).toBe(true);
    expect(ranged.some((p) => p < rangeStart || p > rangeEnd)).toBe(true); // host port 0: any free one
  });

  it("serves every tcp mapping from the host", async () => {
    expect(await httpGet(fixedLocal)).toBe("cni-shim test page\n");
    for (const p of ports.map((p) => /^(\d+)->80\/tcp$/.exec(p)?.[1]).filter(Boolean).map(Number)) {
      expect(await httpGet(p)).toBe("cni-shim test page\n");
    }
  });

  it("restricts a host-IP mapping to that address and DNATs udp", async () => {
    const nat = (await sh("iptables-save", ["-t", "nat"])).stdout.split("\n");
    const local = nat.filter((l) => l.includes(`--dport ${fixedLocal} `) && l.includes("DNAT"));
    expect(local).toHaveLength(1);
    expect(local[0]).toContain("-d 127.0.0.1/32");
    const udp = nat.filter((l) => l.includes(`-p udp`) && l.includes(`--dport ${udpPort} `) && l.includes("DNAT"));
    expect(udp).toHaveLength(1);
    expect(udp[0]).toContain(`--to-destination ${ip}:5353`);
  });

  it("removes every mapping with the container", async () => {
    await docker(["rm", "-f", web]);
    expect(leaked(before, await settledSnapshot(plugin))).toEqual({});
    const nat = (await sh("iptables-save", ["-t", "nat"])).stdout;
    for (const p of [fixedLocal, udpPort, ...ports.map((p) => Number(/(\d+)->/.exec(p)![1]))]) expect(nat).not.toMatch(new RegExp(`--dports? ${p}\\b`));
  });
});
