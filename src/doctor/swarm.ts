// `cni-shim doctor`, swarm: on a swarm node, whether swarm networks can use cni-shim here. Swarm
// backs its networks with managed (v2) plugins only (a socket plugin is "not supported in swarm
// mode") and places a task only on nodes where the network's driver, by its full name:tag, is
// an enabled plugin.
import { basename } from "node:path";
import { stat } from "node:fs/promises";
import { unixRequest } from "../util/http.js";
import { pass, problem, type Check, type CheckResult, type NamedCheck } from "./results.js";

export interface SwarmFacts {
  /** Docker's /info Swarm.LocalNodeState ("inactive", "active", "pending", "error", "locked"). */
  nodeState: string;
  /** Docker's managed plugins (GET /plugins). */
  plugins: Array<{ Name: string; Enabled: boolean; Config?: { Interface?: { Types?: string[] } } }>;
  /** The swarm-scoped networks this node sees, with their driver. */
  swarmNetworks: Array<{ Name: string; Driver: string }>;
  /** The driver name cni-shim serves under (the socket's file name). */
  name: string;
  /** The plain plugin's socket, when it exists. */
  socket?: string;
}

const isNetworkDriver = (p: SwarmFacts["plugins"][number]) => p.Config?.Interface?.Types?.some((t) => t.startsWith("docker.networkdriver/")) ?? false;
/** "cni-shim:latest", "reg:5000/cni-shim:0.9": the plugins that are cni-shim by name. */
const namedLike = (plugin: string, name: string) => new RegExp(`(^|/)${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(:[^/]*)?$`).test(plugin);

const INSTALL = (name: string) =>
  `install the managed plugin on every node under one name: docker plugin install --grant-all-permissions --alias ${name} REGISTRY/${name}:TAG (README, "Swarm"), then use -d ${name}:latest`;

/** The check's verdict from what Docker said (pure). */
export function swarmVerdict(f: SwarmFacts): CheckResult {
  const details: Record<string, unknown> = { nodeState: f.nodeState };
  if (f.nodeState !== "active") return pass("cni-shim", "swarm", `not an active swarm node (Swarm.LocalNodeState ${f.nodeState || "unknown"}): nothing to check`, details);
  const ours = f.plugins.filter((p) => isNetworkDriver(p) && namedLike(p.Name, f.name));
  const enabled = ours.filter((p) => p.Enabled).map((p) => p.Name);
  Object.assign(details, { managedPlugins: ours.map((p) => ({ name: p.Name, enabled: p.Enabled })), socket: f.socket });
  const missing = f.swarmNetworks.filter((n) => namedLike(n.Driver, f.name) && !enabled.includes(n.Driver));
  if (missing.length) {
    const list = missing.map((n) => `${n.Name} (-d ${n.Driver})`).join(", ");
    const disabled = [...new Set(missing.map((n) => n.Driver))].filter((d) => ours.some((p) => p.Name === d));
    const fix = disabled.length ? `docker plugin enable ${disabled.join(" && docker plugin enable ")}` : INSTALL(f.name);
    return problem("fail", "cni-shim", "swarm", `swarm network(s) ${list} use a driver that is not an enabled managed plugin here: swarm places none of their tasks on this node`, fix, details);
  }
  if (enabled.length) {
    return pass("cni-shim", "swarm", `swarm node; managed plugin ${enabled.join(", ")} enabled: swarm networks can use -d ${enabled[0]} (every node must have it enabled under the same name)`, details);
  }
  if (ours.length) {
    return problem("fail", "cni-shim", "swarm", `swarm node; managed plugin ${ours.map((p) => p.Name).join(", ")} is disabled: swarm places no task of its networks on this node`, `docker plugin enable ${ours[0]!.Name}`, details);
  }
  const plain = f.socket ? `only the plain plugin on ${f.socket}, which` : "no managed cni-shim plugin; a plain one";
  return problem("warn", "cni-shim", "swarm", `swarm node with ${plain} serves local networks only: swarm accepts only managed plugins for its networks ("legacy plugin ... is not supported in swarm mode")`, INSTALL(f.name), details);
}

async function getJson(socket: string, path: string): Promise<unknown> {
  const res = await unixRequest(socket, "GET", path, 5_000);
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
  return JSON.parse(res.body);
}

const swarmCheck: Check = async ({ settings }) => {
  const name = basename(settings.socket).replace(/\.(sock|spec|json)$/, "");
  let info: { Swarm?: { LocalNodeState?: string } };
  try {
    info = (await getJson(settings.dockerSocket, "/info")) as typeof info;
  } catch (err) {
    return problem("warn", "cni-shim", "swarm", `cannot ask Docker whether this is a swarm node: ${(err as Error).message}`, "see the docker check");
  }
  const nodeState = info.Swarm?.LocalNodeState ?? "";
  if (nodeState !== "active") return swarmVerdict({ nodeState, plugins: [], swarmNetworks: [], name });
  const filter = encodeURIComponent(JSON.stringify({ scope: { swarm: true } }));
  const [plugins, networks] = await Promise.all([getJson(settings.dockerSocket, "/plugins"), getJson(settings.dockerSocket, `/networks?filters=${filter}`)]);
  const socket = await stat(settings.socket).then((s) => (s.isSocket() ? settings.socket : undefined), () => undefined);
  return swarmVerdict({ nodeState, plugins: plugins as SwarmFacts["plugins"], swarmNetworks: networks as SwarmFacts["swarmNetworks"], name, socket });
};

export const SWARM_CHECKS: NamedCheck[] = [{ group: "cni-shim", id: "swarm", run: swarmCheck }];
