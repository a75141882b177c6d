// The soak's cni-shim networks: on Docker's IPAM (the embedded default list) or, with --ipam null,
// on a conflist of the soak's own in the plugin's conf dir.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Plugin } from "./plugin.js";
import { DOCKER, ipam, pick, rand } from "./settings.js";
import { must, sh } from "./shell.js";

/** The CNI network and bridge a soak network uses when they are not the embedded default's (null IPAM). */
export interface NetworkNames {
  cniName?: string;
  bridge?: string;
}

const networkNames = new Map<string, NetworkNames>();
const remember = (net: string, names: NetworkNames) => (networkNames.set(net, names), names);
/** What createNetwork made for the Docker network `net`. */
export const namesOf = (net: string): NetworkNames => networkNames.get(net) ?? {};

/** A /24 in 10.249.0.0/16 that no route and no Docker network uses. */
async function freeOctet(): Promise<number> {
  const ids = (await must(DOCKER, ["network", "ls", "-q"])).split("\n").filter(Boolean);
  const used = (await must("ip", ["-4", "route", "show", "table", "all"])) + (ids.length ? await must(DOCKER, ["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", ...ids]) : "");
  const octet = [...Array(250).keys()].map((i) => 1 + ((pick(250) + i) % 250)).find((x) => !used.includes(`10.249.${x}.`));
  if (octet === undefined) throw new Error("no free /24 in 10.249.0.0/16 for the null-IPAM network");
  return octet;
}

/** The null-IPAM network's list: the embedded default's chain with host-local on its own /24. */
function nullIpamList(names: Required<NetworkNames>, octet: number) {
  return {
    cniVersion: "1.0.0",
    name: names.cniName,
    plugins: [
      { type: "bridge", bridge: names.bridge, isGateway: true, ipMasq: true, hairpinMode: true, ipam: { type: "host-local", ranges: [[{ subnet: `10.249.${octet}.0/24` }]], routes: [{ dst: "0.0.0.0/0" }] } },
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "firewall" },
    ],
  };
}

/**
 * A cni-shim network as --ipam says: the embedded default on Docker's IPAM, or (null) a list of
 * the soak's own in the plugin's conf dir, on a /24 no route and no Docker network uses.
 */
export async function createNetwork(plugin: Plugin, net: string): Promise<NetworkNames> {
  if (ipam() === "docker") {
    await must(DOCKER, ["network", "create", "-d", plugin.driver, net]);
    return remember(net, {});
  }
  const tag = rand();
  const names = { cniName: `soak-null-${tag}`, bridge: `csn-${tag}` };
  const list = nullIpamList(names, await freeOctet());
  await mkdir(plugin.confDir, { recursive: true });
  await writeFile(join(plugin.confDir, `${names.cniName}.conflist`), JSON.stringify(list));
  await must(DOCKER, ["network", "create", "-d", plugin.driver, "--ipam-driver", "null", "-o", `cni.network=${names.cniName}`, net]);
  return remember(net, names);
}

/** After the network is gone: what of its list stays behind by design (the bridge, host-local's dir) goes too. */
export async function removeNetworkLeftovers(names: NetworkNames) {
  if (!names.bridge) return;
  await sh("ip", ["link", "del", names.bridge]);
  await rm(`/var/lib/cni/networks/${names.cniName}`, { recursive: true, force: true });
}
