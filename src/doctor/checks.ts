// `cni-shim doctor`: each check is a small async function that looks at one thing on this host
// and says pass, warn or fail, with what to do about a problem. Nothing here changes the host.
import { access, readdir, readFile, stat } from "node:fs/promises";
import { unixRequest } from "../util/http.js";
import { networkInterfaces, hostname as osHostname } from "node:os";
import { basename, join } from "node:path";
import { confDirs, type Settings } from "../settings.js";
import { listConfFiles, type LoadedConfList } from "../cni/config.js";
import type { ConfList } from "../cni/schemas.js";
import { hostLocalRanges } from "../driver/translate.js";
import { findPlugin } from "../cni/plugins.js";
import { VersionProbe, chooseVersion } from "../cni/version.js";
import { run } from "../util/command.js";
import { listeningPorts, type Listener } from "./ports.js";

export type Status = "pass" | "warn" | "fail";
export type Group = "cni-shim" | "node" | "ports";
export type Role = "control-plane" | "worker";
export const ROLES: Role[] = ["control-plane", "worker"];
export const DEFAULT_ROLE: Role = "worker";

export interface CheckResult {
  id: string;
  group: Group;
  status: Status;
  summary: string;
  /** What to do; set for every warn and fail. */
  fix?: string;
  details?: Record<string, unknown>;
}

export interface DoctorContext {
  settings: Settings;
  role: Role;
  /** Roots of the kernel's views, replaceable in tests. */
  procRoot?: string;
  sysRoot?: string;
}

type Check = (ctx: DoctorContext) => Promise<CheckResult | CheckResult[]>;

const pass = (group: Group, id: string, summary: string, details?: Record<string, unknown>): CheckResult => ({ id, group, status: "pass", summary, ...(details ? { details } : {}) });
const problem = (status: "warn" | "fail", group: Group, id: string, summary: string, fix: string, details?: Record<string, unknown>): CheckResult => ({
  id,
  group,
  status,
  summary,
  fix,
  ...(details ? { details } : {}),
});

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    return undefined;
  }
}

// ---- Kubernetes ports (https://kubernetes.io/docs/reference/networking/ports-and-protocols/) --

export interface PortRequirement {
  port: number;
  /** The component that listens there on a running node. */
  component: string;
  /** Process names (comm, or argv[0]'s basename) that may hold the port. */
  owners: string[];
}

export const NODEPORT_RANGE: [number, number] = [30000, 32767];

const apiserver = { component: "kube-apiserver", owners: ["kube-apiserver"] };
const etcd = { component: "etcd", owners: ["etcd"] };
const kubelet = { component: "kubelet", owners: ["kubelet"] };
const scheduler = { component: "kube-scheduler", owners: ["kube-scheduler"] };
const controllerManager = { component: "kube-controller-manager", owners: ["kube-controller-manager"] };

/** TCP ports each role needs, in the order they are reported. */
export const ROLE_PORTS: Record<Role, PortRequirement[]> = {
  "control-plane": [
    { port: 6443, ...apiserver },
    { port: 2379, ...etcd },
    { port: 2380, ...etcd },
    { port: 10250, ...kubelet },
    { port: 10251, ...scheduler, component: "kube-scheduler (insecure port of older releases)" },
    { port: 10259, ...scheduler },
    { port: 10252, ...controllerManager, component: "kube-controller-manager (insecure port of older releases)" },
    { port: 10257, ...controllerManager },
  ],
  worker: [{ port: 10250, ...kubelet }],
};

/** The NodePort range is checked for workers (kube-proxy serves it there). */
export const ROLE_CHECKS_NODEPORTS: Record<Role, boolean> = { "control-plane": false, worker: true };

function ownedBy(l: Listener, names: string[]): boolean {
  // comm is cut to 15 characters (kube-controller-manager -> "kube-controller").
  return l.processes.length > 0 && l.processes.every((p) => names.some((n) => p.name === n.slice(0, 15) || basename(p.cmdline.split(" ")[0] ?? "") === n));
}

function describeListener(l: Listener): string {
  const where = l.family === 6 ? `[${l.address}]:${l.port}` : `${l.address}:${l.port}`;
  if (!l.processes.length) return `${where} (process not visible from here)`;
  return `${where} by ${l.processes.map((p) => `${p.name} (pid ${p.pid})`).join(", ")}`;
}

