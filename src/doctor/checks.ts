// `cni-shim doctor`: every check, in the order they are reported, and running them. Each check is
// a small (mostly async) function that looks at one thing on this host and says pass, warn or fail, with
// what to do about a problem; nothing here changes the host. The checks live by what they look at:
//   cni-shim-checks.ts   cni-shim itself (plugin socket, Docker, CNI plugins and lists, kernel)
//   network-status.ts    STATUS of the created networks' lists
//   swarm.ts             on a swarm node: the managed plugin swarm networks need
//   node-checks.ts       what Kubernetes requires of every node
//   kubernetes-ports.ts  the TCP ports a node's role needs
import { CNI_SHIM_CHECKS } from "./cni-shim-checks.js";
import { NODE_CHECKS } from "./node-checks.js";
import { KUBERNETES_PORT_CHECKS } from "./kubernetes-ports.js";
import { NETWORK_STATUS_CHECKS } from "./network-status.js";
import { SWARM_CHECKS } from "./swarm.js";
import { problem, type CheckResult, type DoctorContext, type NamedCheck } from "./results.js";

// What the command and render.ts use, from one module.
export { DEFAULT_ROLE, ROLES, type CheckResult, type DoctorContext, type Group, type Role, type Status } from "./results.js";
export { NODEPORT_RANGE, ROLE_PORTS } from "./kubernetes-ports.js";

const CHECKS: NamedCheck[] = [...CNI_SHIM_CHECKS, ...NETWORK_STATUS_CHECKS, ...SWARM_CHECKS, ...NODE_CHECKS, ...KUBERNETES_PORT_CHECKS];

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
