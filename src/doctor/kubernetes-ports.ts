// `cni-shim doctor`, the Kubernetes ports
// (https://kubernetes.io/docs/reference/networking/ports-and-protocols/): the TCP ports a node of
// a role needs are free, or held by the component that needs them. The listeners come from
// ports.ts (/proc/net/tcp of the current network namespace); judging them is pure.
import { basename } from "node:path";
import { listeningPorts, type Listener } from "./ports.js";
import { pass, problem, type CheckResult, type NamedCheck, type Role } from "./results.js";

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
const ROLE_CHECKS_NODEPORTS: Record<Role, boolean> = { "control-plane": false, worker: true };

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

export const KUBERNETES_PORT_CHECKS: NamedCheck[] = [{ group: "ports", id: "ports", run: async (ctx) => evaluatePorts(ctx.role, await listeningPorts(ctx.procRoot)) }];
