// Parity with the Docker-era kubelet: the same conflist through cni-shim (CNI behind Docker's
// CNM) and applied straight into a --network none container's netns must give the container
// the same network: address/prefix, routes, MTU, hairpin, bridge, kinds of iptables chains.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Attacher } from "../../src/attach/attach.js";
import { CniRuntime } from "../../src/cni/runtime.js";
import { EMBEDDED_CONF_DIR } from "../../src/cni/config.js";
import { dockerClient } from "../../src/docker/client.js";
import { StateStore } from "../../src/driver/state.js";
import { resolveSettings } from "../../src/settings.js";
import { IMAGE, cleanup, containerNet, docker, rand, requirePrerequisites, sh, startPlugin, type PluginHandle } from "../helpers/e2e.js";
import { podNetworkList } from "../helpers/conflists.js";

const id = rand();
const octet = 100 + (parseInt(id.slice(0, 2), 16) % 100);
const subnet = `10.253.${octet}.0/24`;
const gateway = `10.253.${octet}.1`;
const listName = `e2e-parity-${id}`;
const bridge = `csp${id}`;

interface Facts {
  addr: string; // "a.b.c.d/len"
  routes: string[];
  mtu: string;
  hostVeth: string;
  master: string;
  hairpin: boolean;
  chainKinds: string[];
}

/** The same facts for either column: inside via docker exec, host side via ip/iptables. */
async function facts(container: string, cniContainerId: string): Promise<Facts> {
  const net = await containerNet(container);
  const eth = net.addr.split("\n").find((l) => /\beth\d+\s+inet /.test(l))!;
  const ifname = /\b(eth\d+)\s+inet/.exec(eth)![1]!;
  const addr = /inet (\S+)/.exec(eth)![1]!;
  const link = net.links.split("\n").find((l) => l.includes(` ${ifname}@`))!;
  const peerIndex = /@if(\d+)/.exec(link)![1]!;
  const mtu = /mtu (\d+)/.exec(link)![1]!;
  const hostLinks = JSON.parse((await sh("ip", ["-j", "-d", "link", "show"])).stdout) as Array<{ ifindex: number; ifname: string; master?: string; linkinfo?: { info_slave_data?: { hairpin?: boolean } } }>;
  const peer = hostLinks.find((l) => String(l.ifindex) === peerIndex)!;
  const rules = (await sh("iptables-save", [])).stdout.split("\n");
  const ip = addr.split("/")[0]!;
  const kinds = new Set<string>();
  for (const r of rules) {
    if (!r.startsWith("-A ")) continue;
    const chain = r.split(" ")[1]!;
    if (r.includes(`id: \\"${cniContainerId}\\"`) || r.includes(`${ip}/32`) || r.includes(`--to-destination ${ip}:`)) {
      kinds.add(chain.replace(/^CNI-DN-[0-9a-f]+$/, "CNI-DN-<hash>").replace(/^CNI-[0-9a-f]{24}$/, "CNI-<hash>"));
    }
  }
  return {
    addr,
    routes: net.routes.map((r) => r.replace(/\beth\d+\b/, "ethN").replace(/src \S+/, "src <ip>")),
    mtu,
    hostVeth: peer.ifname,
    master: peer.master ?? "",
    hairpin: peer.linkinfo?.info_slave_data?.hairpin === true,
    chainKinds: [...kinds].sort(),
  };
}

describe("parity: cni-shim vs CNI applied the kubelet way", () => {
  let plugin: PluginHandle;
  let confDir: string;
  let cacheDir: string;
  let attacher: Attacher;
  const net = `cs-par-${id}`;
  const viaShim = `cs-par-shim-${id}`;
  const viaKubelet = `cs-par-kube-${id}`;

  beforeAll(async () => {
    await requirePrerequisites();
    confDir = await mkdtemp(join(tmpdir(), "cs-par-conf-"));
    cacheDir = await mkdtemp(join(tmpdir(), "cs-par-cache-"));
    await writeFile(
      join(confDir, "10-parity.conflist"),
      podNetworkList({ name: listName, bridge, subnet }),
    );
    plugin = await startPlugin({ confDir });
    attacher = new Attacher(new CniRuntime({ cniPath: ["/usr/lib/cni"], cacheDir, execTimeoutMs: 30_000 }), dockerClient(resolveSettings({}).dockerSocket), new StateStore(join(cacheDir, "state")), [confDir, EMBEDDED_CONF_DIR]);
    await docker(["network", "create", "-d", plugin.driver, "-o", `cni.network=${listName}`, "--subnet", subnet, "--gateway", gateway, net]);
    await docker(["run", "-d", "--name", viaShim, "--network", net, "-p", "80", IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    await docker(["run", "-d", "--name", viaKubelet, "--network", "none", IMAGE, "httpd", "-f", "-p", "80", "-h", "/www"]);
    await attacher.attach(viaKubelet, { network: listName, portMappings: [{ hostPort: 18000 + (parseInt(id.slice(2, 4), 16) % 1000), containerPort: 80, protocol: "tcp" }] });
  });

  afterAll(async () => {
    await attacher?.detach(viaKubelet).catch(() => undefined);
    await cleanup([viaShim, viaKubelet], [net], plugin, [confDir, cacheDir]);
    await sh("ip", ["link", "del", bridge], { reject: false });
    await rm(`/var/lib/cni/networks/${listName}`, { recursive: true, force: true });
  });

  it("gives both containers the same network, differing only in address, MAC and veth name", async () => {
    const endpointId = (await docker(["inspect", viaShim, "--format", `{{(index .NetworkSettings.Networks "${net}").EndpointID}}`])).stdout;
    const kubeletId = (await docker(["inspect", viaKubelet, "--format", "{{.Id}}"])).stdout;
    const shim = await facts(viaShim, endpointId);
    const kube = await facts(viaKubelet, kubeletId);
    expect(shim.addr.split("/")[1]).toBe("24");
    expect(kube.addr.split("/")[1]).toBe("24");
    expect(shim.addr).not.toBe(kube.addr);
    for (const f of [shim, kube]) expect(f.addr.startsWith(`10.253.${octet}.`)).toBe(true);
    expect(shim.routes).toEqual(kube.routes);
    expect(shim.routes[0]).toBe(`default via ${gateway} dev ethN`);
    expect(shim.mtu).toBe("1400");
    expect(kube.mtu).toBe(shim.mtu);
    expect(shim.master).toBe(bridge);
    expect(kube.master).toBe(bridge);
    expect(shim.hairpin).toBe(true);
    expect(kube.hairpin).toBe(true);
    expect(shim.chainKinds).toEqual(kube.chainKinds);
    expect(shim.chainKinds).toEqual(expect.arrayContaining(["CNI-<hash>", "CNI-DN-<hash>", "CNI-FORWARD"]));
  });
});