const listenerDetails = (ls: Listener[]) =>
  ls.map((l) => ({ address: l.address, port: l.port, family: l.family, processes: l.processes.map((p) => ({ pid: p.pid, name: p.name, cmdline: p.cmdline })) }));

/** Pure: the port checks of a role from the listening sockets. */
export function evaluatePorts(role: Role, listeners: Listener[]): CheckResult[] {
  const out: CheckResult[] = [];
  for (const req of ROLE_PORTS[role]) {
    const on = listeners.filter((l) => l.port === req.port);
    const details = { port: req.port, component: req.component, inUse: on.length > 0, listeners: listenerDetails(on) };
    if (!on.length) {
      out.push(pass("ports", `port-${req.port}`, `TCP ${req.port} is free (${req.component})`, details));
    } else if (on.every((l) => ownedBy(l, req.owners))) {
      out.push(pass("ports", `port-${req.port}`, `TCP ${req.port} is in use by ${req.component}, as expected: ${on.map(describeListener).join("; ")}`, details));
    } else {
      out.push(
        problem(
          "fail",
          "ports",
          `port-${req.port}`,
          `TCP ${req.port} is in use: ${on.map(describeListener).join("; ")}; ${req.component} needs it`,
          `stop that process or move it to another port before installing Kubernetes on this node (see it with: ss -ltnp 'sport = :${req.port}')`,
          details,
        ),
      );
    }
  }
  if (ROLE_CHECKS_NODEPORTS[role]) {
    const [lo, hi] = NODEPORT_RANGE;
    const inRange = listeners.filter((l) => l.port >= lo && l.port <= hi);
    const foreign = inRange.filter((l) => !ownedBy(l, ["kube-proxy"]));
    const details = { range: `${lo}-${hi}`, inUse: inRange.map((l) => l.port).filter((p, i, a) => a.indexOf(p) === i).sort((a, b) => a - b), listeners: listenerDetails(inRange) };
    if (!foreign.length) {
      out.push(pass("ports", "nodeport-range", inRange.length ? `NodePort range ${lo}-${hi}: only kube-proxy listens there` : `NodePort range ${lo}-${hi}: no TCP listeners`, details));
    } else {
      out.push(
        problem(
          "warn",
          "ports",
          "nodeport-range",
          `NodePort range ${lo}-${hi}: ${foreign.length} TCP listener(s) that a NodePort Service would shadow: ${foreign.map(describeListener).join("; ")}`,
          `move those services out of ${lo}-${hi}, or give kube-apiserver a --service-node-port-range that avoids them`,
          details,
        ),
      );
    }
  }
  return out;
}

const portChecks: Check = async (ctx) => evaluatePorts(ctx.role, await listeningPorts(ctx.procRoot));

// ---- cni-shim itself --------------------------------------------------------------------

const rootCheck: Check = async () => {
  const uid = process.getuid?.();
  if (uid === 0) return pass("cni-shim", "root", "running as root");
  return problem("fail", "cni-shim", "root", `running as uid ${uid}: cni-shim needs root (network namespaces, iptables), and some checks here need it too`, "run cni-shim (and cni-shim doctor) as root, e.g. with sudo");
};


async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

/** Sockets of managed plugins: Docker gives each its own /run/docker/plugins/<plugin id>/ dir. */
async function managedSockets(socket: string): Promise<string[]> {
  const dir = join(socket, "..");
  const out: string[] = [];
  try {
    for (const name of await readdir(dir)) {
      if (/^[0-9a-f]{64}$/.test(name) && (await isSocket(join(dir, name, basename(socket))))) out.push(join(dir, name, basename(socket)));
    }
  } catch {
    /* no plugins dir */
  }
  return out;
}

