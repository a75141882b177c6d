import { settingsHelp } from "../../settings.js";
import { StateStore } from "../../driver/state.js";
import { dockerClient } from "../../docker/client.js";
import { inspectNetwork } from "../../docker/inspect.js";
import { parseCommandLine } from "../argv.js";
import type { Command } from "../command.js";

/** Docker's names for networks and the containers behind endpoints; best effort, with a timeout. */
async function dockerNames(socket: string, networkIds: string[]) {
  const docker = dockerClient(socket, 5_000);
  const networks = new Map<string, string>();
  const containers = new Map<string, string>();
  for (const id of networkIds) {
    try {
      const info = await inspectNetwork(docker, id);
      networks.set(id, info.Name);
      for (const c of Object.values(info.Containers ?? {})) containers.set(c.EndpointID, c.Name);
    } catch {
      /* Docker down or network gone: show ids only */
    }
  }
  return { networks, containers };
}

export const endpoints: Command = {
  name: "endpoints",
  summary: "list cni-shim's endpoints: container, network, address, MAC and published host ports",
  help: `Usage: cni-shim endpoints [--json] [options]

Lists the endpoints cni-shim manages, with the host ports it published through portmap (Docker
cannot show them: "docker port" is empty for remote drivers), the CNI container id (= Docker's
EndpointID) and the container and network names Docker has for them.

Options:
  --json                 machine-readable output
${settingsHelp()}`,
  async run(argv) {
    const { settings, values } = parseCommandLine(argv, { json: { type: "boolean" } });
    const state = new StateStore(settings.stateDir);
    const eps = await state.listEndpoints();
    const nets = await state.listNetworks();
    const names = await dockerNames(settings.dockerSocket, nets.map((n) => n.id));
    const rows = eps.map((e) => ({
      endpoint: e.id,
      container: names.containers.get(e.id) ?? "",
      network: names.networks.get(e.networkId) ?? e.networkId.slice(0, 12),
      cniNetwork: nets.find((n) => n.id === e.networkId)?.conflist.name ?? "",
      phase: e.phase,
      address: e.address ?? "",
      addressIPv6: e.addressIPv6 ?? "",
      mac: e.macAddress ?? "",
      ports: e.portMappings.map((p) => `${p.hostIP ? `${p.hostIP}:` : ""}${p.hostPort}->${p.containerPort}/${p.protocol}`),
    }));
    if (values.json) {
      process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
      return 0;
    }
    const table = [["ENDPOINT", "CONTAINER", "NETWORK", "CNI NETWORK", "ADDRESS", "MAC", "PORTS"], ...rows.map((r) => [r.endpoint.slice(0, 12), r.container, r.network, r.cniNetwork, [r.address, r.addressIPv6].filter(Boolean).join(","), r.mac, r.ports.join(", ")])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table) process.stdout.write(row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n");
    return 0;
  },
};
