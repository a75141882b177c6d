// The three columns of compare, one step each, then the collection of their facts. Each step
// starts the column's network, probe and peer through the run's session (which registers them
// for cleanup) and says what the collection needs to know about the column.
import { randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Attacher } from "../attach/attach.js";
import { confListFromObject, type LoadedConfList } from "../cni/config.js";
import { CniRuntime } from "../cni/runtime.js";
import type { ConfList, PortMapping } from "../cni/schemas.js";
import { inspectContainer, inspectNetwork } from "../docker/inspect.js";
import { defaultNetworkName } from "../driver/names-from-ids.js";
import * as api from "../libnetwork/schemas.js";
import { parseCidr } from "../util/ip.js";
import type { ColumnFacts, ColumnId } from "./model.js";
import { bridgeOf, defaultPlan, listFingerprint, pickFreeSubnet, usedSubnets, type NetworkPlan } from "./plan.js";
import { collectFacts, hostState, type ProbeTarget } from "./probe.js";
import { checkReach } from "./reach.js";
import { COLUMN_TITLES, mainIPv4, type Columns } from "./rows.js";
import { failed, type CompareSession, type Started } from "./session.js";

export interface ColumnSetup {
  column: ColumnId;
  dockerNetwork: string;
  probe: Started;
  peer: Started;
  cniContainerId?: string;
  network: ColumnFacts["network"];
  hostPort: number;
  cni?: ColumnFacts["cni"];
}

/**
 * Column 1: a network of Docker's own bridge driver. A network of its own (not the default
 * "bridge"): like the cni-shim network it is user-defined, so the comparison is about the
 * driver, not default vs user-defined networks.
 */
export async function startBridgeColumn(s: CompareSession, hostPort: number): Promise<ColumnSetup> {
  s.progress("column 1: Docker bridge network and two containers");
  const net = `${s.prefix}-bridge`;
  const netId = await s.createNetwork(net, { Driver: "bridge" });
  const ipam = (await inspectNetwork(s.docker, netId)).IPAM.Config?.find((c) => c.Subnet && parseCidr(c.Subnet)?.family === 4);
  if (!ipam?.Subnet) throw new Error(`Docker gave network ${net} no IPv4 subnet`);
  return {
    column: "bridge",
    dockerNetwork: net,
    probe: await s.startContainer(`${s.prefix}-bridge-probe`, net, "probe", hostPort),
    peer: await s.startContainer(`${s.prefix}-bridge-peer`, net, "peer"),
    network: { name: net, subnet: ipam.Subnet, gateway: ipam.Gateway ?? "", bridge: `br-${netId.slice(0, 12)}` },
    hostPort,
  };
}

export interface CniShimColumn {
  setup: ColumnSetup;
  plan: NetworkPlan;
  /** The CNI network list cni-shim ran for the network (attach applies the same one). */
  list: ConfList;
}

/**
 * Column 2: a network of the cni-shim driver `driverName`, with -o cni.network=NAME for a named
 * list (with Docker's null IPAM when asked: the list's IPAM then picks), else the embedded
 * default on a free /24 of 10.233.0.0/16. The list cni-shim really ran
 * is read back from the runtime's CNI cache (libcni layout, the same the plugin writes).
 */
export async function startCniShimColumn(
  s: CompareSession,
  o: { driverName: string; named?: { found: LoadedConfList; plan: NetworkPlan }; nullIpam?: boolean; runtime: CniRuntime; hostPort: number },
): Promise<CniShimColumn> {
  const named = o.named?.found;
  s.progress(`column 2: cni-shim network (driver ${o.driverName}) and two containers`);
  const net = `${s.prefix}-cni`;
  let plan = o.named?.plan;
  let netId = "";
  for (let attempt = 0; !netId; attempt++) {
    if (!named) plan = defaultPlan(pickFreeSubnet(await usedSubnets(s.docker), randomInt(256)), "embedded default");
    try {
      netId = await s.createNetwork(net, {
        Driver: o.driverName,
        IPAM: o.nullIpam ? { Driver: "null" } : { Driver: "default", Config: [{ Subnet: plan!.subnet, Gateway: plan!.gateway }, ...(plan!.ipv6 ? [{ Subnet: plan!.ipv6.subnet, Gateway: plan!.ipv6.gateway }] : [])] },
        ...(plan!.ipv6 ? { EnableIPv6: true } : {}),
        ...(named ? { Options: { [api.SHIM_OPT.network]: named.conflist.name } } : {}),
      });
    } catch (err) {
      // Another run may have taken the same free subnet a moment ago: pick again.
      if (named || attempt >= 2 || !/overlap/i.test((err as Error).message)) throw err;
    }
  }
  const listName = named ? named.conflist.name : defaultNetworkName(netId);
  const probe = await s.startContainer(`${s.prefix}-cni-probe`, net, "probe", o.hostPort);
  const peer = await s.startContainer(`${s.prefix}-cni-peer`, net, "peer");
  const endpointId = (await inspectContainer(s.docker, probe.id)).NetworkSettings.Networks?.[net]?.EndpointID;
  const cached = endpointId ? await o.runtime.cache.read(listName, endpointId, "eth0").catch(() => undefined) : undefined;
  const list = cached ? CniRuntime.confListOf(cached).conflist : named?.conflist;
  if (!list) {
    throw new Error(`no CNI cache entry of endpoint ${endpointId?.slice(0, 12) ?? "(none)"} on ${listName} in ${o.runtime.opts.cacheDir}: pass the --cache-dir of the cni-shim serving driver ${o.driverName}`);
  }
  const bridge = bridgeOf(list);
  const p = plan!;
  return {
    plan: p,
    list,
    setup: {
      column: "cnishim",
      dockerNetwork: net,
      probe,
      peer,
      cniContainerId: endpointId,
      network: { name: listName, subnet: p.subnet, gateway: p.gateway, ...(bridge ? { bridge } : {}) },
      hostPort: o.hostPort,
      cni: { network: list.name, fingerprint: listFingerprint(list) },
    },
  };
}

