// `cni-shim doctor`, the cluster node: what Kubernetes requires of every node
// (https://kubernetes.io/docs/setup/production-environment/tools/kubeadm/install-kubeadm/):
// an address, a default route, a valid node name, and MAC and product_uuid shown (they must
// differ between nodes, which one host cannot check).
import { access, readdir } from "node:fs/promises";
import { networkInterfaces, hostname as osHostname } from "node:os";
import { join } from "node:path";
import { pass, problem, readText, type Check, type NamedCheck } from "./results.js";

const NOT_UNIQUE_HERE = "uniqueness across nodes cannot be checked from one host: compare with the other nodes";

const interfacesCheck: Check = () => {
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

const hostnameCheck: Check = () => {
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
export const NODE_CHECKS: NamedCheck[] = [
  { group: "node", id: "interfaces", run: interfacesCheck },
  { group: "node", id: "default-route", run: defaultRouteCheck },
  { group: "node", id: "hostname", run: hostnameCheck },
  { group: "node", id: "mac", run: macCheck },
  { group: "node", id: "product-uuid", run: productUuidCheck },
];
