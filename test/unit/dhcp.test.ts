// The dhcp IPAM's pure parts (which sockets a list needs, the daemon's command line and files,
// when a lease moves into the container), starting a daemon (a fake one that only listens), and
// the lease move with fake host and IPAM calls over a real state dir.
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_DHCP_SOCKET, dhcpDaemonArgs, dhcpDaemonFiles, dhcpSockets, ensureDhcpDaemon, probeDhcpSocket, usesDhcp } from "../../src/cni/dhcp.js";
import type { LoadedConfList } from "../../src/cni/config.js";
import type { ConfList } from "../../src/cni/schemas.js";
import type { Attachment } from "../../src/cni/runtime.js";
import { DhcpLeases, leaseStep } from "../../src/driver/dhcp-leases.js";
import { StateStore, type EndpointRecord } from "../../src/driver/state.js";
import { KeyedMutex } from "../../src/util/keyed-mutex.js";
import { setLogLevel } from "../../src/util/log.js";

setLogLevel("error");

const list = (ipam: Record<string, unknown> | undefined): ConfList => ({ cniVersion: "1.0.0", name: "dnet", plugins: [{ type: "bridge", bridge: "br0", ...(ipam ? { ipam } : {}) }, { type: "portmap" }] }) as ConfList;
const loaded = (l: ConfList): LoadedConfList => ({ conflist: l, bytes: Buffer.from(JSON.stringify(l)), source: "test" });

describe("which lists need the dhcp daemon", () => {
  it("names the default socket, or the list's daemonSocketPath, once", () => {
    expect(dhcpSockets(list({ type: "dhcp" }))).toEqual([DEFAULT_DHCP_SOCKET]);
    expect(dhcpSockets(list({ type: "dhcp", daemonSocketPath: "/run/x/d.sock" }))).toEqual(["/run/x/d.sock"]);
    expect(dhcpSockets(list({ type: "host-local" }))).toEqual([]);
    expect(usesDhcp(list(undefined))).toBe(false);
    expect(usesDhcp(list({ type: "dhcp" }))).toBe(true);
  });

  it("starts the daemon with a pid file, and -socketpath only for another socket", () => {
    expect(dhcpDaemonArgs(DEFAULT_DHCP_SOCKET, "/s/p")).toEqual(["daemon", "-pidfile", "/s/p"]);
    expect(dhcpDaemonArgs("/run/x/d.sock", "/s/p")).toEqual(["daemon", "-pidfile", "/s/p", "-socketpath", "/run/x/d.sock"]);
  });

  it("keeps one log and pid file per socket in the state dir", () => {
    expect(dhcpDaemonFiles("/var/lib/cni-shim", DEFAULT_DHCP_SOCKET)).toEqual({ log: "/var/lib/cni-shim/dhcp-daemon.log", pid: "/var/lib/cni-shim/dhcp-daemon.pid" });
    expect(dhcpDaemonFiles("/st", "/run/x/d.sock").log).toBe("/st/dhcp-daemon-run_x_d.sock.log");
  });
});

