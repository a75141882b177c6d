import { settingsHelp, type Settings } from "../../settings.js";
import { StateStore, type EndpointRecord, type NetworkRecord } from "../../driver/state.js";
import { buildRuntime } from "../../compose.js";
import { checkEndpoint, type EndpointCheck } from "../../driver/endpoint-check.js";
import { linkNameByMac } from "../../host/link-by-mac.js";
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

/** CHECK of each endpoint's chain where its interface is now, one after another. */
async function checkAll(settings: Settings, eps: EndpointRecord[], nets: NetworkRecord[]): Promise<Map<string, EndpointCheck>> {
  const cni = buildRuntime(settings);
  const out = new Map<string, EndpointCheck>();
  for (const e of eps) {
    const net = nets.find((n) => n.id === e.networkId);
    out.set(e.id, net ? await checkEndpoint({ cni, linkByMac: linkNameByMac }, e, net) : { endpoint: e.id, status: "failed", message: "its network has no record" });
  }
  return out;
}

const checkText = (c: EndpointCheck | undefined) => (!c ? "" : c.status === "ok" ? "ok" : `${c.status === "failed" ? "FAILED" : "skipped"}: ${c.message}`);

export const endpoints: Command = {
  name: "endpoints",
  summary: "list cni-shim's endpoints: container, network, address, MAC and published host ports",
  help: `Usage: cni-shim endpoints [--json] [--check] [options]

Lists the endpoints cni-shim manages, with the host ports it published through portmap (Docker
cannot show them: "docker port" is empty for remote drivers), the CNI container id (= Docker's
EndpointID) and the container and network names Docker has for them.

With --check, runs each endpoint's chain CHECK (CNI 0.4.0 and later) with its cached result,
in the container's namespace, and prints ok or the plugin's complaint (an address removed, a
flushed port-forwarding rule); exits 1 when any endpoint fails it. Endpoints not in a container,
lists with disableCheck or below 0.4.0 are skipped, with why.

Options:
  --json                 machine-readable output
  --check                run each endpoint's CNI CHECK; exit 1 on any failure
${settingsHelp()}`,
  async run(argv) {
    const { settings, values } = parseCommandLine(argv, { json: { type: "boolean" }, check: { type: "boolean" } });
    const state = new StateStore(settings.stateDir);
    const eps = await state.listEndpoints();
    const nets = await state.listNetworks();
    const names = await dockerNames(settings.dockerSocket, nets.map((n) => n.id));
    const checks = values.check ? await checkAll(settings, eps, nets) : undefined;
    const code = [...(checks?.values() ?? [])].some((c) => c.status === "failed") ? 1 : 0;
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
      ...(checks ? { check: { status: checks.get(e.id)!.status, message: checks.get(e.id)!.message } } : {}),
    }));
    if (values.json) {
      process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
      return code;
    }
    const head = ["ENDPOINT", "CONTAINER", "NETWORK", "CNI NETWORK", "ADDRESS", "MAC", "PORTS", ...(checks ? ["CHECK"] : [])];
    const table = [head, ...rows.map((r) => [r.endpoint.slice(0, 12), r.container, r.network, r.cniNetwork, [r.address, r.addressIPv6].filter(Boolean).join(","), r.mac, r.ports.join(", "), ...(checks ? [checkText(checks.get(r.endpoint))] : [])])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table) process.stdout.write(row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n");
    return code;
  },
};
