// cni-shim doctor against real host state: a network namespace with real listeners, a real
// cni-shim serving a socket, real CNI plugins answering VERSION, real conf files.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa, type ResultPromise } from "execa";
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLI, docker, rand, sh, startPlugin, waitFor, type PluginHandle, cleanup } from "../helpers/e2e.js";
import { CNI_PLUGIN_DIR, SPEAKS_1_1 } from "../helpers/cni-plugin-set.js";
import { resolveSettings } from "../../src/settings.js";

interface Check {
  id: string;
  group: string;
  status: "pass" | "warn" | "fail";
  summary: string;
  fix?: string;
  details?: { inUse?: boolean; port?: number; listeners?: Array<{ port: number; processes: Array<{ pid: number; name: string }> }> };
}
interface Report {
  role: string;
  ok: boolean;
  counts: Record<string, number>;
  checks: Check[];
}

async function doctor(args: string[], netns?: string): Promise<{ report: Report; exitCode: number; stderr: string }> {
  const cmd = netns ? ["ip", ["netns", "exec", netns, process.execPath, CLI, "doctor", "--json", ...args]] : [process.execPath, [CLI, "doctor", "--json", ...args]];
  const res = await execa(cmd[0] as string, cmd[1] as string[], { reject: false, timeout: 60_000 });
  let report: Report;
  try {
    report = JSON.parse(String(res.stdout)) as Report;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${res.exitCode}): ${res.stdout}\n${res.stderr}`);
  }
  return { report, exitCode: res.exitCode ?? -1, stderr: String(res.stderr) };
}

const byId = (r: Report) => Object.fromEntries(r.checks.map((c) => [c.id, c]));
const portsInUse = (r: Report) => r.checks.filter((c) => c.group === "ports" && c.id.startsWith("port-") && c.details?.inUse).map((c) => c.details!.port);

describe("cni-shim doctor in a network namespace with a listener on a required port", () => {
  const ns = `cs-doc-${rand()}`;
  const listeners: ResultPromise[] = [];

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error("doctor e2e: must run as root (ip netns)");
    await access(CLI, constants.R_OK).catch(() => {
      throw new Error(`${CLI} is missing: run "make build"`);
    });
    await access("/bin/busybox", constants.X_OK).catch(() => {
      throw new Error("/bin/busybox is missing: apt-get install busybox-static (make deps does it)");
    });
    await sh("ip", ["netns", "add", ns]);
    await sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    // The kubelet's port, on every address (busybox nc binds [::], dual stack) ...
    listeners.push(execa("ip", ["netns", "exec", ns, "/bin/busybox", "nc", "-l", "-p", "10250"], { reject: false }));
    // ... and the API server's, on IPv4 loopback only (not a worker port).
    listeners.push(execa("ip", ["netns", "exec", ns, process.execPath, "-e", "require('net').createServer().listen(6443, '127.0.0.1')"], { reject: false }));
    const listening = async () => {
      const out = (await sh("ip", ["netns", "exec", ns, "cat", "/proc/net/tcp", "/proc/net/tcp6"])).stdout;
      return out.includes(":280A ") && out.includes(":192B ") ? true : undefined;
    };
    await waitFor("the listeners in the namespace", listening, 10_000);
  });

  afterAll(async () => {
    for (const l of listeners) l.kill("SIGKILL");
    await Promise.all(listeners.map((l) => l.catch(() => undefined)));
    await sh("ip", ["netns", "del", ns], { reject: false });
  });

  it("worker: reports exactly 10250 in use, by the process that holds it, and exits 1", async () => {
    const { report, exitCode } = await doctor(["--role", "worker"], ns);
    expect(report.role).toBe("worker");
    expect(portsInUse(report)).toEqual([10250]);
    const port = byId(report)["port-10250"]!;
    expect(port.status).toBe("fail");
    expect(port.summary).toMatch(/TCP 10250 is in use: \[::\]:10250 by busybox \(pid \d+\); kubelet needs it/);
    expect(port.details!.listeners![0]!.processes[0]!.pid).toBe(Number(/pid (\d+)/.exec(port.summary)![1]));
    expect(port.fix).toContain("ss -ltnp 'sport = :10250'");
    // The NodePort range of this namespace is empty, and 6443 is not a worker's business.
    expect(byId(report)["nodeport-range"]).toMatchObject({ status: "pass", details: { inUse: [] } });
    expect(report.checks.some((c) => c.id === "port-6443")).toBe(false);
    expect(exitCode).toBe(1);
    expect(report.ok).toBe(false);
  });

  it("worker: sees the namespace, not the host (only lo, no default route)", async () => {
    const { report } = await doctor(["--role", "worker"], ns);
    expect(byId(report)["interfaces"]!.status).toBe("fail");
    expect(byId(report)["default-route"]!.status).toBe("warn");
  });

  it("control-plane: checks 6443, etcd, kubelet, scheduler and controller-manager ports", async () => {
    const { report, exitCode } = await doctor(["--role", "control-plane"], ns);
    const ports = report.checks.filter((c) => c.group === "ports").map((c) => c.id);
    expect(ports).toEqual(["port-6443", "port-2379", "port-2380", "port-10250", "port-10251", "port-10259", "port-10252", "port-10257"]);
    expect(portsInUse(report)).toEqual([6443, 10250]);
    expect(byId(report)["port-6443"]!.summary).toMatch(/127\.0\.0\.1:6443 by node \(pid \d+\); kube-apiserver needs it/);
    for (const id of ["port-2379", "port-2380", "port-10251", "port-10259", "port-10252", "port-10257"]) expect(byId(report)[id]!.status).toBe("pass");
    expect(exitCode).toBe(1);
  });

  it("the table names the port, the process and the fix", async () => {
    const res = await sh("ip", ["netns", "exec", ns, process.execPath, CLI, "doctor", "--role", "worker"], { reject: false });
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toMatch(/^fail {2}port-10250 +TCP 10250 is in use/m);
    expect(res.stdout).toMatch(/fix: stop that process/);
    expect(res.stdout).toMatch(/^pass {2}nodeport-range/m);
  });
});

describe("cni-shim doctor on this host", () => {
  let plugin: PluginHandle;
  let confDir = "";

  beforeAll(async () => {
    plugin = await startPlugin();
    confDir = await mkdtemp(join(tmpdir(), "cs-doc-conf-"));
    await writeFile(join(confDir, "10-good.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "doc-good", plugins: [{ type: "bridge", bridge: "cs-doc0", ipam: { type: "host-local", subnet: "10.250.0.0/24" } }, { type: "portmap", capabilities: { portMappings: true } }] }));
    await writeFile(join(confDir, "20-missing.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "doc-missing", plugins: [{ type: "bridge" }, { type: "cs-no-such-plugin" }] }));
    await writeFile(join(confDir, "30-newer.conflist"), JSON.stringify({ cniVersion: "9.9.9", name: "doc-newer", plugins: [{ type: "bridge" }] }));
    await writeFile(join(confDir, "40-broken.conflist"), "{ not json");
  });

  afterAll(async () => {
    await cleanup([], [], plugin);
    if (confDir) await rm(confDir, { recursive: true, force: true });
  });

  it("passes what this host has: root, a serving cni-shim, Docker, plugins, the embedded config, sysctls", async () => {
    const { report } = await doctor(["--socket", plugin.socket]);
    const c = byId(report);
    for (const id of ["root", "plugin-socket", "docker", "driver-name", "cni-path", "cni-plugins", "conflist-cni-shim-default", "ip-forward", "iptables", "interfaces"]) {
      expect({ id, status: c[id]?.status, summary: c[id]?.summary }).toMatchObject({ id, status: "pass" });
    }
    expect(c["plugin-socket"]!.summary).toContain(`${plugin.socket} answers Plugin.Activate with NetworkDriver`);
    expect(c["conflist-cni-shim-default"]!.summary).toBe("cni-shim-default: bridge, portmap, firewall, tuning found and speak cniVersion 1.0.0");
    expect(c["iptables"]!.summary).toMatch(/backend (nft|legacy)/);
    // The plugin set under test (CNI_PATH from the test helpers) and what its plugins speak.
    const top = SPEAKS_1_1 ? "1.1.0" : "1.0.0";
    expect(c["cni-plugins"]!.summary).toMatch(new RegExp(`^plugin set in use: ${CNI_PLUGIN_DIR} \\(\\d+\\); CNI versions: 0\\.1\\.0 to ${top.replace(/\./g, "\\.")}: bridge, .*host-local, .*; 0\\.4\\.0(, | to )1\\.\\d\\.0.*: firewall`));
    // The engine's version and what it means for cni-shim (Debian's 20.10 here: no namespace at Join).
    const [version, api] = (await docker(["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"])).stdout.trim().split(" ");
    expect(c["docker"]!.summary).toContain(`Docker ${version} (API ${api}) answers on ${resolveSettings({}).dockerSocket}: the container's network namespace `);
    expect(c["docker"]!.details).toMatchObject({ version, apiVersion: api, joinNetns: /^2[0-7]\./.test(version ?? "") ? "absent" : "present" });
    // Which path new endpoints take here, and why.
    expect(c["attach"]).toMatchObject({ status: "pass" });
    expect(c["attach"]!.summary).toMatch(/^new endpoints run the chain (in the container's own namespace|in a staging namespace)/);
    for (const check of report.checks.filter((x) => x.status !== "pass")) expect(check.fix, check.id).toBeTruthy();
  });

  it("fails a socket nothing serves and a conf dir with bad, incomplete and too-new configs", async () => {
    const missing = `/run/docker/plugins/cs-doc-${rand()}.sock`;
    const { report, exitCode } = await doctor(["--socket", missing, "--conf-dir", confDir]);
    const c = byId(report);
    expect(c["plugin-socket"]).toMatchObject({ status: "fail", summary: `no socket at ${missing}: cni-shim is not running` });
    expect(c["conf-dir"]!.status).toBe("fail");
    expect(c["conf-dir"]!.summary).toContain("40-broken.conflist: not valid JSON");
    // Docker runs here, so FORWARD drops: a chain without firewall would be cut off, and doctor
    // says that cni-shim's own chain accepts its forwarding (--accept-forwarding, on by default)...
    expect((await sh("iptables", ["-S", "FORWARD"])).stdout).toMatch(/^-P FORWARD DROP/m);
    expect(c["conflist-doc-good"]).toMatchObject({ status: "pass" });
    expect(c["conflist-doc-good"]!.summary).toMatch(/^doc-good: bridge, portmap found and speak cniVersion 1\.0\.0; it has no firewall plugin and this host's FORWARD policy is DROP .* cni-shim accepts the forwarding of its networks' subnets in iptables chain CNI-SHIM-FORWARD/);
    // ... and warns when that is off.
    const off = byId((await doctor(["--socket", missing, "--conf-dir", confDir, "--accept-forwarding", "false"])).report);
    expect(off["conflist-doc-good"]).toMatchObject({ status: "warn" });
    expect(off["conflist-doc-good"]!.summary).toMatch(/^doc-good: bridge, portmap found and speak cniVersion 1\.0\.0, but it has no firewall plugin .* --accept-forwarding is false/);
    expect(off["conflist-doc-good"]!.fix).toContain("iptables -I DOCKER-USER -s 10.250.0.0/24 -j ACCEPT");
    expect(c["conflist-kind"]).toMatchObject({ status: "pass" }); // the profiles bring firewall
    expect(c["conflist-doc-missing"]!.status).toBe("fail");
    expect(c["conflist-doc-missing"]!.summary).toContain(`CNI plugin "cs-no-such-plugin" not found`);
    expect(c["conflist-doc-missing"]!.fix).toMatch(/install the missing plugins/);
    expect(c["conflist-doc-newer"]!.status).toBe("fail");
    expect(c["conflist-doc-newer"]!.summary).toMatch(/asks for cniVersion 9\.9\.9/);
    expect(c["conflist-cni-shim-default"]!.status).toBe("pass");
    expect(exitCode).toBe(1);
  });

  it("refuses an unknown role", async () => {
    const res = await sh(process.execPath, [CLI, "doctor", "--role", "etcd"], { reject: false });
    expect(res.exitCode).toBe(2);
    expect(res.stderr).toContain('--role must be control-plane or worker, not "etcd"');
  });

  it("--help documents every check id, role, option and the exit status", async () => {
    const help = (await sh(process.execPath, [CLI, "doctor", "--help"])).stdout;
    const { report: worker } = await doctor(["--socket", plugin.socket]);
    const { report: cp } = await doctor(["--socket", plugin.socket, "--role", "control-plane"]);
    for (const check of [...worker.checks, ...cp.checks]) {
      const documented = check.id.startsWith("conflist-") ? "conflist-NAME" : check.id.startsWith("port-") ? "port-N" : check.id;
      expect(help, check.id).toContain(`  ${documented} `);
    }
    for (const port of [6443, 2379, 2380, 10250, 10251, 10259, 10252, 10257]) expect(help).toContain(`${port} (`);
    expect(help).toContain("30000-32767");
    for (const option of ["--role ROLE", "--json", "--socket", "--conf-dir", "--cni-path", "--exec-timeout-ms", "--docker-socket", "default worker"]) expect(help).toContain(option);
    expect(help).toMatch(/Exit status: 0 when nothing failed .* 1 when a check failed, 2 on a usage error/s);
    expect(worker.role).toBe("worker");
  });
});