/** Column 3: two --network none containers, the list applied with `cni-shim attach` (the kubelet way). */
export async function startAttachColumn(s: CompareSession, o: { attacher: Attacher; network: ColumnFacts["network"]; hostPort: number }): Promise<ColumnSetup> {
  const listName = o.network.name;
  s.progress(`column 3: two --network none containers, cni-shim attach to ${listName}`);
  const attachTo = async (c: Started, portMappings: PortMapping[]) => {
    s.check();
    s.cleanup.add(`attachment of ${c.name}`, () =>
      o.attacher.detach(c.id, listName).catch((err: Error) => {
        if (!/^no cni-shim attachment/.test(err.message)) throw err;
      }),
    );
    return o.attacher.attach(c.id, { network: listName, portMappings }).catch((err) => Promise.reject(failed(`cni-shim attach ${c.name} --network ${listName}`, err)));
  };
  const probe = await s.startContainer(`${s.prefix}-attach-probe`, "none", "probe");
  const peer = await s.startContainer(`${s.prefix}-attach-peer`, "none", "peer");
  const rec = await attachTo(probe, [s.publishOf(o.hostPort)]);
  await attachTo(peer, []);
  return {
    column: "attach",
    dockerNetwork: "none",
    probe,
    peer,
    cniContainerId: probe.id,
    network: o.network,
    hostPort: o.hostPort,
    cni: { network: rec.network, fingerprint: listFingerprint(confListFromObject(JSON.parse(rec.conflist), "attachment").conflist) },
  };
}

/** Wait (bounded) until the probe's server listens, so reachability checks do not race its start. */
async function waitListening(pid: number, port: number, timeoutMs = 10_000): Promise<boolean> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    for (const f of ["tcp", "tcp6"]) {
      const text = await readFile(`/proc/${pid}/net/${f}`, "utf8").catch(() => "");
      if (text.split("\n").some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex) && l.trim().split(/\s+/)[3] === "0A")) return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** The facts of the three columns: namespaces, host links, iptables, docker inspect, reachability. */
export async function collectColumns(s: CompareSession, setups: readonly [ColumnSetup, ColumnSetup, ColumnSetup]): Promise<Columns> {
  const { containerPort, protocol } = s.port;
  s.progress("waiting for the probes to listen");
  for (const c of setups) {
    const pid = (await inspectContainer(s.docker, c.probe.id)).State.Pid;
    if (protocol === "tcp") await waitListening(pid, containerPort);
  }
  s.check();
  s.progress("collecting facts: namespaces, host links, iptables, docker inspect");
  const host = await hostState();
  const facts: ColumnFacts[] = [];
  for (const c of setups) {
    const target: ProbeTarget = {
      column: c.column,
      container: c.probe,
      peer: c.peer,
      dockerNetwork: c.dockerNetwork,
      ...(c.cniContainerId ? { cniContainerId: c.cniContainerId } : {}),
      network: c.network,
      publish: { hostPort: c.hostPort, containerPort, protocol },
    };
    const f = await collectFacts(s.docker, target, host);
    if (c.cni) f.cni = c.cni;
    facts.push(f);
  }
  for (const [i, c] of setups.entries()) {
    s.check();
    s.progress(`reachability, column ${i + 1} (${COLUMN_TITLES[c.column].title})`);
    const ip = mainIPv4(facts[i]!)?.split("/")[0];
    facts[i]!.reach = ip
      ? await checkReach(s.docker, { probe: c.probe.id, peer: c.peer.id, probeIP: ip, gateway: c.network.gateway, hostPort: c.hostPort, containerPort })
      : { peerPing: { ok: false, detail: "the probe has no IPv4 address" } };
  }
  return facts as unknown as Columns;
}
