import { settingsHelp } from "../../settings.js";
import { buildAttacher } from "../../compose.js";
import { parsePublish } from "../../attach/publish.js";
import { parseCommandLine } from "../argv.js";
import { UsageError, type Command } from "../command.js";

export const attach: Command = {
  name: "attach",
  summary: "apply a CNI network list straight into a --network none container (the kubelet way)",
  help: `Usage: cni-shim attach CONTAINER [--network CONFLIST] [-p [hostIP:]hostPort:containerPort[/proto]]...

Runs the loopback plugin and then the CNI network list CONFLIST (default: the embedded
cni-shim-default) in the container's namespace (/proc/<pid>/ns/net) as eth0, with
K8S_POD_NAMESPACE=docker, K8S_POD_NAME=<container name>, K8S_POD_INFRA_CONTAINER_ID=<id>,
the way the Docker-era kubelet did. The container must run on --network none.
Prints the CNI result. Undo with "cni-shim detach CONTAINER"; "cni-shim gc" removes
attachments of containers that are gone.

Options:
  --network NAME         conflist name in the conf dir (or embedded)
  -p, --publish SPEC     publish a port through the portmap plugin (repeatable)
${settingsHelp()}`,
  async run(argv) {
    const { settings, values, positionals } = parseCommandLine(argv, { network: { type: "string" }, publish: { type: "string", short: "p", multiple: true } }, { positionals: true });
    if (positionals.length !== 1) throw new UsageError("attach takes exactly one CONTAINER (name or id)");
    const ports = (values.publish ?? []).map(parsePublish);
    const rec = await buildAttacher(settings).attach(positionals[0]!, { network: values.network, portMappings: ports });
    process.stdout.write(JSON.stringify(rec.result, null, 2) + "\n");
    return 0;
  },
};

export const detach: Command = {
  name: "detach",
  summary: "undo attach: CNI DEL of a container's attachments",
  help: `Usage: cni-shim detach CONTAINER [--network CONFLIST]

Runs CNI DEL (reverse order, cached result, same CNI_ARGS and port mappings as the ADD) for
the container's attachments, also when the container is already gone.

Options:
  --network NAME         only this conflist's attachment
${settingsHelp()}`,
  async run(argv) {
    const { settings, values, positionals } = parseCommandLine(argv, { network: { type: "string" } }, { positionals: true });
    if (positionals.length !== 1) throw new UsageError("detach takes exactly one CONTAINER (name or id)");
    const removed = await buildAttacher(settings).detach(positionals[0]!, values.network);
    for (const r of removed) process.stdout.write(`detached ${r.containerName} from ${r.network}\n`);
    return 0;
  },
};
