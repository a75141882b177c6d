// Convergent teardown against the REAL reference plugins (Debian 1.1.1), no Docker: whatever
// part of an attachment's state is already gone, convergentDel finishes and releases the address.
// The states are the ones faults leave: a DEL that completed but whose bookkeeping did not (a
// kill -9 after the plugins finished), a reboot (namespace, veth and iptables gone, files kept),
// and a plugin whose DEL always fails. Everything is unique to this run and removed afterwards.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CniRuntime } from "../../src/cni/runtime.js";
import { confListFromObject, type LoadedConfList } from "../../src/cni/config.js";
import { convergentDel } from "../../src/teardown/convergent.js";
import * as netns from "../../src/host/netns.js";
import { masqChain, dnatChain, sweepAttachment } from "../../src/host/iptables.js";
import { run } from "../../src/util/command.js";

const R = randomBytes(3).toString("hex");
const BRIDGE = `csct${R}`;
const NET = `cnishim-ct-${R}`;
const id = (tag: string) => `cnishimct${tag}${randomBytes(16).toString("hex")}`;
let tmp = "";
let octet = 0;
let rt: CniRuntime;
const namespaces: string[] = [];
const added: Array<{ containerId: string; address: string }> = [];

function conf(extra: Array<Record<string, unknown>> = []): LoadedConfList {
  return confListFromObject(
    {
      cniVersion: "1.0.0",
      name: NET,
      plugins: [
        {
          type: "bridge",
          bridge: BRIDGE,
          isGateway: true,
          ipMasq: true,
          ipam: { type: "host-local", dataDir: join(tmp, "ipam"), ranges: [[{ subnet: `10.249.${octet}.0/24` }]], routes: [{ dst: "0.0.0.0/0" }] },
        },
        { type: "portmap", snat: true, capabilities: { portMappings: true } },
        { type: "firewall" },
        ...extra,
      ],
    },
    `${NET}.conflist`,
  );
}

async function reservations(containerId: string): Promise<string[]> {
  const dir = join(tmp, "ipam", NET);
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const f of await readdir(dir)) if ((await readFile(join(dir, f), "utf8").catch(() => "")).includes(containerId)) out.push(f);
  return out;
}

/** Everything of one attachment a leak check looks at. */
async function leftovers(containerId: string, address: string): Promise<string[]> {
  const out: string[] = (await reservations(containerId)).map((f) => `host-local ${f}`);
  for (const tool of ["iptables-save", "ip6tables-save"]) {
    const saved = await run(tool, []);
    for (const l of saved.split("\n")) {
      if (l.includes(containerId) || l.includes(masqChain(NET, containerId)) || l.includes(dnatChain(NET, containerId)) || new RegExp(` ${address.replace(/\./g, "\\.")}/32 `).test(l)) out.push(`${tool}: ${l}`);
    }
  }
  if (existsSync(rt.cache.path(NET, containerId, "eth0"))) out.push("cache file");
  return out;
}

async function addOne(tag: string, extra: Array<Record<string, unknown>> = [], hostPort?: number) {
  const containerId = id(tag);
  const ns = `cnishim-ct-${R}-${tag}`;
  namespaces.push(ns);
  await netns.ensureNetns(ns);
  const list = conf(extra);
  const capabilityArgs = hostPort ? { portMappings: [{ hostPort, containerPort: 80, protocol: "tcp" }] } : {};
  const out = await rt.add(list, { containerId, netns: netns.netnsPath(ns), ifName: "eth0", capabilityArgs });
  const address = out.result.ips![0]!.address.split("/")[0]!;
  added.push({ containerId, address });
  return { containerId, ns, list, result: out.result, address, attachment: { containerId, ifName: "eth0", capabilityArgs } };
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("convergent teardown tests must run as root (netns, iptables)");
  for (const p of ["bridge", "host-local", "portmap", "firewall"]) {
    if (!existsSync(`/usr/lib/cni/${p}`)) throw new Error(`CNI plugin /usr/lib/cni/${p} missing: apt-get install containernetworking-plugins`);
  }
  tmp = await mkdtemp(join(tmpdir(), "cnishim-ct-"));
  const used = (await run("ip", ["-4", "route", "show", "table", "all"])) + (await run("ip", ["-4", "addr"]));
  octet = [...Array(250).keys()].map((i) => 2 + ((i + Number.parseInt(R, 16)) % 250)).find((x) => !used.includes(`10.249.${x}.`))!;
  // A plugin whose DEL always fails, on a CNI_PATH before the real ones.
  await mkdir(join(tmp, "bin"));
  await writeFile(
    join(tmp, "bin", "faildel"),
    `#!/usr/bin/env node
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const c = process.env.CNI_COMMAND;
  if (c === "VERSION") return console.log(JSON.stringify({ cniVersion: "1.0.0", supportedVersions: ["0.4.0", "1.0.0"] }));
  if (c === "ADD") return console.log(JSON.stringify(JSON.parse(s).prevResult));
  if (c === "DEL") { console.log(JSON.stringify({ cniVersion: "1.0.0", code: 999, msg: "faildel: DEL always fails" })); process.exit(1); }
});
`,
  );
  await chmod(join(tmp, "bin", "faildel"), 0o755);
  rt = new CniRuntime({ cniPath: [join(tmp, "bin"), "/usr/lib/cni"], cacheDir: join(tmp, "cache"), execTimeoutMs: 20_000 });
});

