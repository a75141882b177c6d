import { settingsHelp, type SettingFlag } from "../../settings.js";
import { DEFAULT_ROLE, NODEPORT_RANGE, ROLE_PORTS, ROLES, runChecks, type Role } from "../../doctor/checks.js";
import { buildReport, renderJson, renderTable } from "../../doctor/render.js";
import { parseCommandLine } from "../argv.js";
import { UsageError, type Command } from "../command.js";

/** The settings doctor reads; the others are accepted (same command line as serve) and ignored. */
const USED: SettingFlag[] = ["--socket", "--conf-dir", "--cni-path", "--exec-timeout-ms", "--docker-socket"];

const ports = (role: Role) => ROLE_PORTS[role].map((p) => `${p.port} (${p.component})`).join(", ");

export const doctor: Command = {
  name: "doctor",
  summary: "check this host for cni-shim and as a Kubernetes node: pass/warn/fail with what to do",
  help: `Usage: cni-shim doctor [--role control-plane|worker] [--json] [options]

Checks this host and prints a table of pass, warn and fail, with a "fix:" line saying what to
do for each warning and failure. Changes nothing. Run it as root (some checks need it).

cni-shim:
  root             running as root
  plugin-socket    something answers Plugin.Activate on --socket (when that socket does not
                   exist, a managed plugin's /run/docker/plugins/<id>/<same name> counts)
  docker           the Docker API answers on --docker-socket; its version and API version,
                   and what they mean: 20.10 to 27 create the container's namespace after
                   Join (the chain runs in a staging namespace, the interface is handed over),
                   28 and later before it (the chain can run in it); older than 20.10 warns
                   (not tested)
  attach           which path new endpoints take on this engine (--attach, and what its Joins
                   showed): in the container's namespace at Join, or the staging hand-out
  driver-name      which plugin "-d NAME" reaches (NAME: the socket's file name); warns when
                   a managed plugin NAME:latest exists next to the socket, because Docker then
                   resolves -d NAME to the managed plugin and the socket's plugin is unusable
  cni-path         the --cni-path directories hold CNI plugins (and "loopback")
  cni-plugins      the plugin set in use (which directory each plugin comes from) and the
                   CNI versions each speaks (VERSION, 5 s timeout each)
  conf-dir         every config file in --conf-dir parses (a missing dir is fine)
  conflist-NAME    for each network list in --conf-dir and the embedded ones: every plugin is
                   in --cni-path, answers VERSION, and all speak one of its cniVersion(s)
  network-status   for each created network whose list is at CNI 1.1.0 or later: STATUS of its
                   plugins (fails when a plugin says the network is not ready for ADDs)
  swarm            on an active swarm node (Docker's Swarm.LocalNodeState): a managed plugin
                   named like --socket is enabled, so swarm networks can use it (-d NAME:TAG,
                   the same on every node); warns when only the plain socket plugin is there
                   (swarm accepts managed plugins only), fails when it is disabled or a swarm
                   network's driver is not enabled here
  dhcp-daemon      for the lists (in --conf-dir, and of created networks) whose IPAM is dhcp:
                   its daemon answers on the socket they use (fails for a created network)
  ip-forward       net.ipv4.ip_forward = 1
  br-netfilter     br_netfilter loaded and net.bridge.bridge-nf-call-iptables = 1
  iptables         iptables runs; its backend (nft or legacy), and a warning when the other
                   backend holds rules too

cluster node (the Kubernetes requirements for every node):
  interfaces       an interface with an address other than loopback/link-local
  default-route    a default route (kubeadm and the kubelet take the node address from it)
  hostname         a valid node name (not localhost)
  mac              the interfaces' MAC addresses
  product-uuid     /sys/class/dmi/id/product_uuid (warns when missing) and /etc/machine-id
  Hostname, MAC and product_uuid must differ between nodes: doctor shows them, but cannot
  compare them with other hosts from here.

ports (TCP listeners of the current network namespace, from /proc/net/tcp and tcp6):
  port-N           each port the role needs is free, or held by the component that needs it
                   (found through /proc/<pid>/fd); anything else listening there fails,
                   naming the process when it is visible
  nodeport-range   worker only: listeners in the NodePort range ${NODEPORT_RANGE[0]}-${NODEPORT_RANGE[1]} other than kube-proxy (warn)

Roles:
  worker           ${ports("worker")}, NodePort range ${NODEPORT_RANGE[0]}-${NODEPORT_RANGE[1]} (the default: every node,
                   control plane included, runs a kubelet)
  control-plane    ${ports("control-plane")}

Options:
  --role ROLE            control-plane or worker (default ${DEFAULT_ROLE})
  --json                 print {role, ok, counts, checks: [{id, group, status, summary, fix,
                         details}]} instead of the table
${settingsHelp(USED)}
  The other settings of "cni-shim serve" are accepted and ignored, so the same flags and
  environment work for both.

To check a network namespace, run doctor inside it: ip netns exec NS cni-shim doctor

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 on a usage error.`,
  async run(argv) {
    const { settings, values } = parseCommandLine(argv, { role: { type: "string" }, json: { type: "boolean" } });
    const role = (values.role ?? DEFAULT_ROLE) as Role;
    if (!ROLES.includes(role)) throw new UsageError(`--role must be ${ROLES.join(" or ")}, not "${values.role}"`);
    const report = buildReport(role, await runChecks({ settings, role }));
    process.stdout.write(values.json ? renderJson(report) : renderTable(report, process.stdout.columns || 100));
    return report.ok ? 0 : 1;
  },
};