describe("the daemon's socket", () => {
  let dir: string;
  let server: Server | undefined;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "cs-dhcp-unit-"))));
  afterEach(async () => {
    server?.close();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("tells a listening daemon from a stale socket file and from none", async () => {
    const sock = join(dir, "d.sock");
    expect(await probeDhcpSocket(sock)).toBe("absent");
    server = createServer();
    await new Promise<void>((r) => server!.listen(sock, r));
    expect(await probeDhcpSocket(sock)).toBe("answers");
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    await writeFile(sock, "");
    expect(await probeDhcpSocket(sock)).toBe("stale");
  });

  it("starts the daemon found on the CNI path when nothing answers (a stale socket file is replaced), and not when one does", async () => {
    const bin = join(dir, "bin");
    await mkdir(bin);
    // A stand-in daemon: listens on -socketpath until killed.
    await writeFile(join(bin, "dhcp"), `#!/bin/sh\nshift; while [ "$1" != "-socketpath" ]; do shift; done\nexec node -e 'require("net").createServer().listen(process.argv[1])' "$2"\n`);
    await chmod(join(bin, "dhcp"), 0o755);
    const sock = join(dir, "d.sock");
    await writeFile(sock, "");
    const out = await ensureDhcpDaemon({ socket: sock, cniPath: [bin], stateDir: join(dir, "state") });
    try {
      expect(out.outcome).toBe("started");
      expect(out.log).toBe(join(dir, "state", "dhcp-daemon" + sock.replace(/\//g, "_").replace(/^_/, "-") + ".log"));
      expect(await probeDhcpSocket(sock)).toBe("answers");
      expect((await ensureDhcpDaemon({ socket: sock, cniPath: [bin], stateDir: join(dir, "state") })).outcome).toBe("running");
    } finally {
      if (out.pid) process.kill(out.pid, "SIGKILL");
    }
  });

  it("says why when the daemon binary is missing", async () => {
    await expect(ensureDhcpDaemon({ socket: join(dir, "d.sock"), cniPath: [dir], stateDir: join(dir, "state") })).rejects.toThrow(/CNI plugin "dhcp" not found/);
  });
});

describe("moving the lease into the container", () => {
  const rec = (over: Partial<EndpointRecord> = {}): EndpointRecord => ({
    id: "e".repeat(64),
    networkId: "n".repeat(64),
    phase: "joined",
    attach: "staging-handoff",
    cniContainerId: "e".repeat(64),
    ifName: "eth0",
    stagingNetns: "cni-shim-eeee",
    tmpName: "cseeee",
    address: "10.249.1.120/24",
    macAddress: "02:00:00:00:00:01",
    portMappings: [],
    cniArgs: [],
    capabilityArgs: {},
    sandboxKey: "/var/run/docker/netns/abc",
    dhcpLease: "staging",
    createdAt: new Date().toISOString(),
    ...over,
  });

  it("waits for the interface, moves it when the MAC is ours, and leaves other networks' and moved leases alone", () => {
    expect(leaseStep(rec(), undefined)).toBe("wait");
    expect(leaseStep(rec(), "02:00:00:00:00:01")).toBe("move");
    const skipOf = (step: ReturnType<typeof leaseStep>) => (typeof step === "object" ? step.skip : undefined);
    expect(skipOf(leaseStep(rec(), "02:00:00:00:00:09"))).toContain("another network");
    expect(skipOf(leaseStep(rec({ dhcpLease: "container" }), "02:00:00:00:00:01"))).toBeTypeOf("string");
    expect(skipOf(leaseStep(rec({ dhcpLease: undefined }), "02:00:00:00:00:01"))).toBeTypeOf("string");
    expect(skipOf(leaseStep(rec({ phase: "ready" }), "02:00:00:00:00:01"))).toBeTypeOf("string");
  });

  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), "cs-dhcp-leases-"))));
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  function setup(macAfter: number) {
    const state = new StateStore(dir);
    const calls: string[] = [];
    let polls = 0;
    const host = {
      netnsPath: (n: string) => `/run/netns/${n}`,
      deleteNetns: (n: string) => (calls.push(`deleteNetns ${n}`), Promise.resolve()),
      holdNetns: (f: string, n: string) => (calls.push(`holdNetns ${f} ${n}`), Promise.resolve()),
      linkMacIn: () => Promise.resolve(++polls > macAfter ? "02:00:00:00:00:01" : undefined),
    };
    const dhcp = {
      delIpam: (_l: LoadedConfList, a: Attachment) => (calls.push(`delIpam ${a.netns}`), Promise.resolve(["dhcp"])),
      addIpam: (_l: LoadedConfList, a: Attachment) => (calls.push(`addIpam ${a.netns}`), Promise.resolve({ cniVersion: "1.0.0", ips: [{ address: "10.249.1.120/24" }] })),
    };
    const leases = new DhcpLeases({ dhcp, host, state, locks: new KeyedMutex(), waitMs: 2_000, pollMs: 5 });
    return { state, calls, leases };
  }

  it("once the container's namespace shows the interface: the staging path is bound to it, the lease released and taken there, and the record says so", async () => {
    const { state, calls, leases } = setup(3);
    await state.putEndpoint(rec());
    leases.follow(rec(), loaded(list({ type: "dhcp" })));
    await leases.settle();
    expect(calls).toEqual(["deleteNetns cni-shim-eeee", "holdNetns /var/run/docker/netns/abc cni-shim-eeee", "delIpam /run/netns/cni-shim-eeee", "addIpam /run/netns/cni-shim-eeee"]);
    expect((await state.getEndpoint(rec().id))?.dhcpLease).toBe("container");
  });

  it("does nothing for a chain without dhcp, or an endpoint that left meanwhile", async () => {
    const { state, calls, leases } = setup(0);
    await state.putEndpoint(rec({ phase: "ready", sandboxKey: undefined }));
    leases.follow(rec(), loaded(list({ type: "host-local" })));
    leases.follow(rec(), loaded(list({ type: "dhcp" })));
    await leases.settle();
    expect(calls).toEqual([]);
    expect((await state.getEndpoint(rec().id))?.dhcpLease).toBe("staging");
  });

  it("gives up (bounded) when the interface never shows", async () => {
    const { state, calls, leases } = setup(1_000_000);
    await state.putEndpoint(rec());
    const started = Date.now();
    leases.follow(rec(), loaded(list({ type: "dhcp" })));
    await leases.settle();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(calls).toEqual([]);
  });
});
