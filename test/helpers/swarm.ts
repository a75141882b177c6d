// The 3-node swarm of scripts/swarm.sh as the swarm e2e sees it: `swarm.sh with` (make test-swarm)
// sets CNI_SHIM_SWARM_* for the test process, which runs on the host; each node's dockerd answers
// on a host-visible socket, and commands that need a node's namespaces go through `swarm.sh run`.
import { execa } from "execa";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { DOCKER_CLI, waitFor } from "./e2e.js";

export interface SwarmNode {
  n: number;
  /** Its hostname, the swarm node's name. */
  name: string;
  /** eth0's address on the switch. */
  addr: string;
  dockerHost: string;
  /** Host dirs bound over the node's /var/lib/cni-shim, /var/lib/cni and /etc/cni/net.d. */
  state: string;
  cache: string;
  conf: string;
}

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the swarm e2e through make test-swarm (scripts/swarm.sh with -- ...)`);
  return v;
}

export const HARNESS = need("CNI_SHIM_SWARM_HARNESS");
const DATA = need("CNI_SHIM_SWARM_DATA");
/** The test image, in the swarm's registry (every node pulls it from there). */
export const SWARM_IMAGE = need("CNI_SHIM_TEST_IMAGE");

function swarmNode(n: number): SwarmNode {
  const [name = "", addr = "", dockerHost = ""] = need(`CNI_SHIM_SWARM_NODE${n}`).split(" ");
  const dir = join(DATA, `n${n}`);
  return { n, name, addr, dockerHost, state: join(dir, "cni-shim"), cache: join(dir, "cni"), conf: join(dir, "cni-conf") };
}

/** Node 1 (the manager), 2 and 3 (workers). */
export const NODES: [SwarmNode, SwarmNode, SwarmNode] = [swarmNode(1), swarmNode(2), swarmNode(3)];
export const MANAGER = NODES[0];

export interface Run {
  stdout: string;
  stderr: string;
  failed: boolean;
  exitCode: number;
}

/** The docker CLI against one node; throws with its output unless reject is false. */
export async function dockerOn(node: SwarmNode, args: string[], opts: { reject?: boolean; timeoutMs?: number } = {}): Promise<Run> {
  const res = await execa(DOCKER_CLI, args, { env: { DOCKER_HOST: node.dockerHost }, reject: false, timeout: opts.timeoutMs ?? 120_000, killSignal: "SIGKILL" });
  const out = { stdout: String(res.stdout).trim(), stderr: String(res.stderr).trim(), failed: res.failed, exitCode: res.exitCode ?? -1 };
  if (res.failed && opts.reject !== false) throw new Error(`[${node.name}] docker ${args.join(" ")} failed (${out.exitCode}): ${out.stderr || out.stdout}`);
  return out;
}

/** A command in the node's namespaces (its network, /run, hostname). */
export async function inNode(node: SwarmNode, cmd: string[], opts: { reject?: boolean } = {}): Promise<Run> {
  const res = await execa("bash", [HARNESS, "run", String(node.n), "--", ...cmd], { reject: false, timeout: 60_000, killSignal: "SIGKILL" });
  const out = { stdout: String(res.stdout).trim(), stderr: String(res.stderr).trim(), failed: res.failed, exitCode: res.exitCode ?? -1 };
  if (res.failed && opts.reject !== false) throw new Error(`[${node.name}] ${cmd.join(" ")} failed (${out.exitCode}): ${out.stderr || out.stdout}`);
  return out;
}

/** swarm.sh kill N / start N: a node's dockerd killed -9, then started again. */
export const harness = (args: string[]) => execa("bash", [HARNESS, ...args], { timeout: 180_000 });

export interface Task {
  node: SwarmNode;
  container: string;
}

/** The service's running task containers, found on each node by swarm's label. */
export async function taskContainers(service: string): Promise<Task[]> {
  const per = await Promise.all(
    NODES.map(async (node) => {
      const ids = (await dockerOn(node, ["ps", "-q", "--filter", `label=com.docker.swarm.service.name=${service}`])).stdout;
      return ids ? ids.split("\n").map((container) => ({ node, container })) : [];
    }),
  );
  return per.flat();
}

/** The tasks' states as the manager lists them (what a failure message shows). */
export async function servicePs(service: string): Promise<string> {
  const res = await dockerOn(MANAGER, ["service", "ps", "--no-trunc", "--format", "{{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}", service], { reject: false });
  return res.stdout || res.stderr;
}

/** Waits until `count` of the service's tasks are running; the time it took, in seconds. */
export async function waitRunning(service: string, count: number, timeoutMs = 90_000): Promise<number> {
  const t0 = performance.now();
  await waitFor(
    `${count} running task(s) of ${service}`,
    async () => {
      const res = await dockerOn(MANAGER, ["service", "ps", "--filter", "desired-state=running", "--format", "{{.CurrentState}}", service], { reject: false });
      const running = res.stdout.split("\n").filter((l) => l.startsWith("Running")).length;
      return running === count ? true : undefined;
    },
    timeoutMs,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await servicePs(service)}`, { cause: err });
  });
  return (performance.now() - t0) / 1000;
}

/** The task's address on the network. */
export async function taskAddress(task: Task, network: string): Promise<string> {
  return (await dockerOn(task.node, ["inspect", "--format", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, task.container])).stdout;
}

/** Files below a dir, relative (none when it does not exist). */
async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/**
 * What a node holds that a network's tasks could leak: cni-shim's records, CNI's cache and
 * host-local reservations, the node's links and network namespaces, and its iptables rules.
 */
export async function nodeSnapshot(node: SwarmNode): Promise<string[]> {
  // Not the ports of docker_gwbridge: Docker's ingress sandbox, node infrastructure that comes
  // with a node's first task or a restart and stays, is on it (cni-shim puts nothing there).
  const links = (await inNode(node, ["ip", "-o", "link", "show"])).stdout.split("\n").filter((l) => !l.includes(" master docker_gwbridge ")).map((l) => `link ${l.split(/:\s+/)[1]?.split("@")[0] ?? l}`);
  const netns = (await inNode(node, ["ls", "/run/netns"])).stdout.split(/\s+/).filter(Boolean).map((n) => `netns ${n}`);
  // The global chains of the firewall plugin (CNI-FORWARD, CNI-ADMIN) and of portmap
  // (CNI-HOSTPORT-*), with their fixed rules and jumps, stay by design, as on any host
  // (scripts/soak/leaks.ts): the rules in them for an address or a port are counted.
  const global = (l: string) =>
    /^:CNI-(FORWARD|ADMIN|HOSTPORT-DNAT|HOSTPORT-MASQ|HOSTPORT-SETMARK) /.test(l) ||
    /"CNI firewall plugin (rules|admin overrides)"/.test(l) ||
    /^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-(DNAT|MASQ)$/.test(l) ||
    /^-A CNI-HOSTPORT-(MASQ|SETMARK) /.test(l);
  const rules = (await inNode(node, ["iptables-save"])).stdout.split("\n").filter((l) => /^[-:]/.test(l) && !global(l)).map((l) => `iptables ${l.replace(/ \[\d+:\d+\]$/, "")}`);
  const state = (await files(node.state)).map((f) => `state ${f}`);
  const cache = (await files(node.cache)).map((f) => `cni ${f}`);
  return [...links, ...netns, ...rules, ...state, ...cache].sort();
}

/** What is in `after` and not in `before`, per node (empty when nothing leaked). */
export function leaked(before: string[], after: string[]): string[] {
  const had = new Set(before);
  return after.filter((x) => !had.has(x));
}
