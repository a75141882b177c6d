// The look inside a container's namespace before an in-sandbox Join's ADD (src/host/sandbox-look.ts),
// on real namespaces: the quick way (a perl program forked ahead that enters the namespace and
// reads /proc, then becomes ip there) must see what the plain one (nsenter, ip) sees, leave no
// link in /run/netns, and fall back to the plain one for good when it fails where that one works. A namespace bound outside /run/netns stands for
// Docker's SandboxKey.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { lookInside, type LookSession, type SandboxLook } from "../../src/host/sandbox.js";
import { isLiveLookLink, SandboxLooker, sweepLookLinks } from "../../src/host/sandbox-look.js";
import { run } from "../../src/util/command.js";

const tag = randomBytes(3).toString("hex");
const ns = `cnishim-look-${tag}`;
const dir = `/run/cnishim-look-test-${tag}`;
const sandboxKey = `${dir}/sandbox`;
/** What a look saw; its ip let go. */
async function seen(look: Promise<LookSession>): Promise<SandboxLook> {
  const { links, defaultRoutes, finish } = await look;
  await finish();
  return { links, defaultRoutes };
}
const lookLinks = async () => (await readdir("/run/netns").catch(() => [] as string[])).filter((n) => /^cni-shim-l\d+-\d+$/.test(n));