const socketCheck: Check = async ({ settings }) => {
  const startHint = "start it: systemctl start cni-shim (installed with make install), cni-shim serve, or for the managed plugin docker plugin enable cni-shim";
  const candidates = (await isSocket(settings.socket)) ? [settings.socket] : await managedSockets(settings.socket);
  if (!candidates.length) {
    return problem("fail", "cni-shim", "plugin-socket", `no socket at ${settings.socket}: cni-shim is not running`, `${startHint} (or pass the socket it serves with --socket)`);
  }
  const failures: string[] = [];
  for (const socket of candidates) {
    try {
      const res = await unixRequest(socket, "POST", "/Plugin.Activate", 5_000);
      const implementsDriver = res.status === 200 && (JSON.parse(res.body || "{}") as { Implements?: string[] }).Implements?.includes("NetworkDriver");
      if (implementsDriver) {
        const managed = socket !== settings.socket ? " (managed plugin)" : "";
        return pass("cni-shim", "plugin-socket", `${socket} answers Plugin.Activate with NetworkDriver${managed}`, { socket });
      }
      failures.push(`${socket} answered ${res.status} ${res.body.slice(0, 200)}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      failures.push(code === "ECONNREFUSED" ? `${socket} is a stale socket: nothing listens on it` : `${socket}: ${(err as Error).message}`);
    }
  }
  return problem("fail", "cni-shim", "plugin-socket", failures.join("; "), `${startHint}; a stale socket file is replaced when cni-shim starts`, { sockets: candidates });
};

const dockerCheck: Check = async ({ settings }) => {
  try {
    const res = await unixRequest(settings.dockerSocket, "GET", "/version", 5_000);
    if (res.status !== 200) throw new Error(`GET /version answered ${res.status}`);
    const v = JSON.parse(res.body) as { Version?: string; ApiVersion?: string };
    return pass("cni-shim", "docker", `Docker ${v.Version} (API ${v.ApiVersion}) answers on ${settings.dockerSocket}`, { version: v.Version, apiVersion: v.ApiVersion });
  } catch (err) {
    return problem(
      "fail",
      "cni-shim",
      "docker",
      `Docker does not answer on ${settings.dockerSocket}: ${(err as Error).message}`,
      "start dockerd (systemctl start docker), or point --docker-socket (or CNI_SHIM_DOCKER_SOCKET, or DOCKER_HOST=unix://PATH) at its API socket",
    );
  }
};

/**
 * A managed plugin named like the socket takes over the driver name: Docker resolves `-d NAME`
 * to the managed NAME:latest and then fails ("could not resolve driver NAME in registry"), so
 * the plain plugin on the socket cannot be used by that name any more.
 */
const driverNameCheck: Check = async ({ settings }) => {
  const name = basename(settings.socket).replace(/\.(sock|spec|json)$/, "");
  let plugins: Array<{ Name: string; Enabled: boolean; Config?: { Interface?: { Types?: string[] } } }>;
  try {
    const res = await unixRequest(settings.dockerSocket, "GET", "/plugins", 5_000);
    if (res.status !== 200) throw new Error(`GET /plugins answered ${res.status}`);
    plugins = JSON.parse(res.body) as typeof plugins;
  } catch (err) {
    return problem("warn", "cni-shim", "driver-name", `cannot list Docker's managed plugins: ${(err as Error).message}`, "see the docker check");
  }
  const managed = plugins.find((p) => p.Name === `${name}:latest` || p.Name === name);
  const v1 = await isSocket(settings.socket);
  const details = { driver: name, socket: v1 ? settings.socket : undefined, managedPlugin: managed ? { name: managed.Name, enabled: managed.Enabled } : undefined };
  if (managed && v1) {
    return problem(
      "warn",
      "cni-shim",
      "driver-name",
      `both a managed plugin ${managed.Name} (${managed.Enabled ? "enabled" : "disabled"}) and ${settings.socket} exist: Docker resolves -d ${name} to the managed plugin, so networks cannot use the plain one by that name`,
      `run one of them: stop the service (systemctl disable --now cni-shim) or remove the managed plugin (docker plugin disable ${managed.Name} && docker plugin rm ${managed.Name}); or serve the plain one on another socket name`,
      details,
    );
  }
  if (managed) return pass("cni-shim", "driver-name", `managed plugin ${managed.Name} (${managed.Enabled ? "enabled" : "disabled"}): create networks with -d ${managed.Name.includes(":") ? managed.Name : `${managed.Name}:latest`}`, details);
  return pass("cni-shim", "driver-name", `no managed plugin named ${name}${v1 ? `: -d ${name} reaches ${settings.socket}` : ""}`, details);
};

const cniPathCheck: Check = async ({ settings }) => {
  const found: Record<string, string[]> = {};
  for (const dir of settings.cniPath) {
    try {
      const names: string[] = [];
      for (const name of (await readdir(dir)).sort()) {
        try {
          const st = await stat(join(dir, name));
          if (st.isFile() && st.mode & 0o111) names.push(name);
        } catch {
          /* dangling link */
        }
      }
      found[dir] = names;
    } catch {
      /* missing dir: reported below */
    }
  }
  const dirs = Object.keys(found).filter((d) => found[d]!.length);
  const path = settings.cniPath.join(":");
  if (!dirs.length) {
    return problem("fail", "cni-shim", "cni-path", `no CNI plugins in ${path}`, "install the reference plugins (Debian: apt-get install containernetworking-plugins) or set --cni-path / CNI_PATH to where they are", { cniPath: settings.cniPath });
  }
  const summary = dirs.map((d) => `${d}: ${found[d]!.length} plugins`).join("; ");
  if (!dirs.some((d) => found[d]!.includes("loopback"))) {
    return problem("warn", "cni-shim", "cni-path", `${summary}; no "loopback" plugin (cni-shim attach needs it)`, "install the reference plugins (containernetworking-plugins), which include loopback", { plugins: found });
  }
  return pass("cni-shim", "cni-path", summary, { plugins: found });
};

const confDirCheck: Check = async ({ settings }) => {
  const dir = settings.confDir;
  try {
    await access(dir);
  } catch {
    return pass("cni-shim", "conf-dir", `${dir} does not exist: only the embedded configs are available (it is needed only for -o cni.network=NAME)`, { confDir: dir, configs: [] });
  }
  const entries = await listConfFiles([dir]);
  const broken = entries.filter((e) => e.error);
  const names = entries.filter((e) => e.loaded).map((e) => e.loaded!.conflist.name);
  const dupes = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
  const details = { confDir: dir, configs: entries.map((e) => ({ file: e.file, name: e.name, error: e.error })) };
  if (broken.length) {
    return problem("fail", "cni-shim", "conf-dir", `${broken.length} of ${entries.length} config file(s) in ${dir} do not parse: ${broken.map((b) => b.error).join("; ")}`, "fix or remove the files named above (a network using such a file cannot be created)", details);
  }
  if (dupes.length) {
    return problem("warn", "cni-shim", "conf-dir", `${dir}: more than one file defines ${dupes.map((d) => `"${d}"`).join(", ")}; the first in libcni order wins`, "remove or rename the duplicates so that each network name has one file", details);
  }
  return pass("cni-shim", "conf-dir", entries.length ? `${dir}: ${entries.length} config(s) parse: ${names.join(", ")}` : `${dir}: no configs (only the embedded ones are available)`, details);
};

/** One check per network list cni-shim can use: every plugin found, answering VERSION, and a common version. */
const conflistChecks: Check = async ({ settings }) => {
  const probe = new VersionProbe(settings.cniPath, settings.execTimeoutMs);
  const forwardPolicy = await run("iptables", ["-w", "5", "-S", "FORWARD"], { timeoutMs: 10_000 }).then((out) => /^-P FORWARD (\S+)/m.exec(out)?.[1], () => undefined);
  const seen = new Set<string>();
  const out: CheckResult[] = [];
  for (const entry of await listConfFiles(confDirs(settings))) {
    if (!entry.loaded || seen.has(entry.loaded.conflist.name)) continue; // the conf-dir check reports broken files; shadowed names are unused
    seen.add(entry.loaded.conflist.name);
    out.push(await checkConfList(entry.loaded, settings, probe, forwardPolicy));
  }
  return out;
};

/**
 * Why containers of this list cannot reach each other through the host, if they cannot: dockerd
 * sets the FORWARD policy to DROP, so a chain without the firewall plugin (which accepts each
 * container's traffic) has its routed (ptp) and bridged (br_netfilter) traffic dropped. On a
 * cluster node flannel or kube-proxy accept it; here nothing does.
 */
export function forwardDropProblem(list: ConfList, forwardPolicy: string | undefined): string | undefined {
  if (forwardPolicy !== "DROP" || list.plugins.some((p) => p.type === "firewall")) return undefined;
  return "it has no firewall plugin and this host's FORWARD policy is DROP (dockerd sets it): its containers cannot reach each other through the host";
}

async function checkConfList(loaded: LoadedConfList, settings: Settings, probe: VersionProbe, forwardPolicy?: string): Promise<CheckResult> {
  const list = loaded.conflist;
  const id = `conflist-${list.name}`;
  const plugins: Record<string, { path?: string; versions?: string[]; error?: string }> = {};
  const problems: string[] = [];
  for (const p of list.plugins) {
    if (plugins[p.type]) continue;
    try {
      const path = await findPlugin(p.type, settings.cniPath);
      plugins[p.type] = { path, versions: await probe.supported(path) };
    } catch (err) {
      plugins[p.type] = { error: (err as Error).message };
      problems.push((err as Error).message);
    }
  }
  const details = { file: loaded.source, cniVersion: list.cniVersion, cniVersions: list.cniVersions, plugins };
  if (problems.length) {
    const missing = problems.some((m) => m.includes("not found"));
    return problem(
      "fail",
      "cni-shim",
      id,
      `${list.name} (${loaded.source}): ${problems.join("; ")}`,
      missing ? "install the missing plugins (Debian: apt-get install containernetworking-plugins) or add their directory to --cni-path / CNI_PATH" : "replace the plugin binaries that do not answer VERSION",
      details,
    );
  }
  try {
    const supported = new Map(Object.entries(plugins).map(([type, v]) => [type, v.versions ?? []]));
    const version = chooseVersion(list.name, [list.cniVersion, ...(list.cniVersions ?? [])], supported);
    const summary = `${list.name}: ${Object.keys(plugins).join(", ")} found and speak cniVersion ${version}`;
    const dropped = forwardDropProblem(list, forwardPolicy);
    if (dropped) {
      const subnet = hostLocalRanges(list)?.[0]?.subnet ?? "<its subnet>";
      return problem("warn", "cni-shim", id, `${summary}, but ${dropped}`, `add {"type": "firewall"} at the end of its plugins (as cni-shim's profiles do), or accept its traffic: iptables -I DOCKER-USER -s ${subnet} -j ACCEPT`, { ...details, chosenVersion: version, forwardPolicy });
    }
    return pass("cni-shim", id, summary, { ...details, chosenVersion: version });
  } catch (err) {
    return problem("fail", "cni-shim", id, `${list.name} (${loaded.source}): ${(err as Error).message}`, `set "cniVersion" (or "cniVersions") in ${loaded.source} to a version all its plugins list, or install newer plugins`, details);
  }
}

const ipForwardCheck: Check = async ({ procRoot = "/proc" }) => {
  const v = await readText(join(procRoot, "sys/net/ipv4/ip_forward"));
  if (v === "1") return pass("cni-shim", "ip-forward", "net.ipv4.ip_forward = 1");
  return problem(
    "fail",
    "cni-shim",
    "ip-forward",
    v === undefined ? "cannot read net.ipv4.ip_forward" : `net.ipv4.ip_forward = ${v}: containers cannot reach other networks, published ports do not work`,
    "sysctl -w net.ipv4.ip_forward=1, and keep it: echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-kubernetes.conf",
  );
};

const brNetfilterCheck: Check = async ({ procRoot = "/proc" }) => {
  const v = await readText(join(procRoot, "sys/net/bridge/bridge-nf-call-iptables"));
  if (v === "1") return pass("cni-shim", "br-netfilter", "br_netfilter loaded, net.bridge.bridge-nf-call-iptables = 1");
  if (v === undefined) {
    return problem(
      "fail",
      "cni-shim",
      "br-netfilter",
      "br_netfilter is not loaded (no net.bridge.bridge-nf-call-iptables): bridged traffic skips iptables, so Service and hairpin NAT break",
      "modprobe br_netfilter, and load it at boot: echo br_netfilter > /etc/modules-load.d/k8s.conf",
    );
  }
  return problem("fail", "cni-shim", "br-netfilter", `net.bridge.bridge-nf-call-iptables = ${v}: bridged traffic skips iptables`, "sysctl -w net.bridge.bridge-nf-call-iptables=1, and keep it in /etc/sysctl.d/99-kubernetes.conf");
};

async function countRules(save: string): Promise<number | undefined> {
  try {
    return (await run(save, [], { timeoutMs: 10_000 })).split("\n").filter((l) => l.startsWith("-A ")).length;
  } catch {
    return undefined;
  }
}

const iptablesCheck: Check = async ({ procRoot = "/proc" }) => {
  let version: string;
  try {
    version = (await run("iptables", ["--version"], { timeoutMs: 10_000 })).trim();
  } catch (err) {
    return problem("fail", "cni-shim", "iptables", `iptables does not run: ${(err as Error).message}`, "install iptables (Debian: apt-get install iptables); the bridge, portmap and firewall plugins need it");
  }
  const backend = version.includes("nf_tables") ? "nft" : version.includes("legacy") ? "legacy" : "unknown";
  const details: Record<string, unknown> = { version, backend };
  // Rules in the other backend mean two sets of tools on this host disagree (e.g. a
  // kube-proxy image on legacy while Docker uses nft): their rules do not see each other.
  const other = backend === "nft" ? "legacy" : backend === "legacy" ? "nft" : undefined;
  if (other) {
    // Only look at legacy when its tables exist: running iptables-legacy would load the modules.
    const legacyTables = other === "legacy" ? await readText(join(procRoot, "net/ip_tables_names")) : "x";
    const n = legacyTables ? await countRules(`iptables-${other}-save`) : 0;
    details.otherBackendRules = n;
    if (n) {
      return problem(
        "warn",
        "cni-shim",
        "iptables",
        `${version}, but the ${other} backend also has ${n} rule(s): rules of one backend do not see the other's`,
        `use one backend for everything on this host (update-alternatives --set iptables /usr/sbin/iptables-${backend}, and kube-proxy/Docker on the same), then reboot or flush the ${other} rules`,
        details,
      );
    }
  }
  return pass("cni-shim", "iptables", `${version}, backend ${backend}`, details);
};

// ---- cluster-node parity (https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/) --

const NOT_UNIQUE_HERE = "uniqueness across nodes cannot be checked from one host: compare with the other nodes";

const interfacesCheck: Check = async () => {
  const found: Array<{ name: string; address: string; family: string }> = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal || (a.family === "IPv6" && a.address.toLowerCase().startsWith("fe80"))) continue;
      found.push({ name, address: a.cidr ?? a.address, family: a.family });
    }
  }
  if (!found.length) {
    return problem("fail", "node", "interfaces", "no interface has an address other than loopback and link-local", "give the node an address on the cluster network (nodes must reach each other)", { interfaces: [] });
  }
  return pass("node", "interfaces", found.map((f) => `${f.name} ${f.address}`).join(", "), { interfaces: found });
};

