// Leak checks limited to what one test created (its CNI networks, bridges, subnets, container
// ids, host ports, temp dirs), so that other tests running on the host at the same time cannot
// make them fail. Everything listed is a leftover: after cleanup every list must be empty.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { docker, sh } from "./e2e.js";

export interface Scope {
  /** CNI network names (host-local stores under /var/lib/cni/networks). */
  networks?: string[];
  bridges?: string[];
  /** e.g. "10.251.7." : any iptables rule mentioning it is a leftover. */
  addressPrefixes?: string[];
  /** Container / endpoint ids (full): netns names, rule comments. */
  ids?: string[];
  hostPorts?: number[];
  cacheDir?: string;
  stateDir?: string;
  /** Docker containers and networks carrying this label (key or key=value). */
  dockerLabel?: string;
  /** Files that must be gone. */
  paths?: string[];
}

async function list(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch {
    return undefined;
  }
}

export async function scopedLeftovers(scope: Scope): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const add = (k: string, items: string[]) => {
    if (items.length) out[k] = [...(out[k] ?? []), ...items];
  };
  for (const n of scope.networks ?? []) {
    const files = await list(join("/var/lib/cni/networks", n));
    if (files) add("hostLocal", [`${n}/ (${files.join(", ") || "empty"})`]);
  }
  for (const b of scope.bridges ?? []) {
    const res = await sh("ip", ["-j", "link", "show", "master", b], { reject: false });
    if (!res.failed) add("bridges", [`${b} (ports: ${(JSON.parse(res.stdout || "[]") as Array<{ ifname: string }>).map((l) => l.ifname).join(", ") || "none"})`]);
  }
  const short = (scope.ids ?? []).map((id) => id.slice(0, 11));
  const netns = (await sh("ip", ["netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);
  add("netns", netns.filter((n) => short.some((s) => n.includes(s))));
  const rules = (await sh("iptables-save", [])).stdout.split("\n").filter((l) => l.startsWith("-A ") || l.startsWith(":"));
  const ports = (scope.hostPorts ?? []).map((p) => new RegExp(`--dports? (\\S*,)?${p}(?=[,:\\s]|$)`));
  add(
    "iptables",
    rules.filter((l) => (scope.addressPrefixes ?? []).some((p) => l.includes(` ${p}`)) || (scope.ids ?? []).some((id) => l.includes(id)) || ports.some((re) => re.test(l))),
  );
  if (scope.cacheDir) add("cacheFiles", (await list(join(scope.cacheDir, "results"))) ?? []);
  if (scope.stateDir) {
    for (const kind of ["attachments", "endpoints", "networks"]) add(`state/${kind}`, ((await list(join(scope.stateDir, kind))) ?? []).filter((f) => !f.startsWith(".")));
  }
  if (scope.dockerLabel) {
    add("containers", (await docker(["ps", "-a", "--filter", `label=${scope.dockerLabel}`, "--format", "{{.Names}}"])).stdout.split("\n").filter(Boolean));
    add("dockerNetworks", (await docker(["network", "ls", "--filter", `label=${scope.dockerLabel}`, "--format", "{{.Name}}"])).stdout.split("\n").filter(Boolean));
  }
  for (const p of scope.paths ?? []) {
    if ((await sh("test", ["-e", p], { reject: false })).exitCode === 0) add("paths", [p]);
  }
  return out;
}

/** X in `${prefix}.X.0/24` that no host route and no Docker network uses. */
export async function freeOctet(prefix: string, seed: number): Promise<number> {
  const routes = (await sh("ip", ["-4", "route", "show", "table", "all"])).stdout;
  const nets = (await docker(["network", "ls", "-q"])).stdout.split("\n").filter(Boolean);
  const pools = nets.length ? (await docker(["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...nets])).stdout : "";
  for (let i = 0; i < 250; i++) {
    const x = 1 + ((seed + i) % 250);
    if (!routes.includes(`${prefix}.${x}.`) && !pools.includes(`${prefix}.${x}.`) && !routes.includes(`${prefix}.0.0/16`)) return x;
  }
  throw new Error(`no free /24 in ${prefix}.0.0/16`);
}
