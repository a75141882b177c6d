// /proc/net/tcp parsing and the port rules of cni-shim doctor (src/doctor/ports.ts, checks.ts).
import { describe, expect, it } from "vitest";
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listeningPorts, parseHexAddress, parseProcNetTcp, TCP_LISTEN, type Listener } from "../../src/doctor/ports.js";
import { evaluatePorts, ROLE_PORTS } from "../../src/doctor/kubernetes-ports.js";
import { hostnameProblem } from "../../src/doctor/node-checks.js";

// Lines as a little-endian kernel writes them (captured shapes; inodes made up).
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:280A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: 0200000A:D5A4 0100000A:1A0B 01 00000000:00000000 02:0000026A 00000000  1000        0 4444 2 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1A0B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:7918 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5252 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:2710 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5353 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5454 1 0000000000000000 100 0 0 10 0
`;

describe("parseHexAddress", () => {
  it("reads IPv4 in host byte order", () => {
    expect(parseHexAddress("0100007F", true)).toBe("127.0.0.1");
    expect(parseHexAddress("00000000", true)).toBe("0.0.0.0");
    expect(parseHexAddress("7F000001", false)).toBe("127.0.0.1");
  });
  it("reads IPv6 as four host-order words and prints it canonically", () => {
    expect(parseHexAddress("00000000000000000000000001000000", true)).toBe("::1");
    expect(parseHexAddress("00000000000000000000000000000000", true)).toBe("::");
    expect(parseHexAddress("B80D0120000000000000000001000000", true)).toBe("2001:db8::1");
    expect(parseHexAddress("0000000000000000FFFF00000100007F", true)).toBe("::ffff:127.0.0.1");
  });
  it("rejects what is not an address", () => {
    expect(() => parseHexAddress("XYZ", true)).toThrow(/not a \/proc\/net\/tcp address/);
  });
});

describe("parseProcNetTcp", () => {
  it("parses every socket line with ports, state, uid and inode", () => {
    const sockets = parseProcNetTcp(TCP, 4, true);
    expect(sockets).toHaveLength(3);
    expect(sockets[0]).toEqual({ family: 4, localAddress: "0.0.0.0", localPort: 10250, remoteAddress: "0.0.0.0", remotePort: 0, state: TCP_LISTEN, uid: 0, inode: 4242 });
    expect(sockets[1]).toMatchObject({ localAddress: "127.0.0.1", localPort: 3306 });
    expect(sockets[2]).toMatchObject({ localAddress: "10.0.0.2", localPort: 54692, remoteAddress: "10.0.0.1", remotePort: 6667, state: 1, uid: 1000, inode: 4444 });
  });
  it("parses tcp6", () => {
    const sockets = parseProcNetTcp(TCP6, 6, true);
    expect(sockets.map((s) => `${s.localAddress}/${s.localPort}`)).toEqual(["::/6667", "::1/31000", "::ffff:127.0.0.1/10000", "2001:db8::1/80"]);
    expect(sockets.every((s) => s.family === 6 && s.state === TCP_LISTEN)).toBe(true);
  });
  it("ignores the header, blank and malformed lines", () => {
    expect(parseProcNetTcp("  sl  local_address\n\n garbage\n", 4, true)).toEqual([]);
  });
});

describe("listeningPorts on a fake /proc", () => {
  it("keeps LISTEN sockets only and finds the owning process by socket inode", async () => {
    const proc = await mkdtemp(join(tmpdir(), "cs-doctor-proc-"));
    try {
      await mkdir(join(proc, "net"));
      // This machine's byte order decides how the kernel writes addresses: write them that way.
      const le = (await import("node:os")).endianness() === "LE";
      await writeFile(join(proc, "net/tcp"), le ? TCP : TCP.replace("0100007F", "7F000001").replace("0200000A", "0A000002").replace("0100000A", "0A000001"));
      await mkdir(join(proc, "77/fd"), { recursive: true });
      await writeFile(join(proc, "77/comm"), "kubelet\n");
      await writeFile(join(proc, "77/cmdline"), "/usr/bin/kubelet\0--config\0/var/lib/kubelet/config.yaml\0");
      await symlink("socket:[4242]", join(proc, "77/fd/3"));
      await symlink("/dev/null", join(proc, "77/fd/0"));
      const ports = await listeningPorts(proc);
      expect(ports.map((p) => `${p.address}:${p.port}`)).toEqual(["0.0.0.0:10250", "127.0.0.1:3306"]);
      expect(ports[0]!.processes).toEqual([{ pid: 77, name: "kubelet", cmdline: "/usr/bin/kubelet --config /var/lib/kubelet/config.yaml" }]);
      expect(ports[1]!.processes).toEqual([]);
    } finally {
      await rm(proc, { recursive: true, force: true });
    }
  });
});

const listener = (port: number, name?: string, address = "0.0.0.0"): Listener => ({
  family: 4,
  address,
  port,
  inode: port,
  processes: name ? [{ pid: 100 + (port % 100), name: name.slice(0, 15), cmdline: `/usr/local/bin/${name} --flag` }] : [],
});

describe("evaluatePorts", () => {
  it("worker: 10250 and the NodePort range, all free", () => {
    const results = evaluatePorts("worker", []);
    expect(results.map((r) => [r.id, r.status])).toEqual([
      ["port-10250", "pass"],
      ["nodeport-range", "pass"],
    ]);
  });

  it("control plane: 6443, etcd, kubelet, scheduler and controller-manager ports, no NodePort check", () => {
    const ids = evaluatePorts("control-plane", []).map((r) => r.id);
    expect(ids).toEqual(["port-6443", "port-2379", "port-2380", "port-10250", "port-10251", "port-10259", "port-10252", "port-10257"]);
    expect(ROLE_PORTS["control-plane"].map((p) => p.port)).toEqual([6443, 2379, 2380, 10250, 10251, 10259, 10252, 10257]);
  });

  it("fails a port held by something else, naming it and saying what to do", () => {
    const [port] = evaluatePorts("worker", [listener(10250, "busybox")]);
    expect(port).toMatchObject({ id: "port-10250", group: "ports", status: "fail", details: { port: 10250, inUse: true } });
    expect(port!.summary).toContain("0.0.0.0:10250 by busybox (pid 150)");
    expect(port!.summary).toContain("kubelet needs it");
    expect(port!.fix).toMatch(/stop that process/);
  });

  it("fails when the owner cannot be seen", () => {
    const [port] = evaluatePorts("worker", [listener(10250, undefined, "127.0.0.1")]);
    expect(port!.status).toBe("fail");
    expect(port!.summary).toContain("127.0.0.1:10250 (process not visible from here)");
  });

  it("passes ports held by the component that needs them (comm cut to 15 characters)", () => {
    const results = evaluatePorts("control-plane", [listener(6443, "kube-apiserver", "::"), listener(10257, "kube-controller-manager"), listener(2379, "etcd"), listener(2380, "etcd")]);
    const byId = Object.fromEntries(results.map((r) => [r.id, r]));
    expect(byId["port-6443"]!.status).toBe("pass");
    expect(byId["port-6443"]!.summary).toMatch(/in use by kube-apiserver, as expected/);
    expect(byId["port-10257"]!.status).toBe("pass");
    expect(byId["port-2379"]!.status).toBe("pass");
    expect(results.filter((r) => r.status !== "pass")).toEqual([]);
  });

  it("warns about listeners in the NodePort range except kube-proxy", () => {
    const results = evaluatePorts("worker", [listener(31000, "nginx"), listener(30000, "kube-proxy"), listener(32768, "other"), listener(29999, "other")]);
    const nodePorts = results.find((r) => r.id === "nodeport-range")!;
    expect(nodePorts.status).toBe("warn");
    expect(nodePorts.summary).toContain("0.0.0.0:31000 by nginx");
    expect(nodePorts.summary).not.toContain("30000 by");
    expect(nodePorts.details).toMatchObject({ range: "30000-32767", inUse: [30000, 31000] });
    expect(evaluatePorts("worker", [listener(30001, "kube-proxy")]).find((r) => r.id === "nodeport-range")!.status).toBe("pass");
  });
});

describe("hostnameProblem", () => {
  it("accepts node names and explains the rest", () => {
    expect(hostnameProblem("node-1.example.com")).toBeUndefined();
    expect(hostnameProblem("localhost")).toMatch(/same on every machine/);
    expect(hostnameProblem("Node_1")).toMatch(/not a valid node name/);
    expect(hostnameProblem("")).toMatch(/empty/);
  });
});