afterAll(async () => {
  for (const ns of namespaces) await netns.deleteNetns(ns).catch(() => undefined);
  await run("ip", ["link", "del", BRIDGE]).catch(() => undefined);
  for (const a of added) await sweepAttachment({ containerId: a.containerId, chains: [masqChain(NET, a.containerId), dnatChain(NET, a.containerId)], firewallIps: [a.address] }).catch(() => undefined);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("convergentDel with the real plugins", () => {
  it("finishes a teardown whose DEL already ran (kill -9 before the bookkeeping): the second DEL needs the chain back", async () => {
    const a = await addOne("k", [], 40000 + Math.floor(Math.random() * 20000));
    const cached = await readFile(rt.cache.path(NET, a.containerId, "eth0"), "utf8");
    await rt.del(a.list, { ...a.attachment, netns: netns.netnsPath(a.ns) });
    // The process died here: the cache entry (and its record) are still there.
    await mkdir(join(tmp, "cache", "results"), { recursive: true });
    await writeFile(rt.cache.path(NET, a.containerId, "eth0"), cached);
    const out = await convergentDel(rt, { list: a.list, attachment: a.attachment, result: a.result, stagingNetns: a.ns, label: {} });
    expect(out.forced).toEqual([]); // the plugins' own DEL finished, given what it needs
    expect(await leftovers(a.containerId, a.address)).toEqual([]);
    expect(await netns.netnsExists(a.ns)).toBe(false);
  });

  it("releases the address of an attachment from before a reboot (namespace, veth and iptables state gone)", async () => {
    const a = await addOne("r");
    await netns.deleteNetns(a.ns);
    await sweepAttachment({ containerId: a.containerId, chains: [masqChain(NET, a.containerId), dnatChain(NET, a.containerId)], firewallIps: [a.address] });
    expect(await reservations(a.containerId)).toHaveLength(1);
    const out = await convergentDel(rt, { list: a.list, attachment: a.attachment, result: a.result, stagingNetns: a.ns, label: {} });
    expect(out.forced).toEqual([]);
    expect(await leftovers(a.containerId, a.address)).toEqual([]);
    expect(await netns.netnsExists(a.ns)).toBe(false);
  });

  it("tears down an ADD cut short (no result, no cache) from the address it was meant to get", async () => {
    const a = await addOne("c");
    await rm(rt.cache.path(NET, a.containerId, "eth0"));
    await netns.deleteNetns(a.ns);
    const cidr = a.result.ips![0]!.address;
    const out = await convergentDel(rt, { list: a.list, attachment: a.attachment, intendedAddresses: [cidr], stagingNetns: a.ns, label: {} });
    expect(out.forced).toEqual([]);
    expect(await leftovers(a.containerId, a.address)).toEqual([]);
  });

  it("forces what a plugin whose DEL always fails would have removed, and never touches a neighbour", async () => {
    const neighbour = await addOne("n");
    const a = await addOne("f", [{ type: "faildel" }]);
    const out = await convergentDel(rt, { list: a.list, attachment: a.attachment, result: a.result, stagingNetns: a.ns, label: {} });
    expect(out.forced.join("\n")).toContain("faildel: DEL always fails");
    expect(await leftovers(a.containerId, a.address)).toEqual([]);
    // The neighbour keeps its address, chain, firewall rules and cache entry.
    const n = await leftovers(neighbour.containerId, neighbour.address);
    expect(n.filter((l) => l.startsWith("host-local"))).toHaveLength(1);
    expect(n.some((l) => l.includes(masqChain(NET, neighbour.containerId)))).toBe(true);
    expect(n.some((l) => l.includes(`-s ${neighbour.address}/32 -j ACCEPT`))).toBe(true);
    expect(n).toContain("cache file");
    await convergentDel(rt, { list: neighbour.list, attachment: neighbour.attachment, liveNetns: netns.netnsPath(neighbour.ns), stagingNetns: `${neighbour.ns}-x`, label: {} });
    expect(await leftovers(neighbour.containerId, neighbour.address)).toEqual([]);
  });

  it("does not force anything in a live namespace: the error reaches the caller, the cache stays for a retry", async () => {
    const a = await addOne("l", [{ type: "faildel" }]);
    await expect(convergentDel(rt, { list: a.list, attachment: a.attachment, liveNetns: netns.netnsPath(a.ns), stagingNetns: `${a.ns}-x`, label: {} })).rejects.toThrow(/faildel/);
    expect(existsSync(rt.cache.path(NET, a.containerId, "eth0"))).toBe(true);
    namespaces.push(`${a.ns}-y`);
    const out = await convergentDel(rt, { list: a.list, attachment: a.attachment, result: a.result, stagingNetns: `${a.ns}-y`, label: {} });
    expect(out.forced.length).toBeGreaterThan(0);
    expect(await leftovers(a.containerId, a.address)).toEqual([]);
  });
});