beforeAll(async () => {
  // A namespace with a second link (eth0, one end of a veth) and an IPv4 default route through it.
  await run("ip", ["netns", "add", ns]);
  await run("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]);
  await run("ip", ["-n", ns, "addr", "add", "10.251.0.2/24", "dev", "eth0"]);
  await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
  await run("ip", ["-n", ns, "route", "add", "default", "via", "10.251.0.1", "dev", "eth0", "onlink"]);
  // Bound at a path of its own, as Docker binds a sandbox under its exec-root.
  await mkdir(dir, { recursive: true });
  await writeFile(sandboxKey, "");
  await run("mount", ["--bind", `/run/netns/${ns}`, sandboxKey]);
});

afterAll(async () => {
  await run("umount", [sandboxKey]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  await run("ip", ["netns", "del", ns]).catch(() => undefined);
});

describe("the look inside a container's namespace", () => {
  it("sees what nsenter sees, prepared ahead or not, and leaves no link in /run/netns", async () => {
    const looker = new SandboxLooker();
    const plain = await seen(lookInside(sandboxKey));
    expect([...plain.links].sort()).toEqual(["eth0", "lo", "peer0"]);
    expect(plain.defaultRoutes).toEqual([4]);
    expect(await seen(looker.look(sandboxKey))).toEqual(plain); // no standby yet: forked at the look
    looker.prepare();
    expect(await seen(looker.look(sandboxKey))).toEqual(plain);
    looker.prepare();
    looker.prepare(); // one standby at a time
    expect(await seen(looker.look(sandboxKey))).toEqual(plain);
    expect(looker.quickWay).toBe(true);
    expect(await lookLinks()).toEqual([]);
    looker.close();
  });

  it("counts IPv6 default routes of the main table only, as ip does (/proc lists every table's)", async () => {
    const looker = new SandboxLooker();
    const v6 = (...args: string[]) => run("ip", ["-n", ns, "-6", "route", ...args]);
    await run("ip", ["-n", ns, "-6", "addr", "add", "fd5e::2/64", "dev", "eth0", "nodad"]);
    try {
      await v6("add", "default", "via", "fd5e::1", "dev", "eth0", "table", "100");
      const other = await seen(looker.look(sandboxKey));
      expect(other).toEqual(await seen(lookInside(sandboxKey)));
      expect(other.defaultRoutes).toEqual([4]);
      await v6("add", "default", "via", "fd5e::1", "dev", "eth0");
      const main = await seen(looker.look(sandboxKey));
      expect(main).toEqual(await seen(lookInside(sandboxKey)));
      expect(main.defaultRoutes).toEqual([4, 6]);
      expect(looker.quickWay).toBe(true);
    } finally {
      await v6("flush", "table", "100").catch(() => undefined);
      await v6("del", "default", "dev", "eth0").catch(() => undefined);
      await run("ip", ["-n", ns, "-6", "addr", "del", "fd5e::2/64", "dev", "eth0"]).catch(() => undefined);
      looker.close();
    }
  });

  it("runs what follows the ADD (the MAC, a default route) through the look's own ip, and through an exec of its own once that ip is gone", async () => {
    const mac = async () => JSON.parse(await run("ip", ["-n", ns, "-j", "link", "show", "eth0"])) as Array<{ address: string }>;
    const defaults = async () => (JSON.parse(await run("ip", ["-n", ns, "-j", "route", "show", "default"])) as unknown[]).length;
    const looker = new SandboxLooker();
    looker.prepare();
    const session = await looker.look(sandboxKey);
    expect(await lookLinks()).toEqual([]); // the name goes once ip is in the namespace
    await session.finish({ ifName: "eth0", mac: "02:42:0a:fb:00:02", deleteDefaults: [4] });
    expect((await mac())[0]?.address).toBe("02:42:0a:fb:00:02");
    expect(await defaults()).toBe(0);
    await session.finish({ ifName: "eth0", mac: "02:42:0a:fb:00:03", deleteDefaults: [] }); // once only
    expect((await mac())[0]?.address).toBe("02:42:0a:fb:00:02");
    // The MAC alone: set by the look's own program (no ip), and ip started ahead takes it as a line.
    for (const [i, ipAhead] of [false, true].entries()) {
      const only = await looker.look(sandboxKey, { ipAhead });
      await only.finish({ ifName: "eth0", mac: `02:42:0a:fb:00:1${i}`, deleteDefaults: [] });
      expect((await mac())[0]?.address).toBe(`02:42:0a:fb:00:1${i}`);
    }
    // A look whose ip was let go (held too long): the finish is an exec of its own.
    const late = await new SandboxLooker({ holdMs: 50 }).look(sandboxKey);
    await new Promise((r) => setTimeout(r, 300));
    await late.finish({ ifName: "eth0", mac: "02:42:0a:fb:00:04", deleteDefaults: [] });
    expect((await mac())[0]?.address).toBe("02:42:0a:fb:00:04");
    // A failing line fails the finish, with what ip said.
    const bad = await looker.look(sandboxKey);
    await expect(bad.finish({ ifName: "nosuch0", mac: "02:42:0a:fb:00:05", deleteDefaults: [] })).rejects.toThrow(/nosuch0/);
    await run("ip", ["-n", ns, "route", "add", "default", "via", "10.251.0.1", "dev", "eth0", "onlink"]);
    looker.close();
  });

  it("hands an interface out to this process's namespace through the look's own ip (its routes read before the move), and through an exec of its own once that ip is gone", async () => {
    // veths stand for the chain's interface (their peers stay): each with an address and a route of its own.
    const out = [`csl${tag}a`, `csl${tag}b`, `csl${tag}d`];
    try {
      for (const [i, link] of ["hand0", "hand1", "hand2"].entries()) {
        await run("ip", ["-n", ns, "link", "add", link, "type", "veth", "peer", "name", `${link}p`]);
        await run("ip", ["-n", ns, "link", "set", `${link}p`, "up"]);
        await run("ip", ["-n", ns, "addr", "add", `10.252.${i}.2/24`, "dev", link]);
        await run("ip", ["-n", ns, "link", "set", link, "up"]);
        await run("ip", ["-n", ns, "route", "add", `10.253.${i}.0/24`, "via", `10.252.${i}.1`, "dev", link]);
      }
      const looker = new SandboxLooker();
      looker.prepare();
      // ip started ahead (--attach auto) or only for the hand-out's lines: the same hand-out.
      const session = await looker.look(sandboxKey, { ipAhead: true });
      const routes = await session.handOut("hand0", out[0]!);
      expect(routes).toEqual(expect.arrayContaining([expect.objectContaining({ dst: "10.253.0.0/24", gateway: "10.252.0.1" }), expect.objectContaining({ dst: "10.252.0.0/24" })]));
      expect(routes.every((r) => r.dev === "hand0")).toBe(true);
      await session.finish(); // nothing more after the hand-out
      expect(await run("ip", ["-j", "link", "show", out[0]!])).toContain(out[0]);
      await expect(run("ip", ["-n", ns, "link", "show", "hand0"])).rejects.toThrow();
      // A look whose ip was let go: the hand-out is an exec of its own (nsenter).
      const late = await new SandboxLooker({ holdMs: 50 }).look(sandboxKey);
      await new Promise((r) => setTimeout(r, 300));
      expect(await late.handOut("hand1", out[1]!)).toEqual(expect.arrayContaining([expect.objectContaining({ dst: "10.253.1.0/24", gateway: "10.252.1.1" })]));
      expect(await run("ip", ["-j", "link", "show", out[1]!])).toContain(out[1]);
      // ip not started ahead: started by the hand-out's lines.
      expect(await (await looker.look(sandboxKey)).handOut("hand2", out[2]!)).toEqual(expect.arrayContaining([expect.objectContaining({ dst: "10.253.2.0/24", gateway: "10.252.2.1" })]));
      expect(await run("ip", ["-j", "link", "show", out[2]!])).toContain(out[2]);
      // A link that is not there fails the hand-out, with what ip said.
      await expect((await looker.look(sandboxKey)).handOut("nosuch0", `csl${tag}c`)).rejects.toThrow(/nosuch0/);
      expect(await lookLinks()).toEqual([]);
      looker.close();
    } finally {
      for (const link of out) await run("ip", ["link", "del", link]).catch(() => undefined);
      for (const link of ["hand0p", "hand1p", "hand2p"]) await run("ip", ["-n", ns, "link", "del", link]).catch(() => undefined);
    }
  });

  it("a namespace that is gone fails the look (the Join), and the quick way stays", async () => {
    const looker = new SandboxLooker();
    await expect(looker.look(`${dir}/no-such-sandbox`)).rejects.toThrow(/nsenter/);
    expect(looker.quickWay).toBe(true);
    expect(await lookLinks()).toEqual([]);
  });

  it("falls back to the plain look for good when the quick one fails where the plain one works", async () => {
    let plainLooks = 0;
    const looker = new SandboxLooker({
      command: ["/bin/sh", "-c", "read -r ns; echo 'no such ip' >&2; exit 3"],
      plain: (nsFile) => {
        plainLooks++;
        return lookInside(nsFile);
      },
    });
    looker.prepare();
    expect((await looker.look(sandboxKey)).links).toContain("eth0");
    expect(looker.quickWay).toBe(false);
    expect(plainLooks).toBe(1);
    await looker.look(sandboxKey);
    expect(plainLooks).toBe(2);
    expect(await lookLinks()).toEqual([]);
  });

  it("kills a look that hangs (a standby that never answers) and falls back", async () => {
    const looker = new SandboxLooker({ command: ["/bin/sh", "-c", "read -r ns; exec sleep 60"], timeoutMs: 300 });
    looker.prepare();
    const started = performance.now();
    expect((await looker.look(sandboxKey)).links).toContain("eth0");
    expect(performance.now() - started, "killed at the timeout, not waited for").toBeLessThan(5_000);
    expect(looker.quickWay).toBe(false);
    expect(await lookLinks()).toEqual([]);
  });

  it("sweeps the look links of dead processes only, and never a mounted namespace", async () => {
    const dead = "cni-shim-l999999999-1"; // no such pid
    const live = `cni-shim-l${process.pid}-424242`;
    const mounted = "cni-shim-l999999999-2"; // a namespace bound under such a name: not ours to remove
    await symlink(sandboxKey, `/run/netns/${dead}`);
    await symlink(sandboxKey, `/run/netns/${live}`);
    await writeFile(`/run/netns/${mounted}`, "");
    await run("mount", ["--bind", sandboxKey, `/run/netns/${mounted}`]);
    try {
      expect(isLiveLookLink(live)).toBe(true);
      expect(isLiveLookLink(dead)).toBe(false);
      expect(await sweepLookLinks()).toEqual([dead]);
      expect((await lookLinks()).sort()).toEqual([live, mounted].sort());
    } finally {
      await run("umount", [`/run/netns/${mounted}`]).catch(() => undefined);
      for (const n of [dead, live, mounted]) await rm(`/run/netns/${n}`, { force: true });
    }
  });
});