const defaultRouteCheck: Check = async ({ procRoot = "/proc" }) => {
  const v4 = (await readText(join(procRoot, "net/route"))) ?? "";
  for (const line of v4.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === "00000000" && f[7] === "00000000") return pass("node", "default-route", `default route via ${f[0]}`, { interface: f[0], family: 4 });
  }
  const v6 = (await readText(join(procRoot, "net/ipv6_route"))) ?? "";
  for (const line of v6.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[0] === "0".repeat(32) && f[1] === "00" && f[9] !== "lo") return pass("node", "default-route", `IPv6 default route via ${f[9]}`, { interface: f[9], family: 6 });
  }
  return problem(
    "warn",
    "node",
    "default-route",
    "no default route: kubeadm and the kubelet pick the node address from the default route's interface",
    "add a default route, or give the address explicitly (kubeadm --apiserver-advertise-address, kubelet --node-ip)",
  );
};

/** A node name must be a lowercase RFC 1123 subdomain. */
export function hostnameProblem(name: string): string | undefined {
  if (!name) return "the hostname is empty";
  if (name === "localhost" || name.startsWith("localhost.")) return `"${name}" is the same on every machine`;
  if (name.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
    return `"${name}" is not a valid node name (lowercase letters, digits, '-' and '.', at most 253 characters)`;
  }
  return undefined;
}

