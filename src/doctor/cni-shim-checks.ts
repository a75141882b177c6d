// `cni-shim doctor`, cni-shim itself: the plugin answers on its socket, Docker answers (and what
// its version means: docker-engine.ts), the driver name reaches the plugin, the CNI plugins and
// network lists are usable, and the kernel and iptables do what the chains need.
import { access, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { confDirs, type Settings } from "../settings.js";
import { listConfFiles, type LoadedConfList } from "../cni/config.js";
import type { ConfList } from "../cni/schemas.js";
import { hostLocalRanges } from "../cni/host-local.js";
import { findPlugin } from "../cni/plugins.js";
import { VersionProbe, chooseVersion } from "../cni/version.js";
import { run } from "../util/command.js";
import { unixRequest } from "../util/http.js";
import { dockerEngineCheck } from "./docker-engine.js";
import { dockerVersion } from "../docker/engine.js";
import { AttachChoice } from "../driver/attach-choice.js";
import { dhcpDaemonFiles, dhcpSockets, probeDhcpSocket } from "../cni/dhcp.js";
import { StateStore } from "../driver/state.js";
import { pass, problem, readText, type Check, type CheckResult, type NamedCheck } from "./results.js";
import { cniPluginSetCheck } from "./cni-plugin-set.js";

const rootCheck: Check = () => {
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

/**
 * Which attach path new endpoints take on this engine (--attach, and what Joins showed), and why;
 * a warning when the serving cni-shim (a managed plugin too: the state dir is shared) said it
 * cannot open Docker's sandbox keys, or its Joins could not look for theirs, and what is missing.
 */
const attachCheck: Check = async ({ settings }) => {
  const version = await dockerVersion(settings.dockerSocket);
  const choice = new AttachChoice(settings.attach, settings.stateDir);
  const d = await choice.peek(version);
  const { opens, unseen } = await choice.sandboxKeys();
  const path = d.kind === "in-sandbox" ? "in the container's own namespace at Join (in-sandbox)" : "in a staging namespace at CreateEndpoint, the interface handed over (staging hand-out)";
  // Null IPAM: Docker needs the address in CreateEndpoint's reply, before any namespace exists.
  const nullIpam = d.kind === "in-sandbox" ? "; on --ipam-driver null networks host-local takes the address at CreateEndpoint and the chain runs at Join, other IPAMs (dhcp) take the staging hand-out" : "";
  const details = { ...d, sandboxKeys: opens?.how, unseenJoins: unseen };
  const keys = opens ? `; the serving cni-shim opens sandbox keys ${opens.how}` : "";
  if (unseen || (opens && !opens.open && d.kind === "in-sandbox")) {
    const what = unseen ? `${unseen.joins} Join(s) of the serving cni-shim could not look for the container's namespace (last ${unseen.at}: ${unseen.why}), so those endpoints, and new ones until a Join can, take the staging hand-out` : `the serving cni-shim cannot open Docker's sandbox keys (${opens!.how}), so its Joins will take the staging hand-out`;
    return problem("warn", "cni-shim", "attach", `${what}; otherwise new endpoints would run the chain ${path}: ${d.why}`, "a managed plugin: pidhost and CAP_SYS_PTRACE in its config (docker plugin install with this release's config), then docker plugin disable/enable; a plain cni-shim: run it as root in the host's mount namespace", details);
  }
  return pass("cni-shim", "attach", `new endpoints run the chain ${path}: ${d.why}${nullIpam}${keys}`, details);
};

const dockerCheck: Check = async ({ settings }) => {
  try {
    const res = await unixRequest(settings.dockerSocket, "GET", "/version", 5_000);
    if (res.status !== 200) throw new Error(`GET /version answered ${res.status}`);
    const v = JSON.parse(res.body) as { Version?: unknown; ApiVersion?: unknown } | null;
    return dockerEngineCheck(v?.Version, v?.ApiVersion, settings.dockerSocket);
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

/** What doctor says of such a list when cni-shim accepts its networks' forwarding (the default). */
const forwardAcceptedNote =
  "it has no firewall plugin and this host's FORWARD policy is DROP (dockerd sets it), so cni-shim accepts the forwarding of its networks' subnets in iptables chain CNI-SHIM-FORWARD (--accept-forwarding true), as Docker's bridge driver does for its networks";

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
    const version = chooseVersion(list, supported);
    const summary = `${list.name}: ${Object.keys(plugins).join(", ")} found and speak cniVersion ${version}`;
    const dropped = forwardDropProblem(list, forwardPolicy);
    if (dropped && settings.acceptForwarding) {
      return pass("cni-shim", id, `${summary}; ${forwardAcceptedNote}`, { ...details, chosenVersion: version, forwardPolicy, acceptForwarding: true });
    }
    if (dropped) {
      const subnet = hostLocalRanges(list)?.[0]?.subnet ?? "<its subnet>";
      return problem(
        "warn",
        "cni-shim",
        id,
        `${summary}, but ${dropped}, and --accept-forwarding is false (cni-shim does not accept it)`,
        `add {"type": "firewall"} at the end of its plugins (as cni-shim's profiles do), or accept its traffic: iptables -I DOCKER-USER -s ${subnet} -j ACCEPT; iptables -I DOCKER-USER -d ${subnet} -j ACCEPT, or serve with --accept-forwarding true`,
        { ...details, chosenVersion: version, forwardPolicy, acceptForwarding: false },
      );
    }
    return pass("cni-shim", id, summary, { ...details, chosenVersion: version });
  } catch (err) {
    return problem("fail", "cni-shim", id, `${list.name} (${loaded.source}): ${(err as Error).message}`, `set "cniVersion" (or "cniVersions") in ${loaded.source} to a version all its plugins list, or install newer plugins`, details);
  }
}

/**
 * Lists whose IPAM is dhcp need the dhcp daemon: one check per socket they use, failing for a
 * socket a created network uses, warning for one only a conf-dir list does (serve starts the
 * daemon when such a network is created). Nothing when no list uses dhcp.
 */
const dhcpDaemonCheck: Check = async ({ settings }) => {
  const users = new Map<string, { lists: Set<string>; networks: number }>();
  const use = (socket: string) => users.get(socket) ?? users.set(socket, { lists: new Set(), networks: 0 }).get(socket)!;
  for (const entry of await listConfFiles(confDirs(settings))) {
    if (entry.loaded) for (const socket of dhcpSockets(entry.loaded.conflist)) use(socket).lists.add(entry.loaded.conflist.name);
  }
  const networks = await new StateStore(settings.stateDir).listNetworks().catch(() => []);
  for (const net of networks) {
    for (const socket of dhcpSockets(net.conflist)) {
      use(socket).lists.add(net.conflist.name);
      use(socket).networks++;
    }
  }
  const out: CheckResult[] = [];
  for (const [socket, { lists, networks: n }] of users) {
    const state = await probeDhcpSocket(socket);
    const who = `${[...lists].join(", ")} (${n ? `${n} network(s)` : "no network yet"})`;
    const details = { socket, lists: [...lists], networks: n, log: dhcpDaemonFiles(settings.stateDir, socket).log };
    if (state === "answers") {
      out.push(pass("cni-shim", "dhcp-daemon", `the dhcp daemon answers on ${socket}, for ${who}`, details));
      continue;
    }
    const what = state === "stale" ? `${socket} is a stale socket: no dhcp daemon listens on it` : `no dhcp daemon socket at ${socket}`;
    out.push(
      problem(
        n ? "fail" : "warn",
        "cni-shim",
        "dhcp-daemon",
        `${what}; ${who} use the dhcp IPAM, whose ADD cannot work without it`,
        `cni-shim serve starts it when such a network is created and when serve starts; or start it yourself: systemctl enable --now cni-dhcp.socket (Debian), or setsid /usr/lib/cni/dhcp daemon${socket === "/run/cni/dhcp.sock" ? "" : ` -socketpath ${socket}`} &`,
        details,
      ),
    );
  }
  return out;
};

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
export const CNI_SHIM_CHECKS: NamedCheck[] = [
  { group: "cni-shim", id: "root", run: rootCheck },
  { group: "cni-shim", id: "plugin-socket", run: socketCheck },
  { group: "cni-shim", id: "docker", run: dockerCheck },
  { group: "cni-shim", id: "attach", run: attachCheck },
  { group: "cni-shim", id: "driver-name", run: driverNameCheck },
  { group: "cni-shim", id: "cni-path", run: cniPathCheck },
  { group: "cni-shim", id: "cni-plugins", run: cniPluginSetCheck },
  { group: "cni-shim", id: "conf-dir", run: confDirCheck },
  { group: "cni-shim", id: "conflist", run: conflistChecks },
  { group: "cni-shim", id: "dhcp-daemon", run: dhcpDaemonCheck },
  { group: "cni-shim", id: "ip-forward", run: ipForwardCheck },
  { group: "cni-shim", id: "br-netfilter", run: brNetfilterCheck },
  { group: "cni-shim", id: "iptables", run: iptablesCheck },
];