const hostnameCheck: Check = async () => {
  const name = osHostname();
  const why = hostnameProblem(name);
  if (why) return problem("warn", "node", "hostname", `hostname ${why}; Kubernetes uses it as the node name`, "set a unique, lowercase hostname (hostnamectl set-hostname NAME) or pass --node-name to kubeadm", { hostname: name });
  return pass("node", "hostname", `hostname ${name} (${NOT_UNIQUE_HERE})`, { hostname: name });
};

const macCheck: Check = async ({ sysRoot = "/sys" }) => {
  const macs: Array<{ name: string; mac: string; physical: boolean }> = [];
  let names: string[] = [];
  try {
    names = (await readdir(join(sysRoot, "class/net"))).sort();
  } catch {
    /* reported below */
  }
  for (const name of names) {
    const mac = await readText(join(sysRoot, "class/net", name, "address"));
    if (!mac || name === "lo" || mac === "00:00:00:00:00:00") continue;
    const physical = await access(join(sysRoot, "class/net", name, "device")).then(() => true, () => false);
    macs.push({ name, mac, physical });
  }
  if (!macs.length) {
    return problem("warn", "node", "mac", "no interface with a MAC address besides loopback", "give the node a network interface; nodes are told apart (also by some CNI plugins) by their MAC addresses", { interfaces: [] });
  }
  const shown = [...macs.filter((m) => m.physical), ...macs.filter((m) => !m.physical)].slice(0, 4);
  const more = macs.length > shown.length ? ` and ${macs.length - shown.length} more` : "";
  return pass("node", "mac", `${shown.map((m) => `${m.name} ${m.mac}`).join(", ")}${more} (${NOT_UNIQUE_HERE})`, { interfaces: macs });
};

const productUuidCheck: Check = async ({ sysRoot = "/sys" }) => {
  const uuid = await readText(join(sysRoot, "class/dmi/id/product_uuid"));
  const machineId = await readText("/etc/machine-id");
  const details = { productUuid: uuid, machineId };
  if (uuid) return pass("node", "product-uuid", `product_uuid ${uuid} (${NOT_UNIQUE_HERE})`, details);
  return problem(
    "warn",
    "node",
    "product-uuid",
    `cannot read ${join(sysRoot, "class/dmi/id/product_uuid")} (no DMI: a container, or a VM without it${process.getuid?.() === 0 ? "" : ", or not root"})${machineId ? `; machine-id is ${machineId}` : ""}`,
    "make sure every node has its own identity: VMs cloned from one image share product_uuid and /etc/machine-id; regenerate machine-id (systemd-machine-id-setup) and give each VM its own UUID",
    details,
  );
};

// ---- running them ---------------------------------------------------------------------------

const CHECKS: Array<{ group: Group; id: string; run: Check }> = [
  { group: "cni-shim", id: "root", run: rootCheck },
  { group: "cni-shim", id: "plugin-socket", run: socketCheck },
  { group: "cni-shim", id: "docker", run: dockerCheck },
  { group: "cni-shim", id: "driver-name", run: driverNameCheck },
  { group: "cni-shim", id: "cni-path", run: cniPathCheck },
  { group: "cni-shim", id: "conf-dir", run: confDirCheck },
  { group: "cni-shim", id: "conflist", run: conflistChecks },
  { group: "cni-shim", id: "ip-forward", run: ipForwardCheck },
  { group: "cni-shim", id: "br-netfilter", run: brNetfilterCheck },
  { group: "cni-shim", id: "iptables", run: iptablesCheck },
  { group: "node", id: "interfaces", run: interfacesCheck },
  { group: "node", id: "default-route", run: defaultRouteCheck },
  { group: "node", id: "hostname", run: hostnameCheck },
  { group: "node", id: "mac", run: macCheck },
  { group: "node", id: "product-uuid", run: productUuidCheck },
  { group: "ports", id: "ports", run: portChecks },
];

/** Every check, in order; a check that throws is reported as failed rather than stopping the rest. */
export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const results = await Promise.all(
    CHECKS.map(async (c) => {
      try {
        const r = await c.run(ctx);
        return Array.isArray(r) ? r : [r];
      } catch (err) {
        return [problem("fail", c.group, c.id, `the check itself failed: ${(err as Error).message}`, "report this as a bug in cni-shim doctor, with the message")];
      }
    }),
  );
  return results.flat();
}
