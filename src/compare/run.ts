// Orchestration of `cni-shim compare`: start the probe image three ways, collect, check, build
// the report. Every resource is registered with the Cleanup before it is created; the caller
// runs the cleanup (also on Ctrl-C). Rendering and comparison live elsewhere (pure).
//
// Which CNI network list columns 2 and 3 run, and why:
// - --conflist NAME: the cni-shim network is created with -o cni.network=NAME and Docker's
//   --subnet/--gateway set to the list's host-local range; attach applies the same NAME.
// - no --conflist: the cni-shim network is created the default way (the embedded template,
//   instantiated by cni-shim with Docker's pool and a bridge of its own, cs-<network id>) on a
//   free /24 of 10.233.0.0/16; attach then applies exactly that instantiated list (read back
//   from the CNI cache, written to a temporary conf dir searched first). Applying the embedded
//   template as is (10.88.0.0/16 on cni-shim0) would put the same subnet on two bridges, and a
//   temporary list given to both would not reach a cni-shim already running with its own conf
//   dir. This way both columns share one list, bridge, subnet and host-local store, as a Docker
//   network and kubelet-style pods would on one node: host-local hands out distinct addresses.
//   The cni-shim column starts first, so Docker's IPAM (which knows nothing of the attachments)
//   assigns addresses before host-local hands the next ones to the attach column.
import { mkdtemp, mkdir, readdir, rm, writeFile, readFile } from "node:fs/promises";
import { randomBytes, randomInt } from "node:crypto";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Server } from "node:http";
import type Docker from "dockerode";
import { Attacher } from "../attach/attach.js";
import { confListFromObject, findConfList } from "../cni/config.js";
import { ResultCache } from "../cni/cache.js";
import type { ConfList } from "../cni/schemas.js";
import { buildDriver, buildRuntime } from "../cli/compose.js";
import { confDirs, type Settings } from "../cli/settings.js";
import { dockerClient } from "../docker/client.js";
import { DEFAULT_TEMPLATE, type CniShimDriver } from "../driver/driver.js";
import * as netns from "../host/netns.js";
import { hostLocalDir, removeBridgeIfUnused, removeHostLocalDirIfEmpty } from "../host/leftovers.js";
import type { PortMapping } from "../cni/schemas.js";
import { defaultNetworkName, instantiateDefault, networkOptions } from "../driver/translate.js";
import { createApp, listenUnix, type NetworkDriver } from "../libnetwork/server.js";
import * as api from "../libnetwork/schemas.js";
import { parseCidr } from "../util/ip.js";
import { Cleanup } from "./cleanup.js";
import { COLUMN_IDS, Report, type ColumnFacts, type ColumnId } from "./model.js";
import { bridgeOf, choosePorts, defaultPlan, listFingerprint, namedPlan, pickFreeSubnet, socketAnswers, usedSubnets, type NetworkPlan } from "./plan.js";
import { collectFacts, hostState, type ProbeTarget } from "./probe.js";
import { checkReach, PROBE_PAGE } from "./reach.js";
import { buildRows, COLUMN_TITLES, mainIPv4, notesOf, parityOf } from "./rows.js";

export const DEFAULT_IMAGE = "cni-shim-busybox:latest";
/** Label on every container and network compare creates (value: the run id). */
export const LABEL = "io.cni-shim.compare";

export interface CompareOptions {
  settings: Settings;
  image: string;
  conflist?: string;
  /** Host port of the first column (the next two get +1, +2); undefined = choose free ports. */
  hostPort?: number;
  containerPort: number;
  protocol: PortMapping["protocol"];
  hostIP?: string;
  cleanup: Cleanup;
  progress: (msg: string) => void;
  signal: AbortSignal;
}

interface Started {
  id: string;
  name: string;
}

interface ColumnSetup {
  column: ColumnId;
  dockerNetwork: string;
  probe: Started;
  peer: Started;
  cniContainerId?: string;
  network: ColumnFacts["network"];
  hostPort: number;
  cni?: ColumnFacts["cni"];
}

const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** Docker's own message with what compare was doing (dockerode prefixes "(HTTP code 500) ..."). */
function failed(what: string, err: unknown): Error {
  const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
  return new Error(`${what}: ${message.replace(/^\(HTTP code \d+\) [^-]*- /, "").trim()}`);
}

/** Remove a container compare created (by name, only when it carries this run's label). */
async function removeContainer(docker: Docker, name: string, runId: string): Promise<void> {
  try {
    const info = (await docker.getContainer(name).inspect()) as { Id: string; Config: { Labels?: Record<string, string> } };
    if (info.Config.Labels?.[LABEL] !== runId) return;
    await docker.getContainer(info.Id).remove({ force: true });
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
}

async function removeNetwork(docker: Docker, name: string, runId: string): Promise<void> {
  try {
    const info = (await docker.getNetwork(name).inspect()) as { Id: string; Labels?: Record<string, string> };
    if (info.Labels?.[LABEL] !== runId) return;
    await docker.getNetwork(info.Id).remove();
  } catch (err) {
    if (statusOf(err) !== 404) throw err;
  }
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

/** The driver calls Docker may make, without reconciliation: compare's plugin lives for one run. */
function servedDriver(d: CniShimDriver): NetworkDriver {
  return {
    createNetwork: (r) => d.createNetwork(r),
    deleteNetwork: (id) => d.deleteNetwork(id),
    createEndpoint: (r) => d.createEndpoint(r),
    endpointOperInfo: (r) => d.endpointOperInfo(r),
    deleteEndpoint: (r) => d.deleteEndpoint(r),
    join: (r) => d.join(r),
    leave: (r) => d.leave(r),
    programExternalConnectivity: () => d.programExternalConnectivity(),
    revokeExternalConnectivity: () => d.revokeExternalConnectivity(),
    settle: () => d.settle(),
  };
}

/** Bridge and host-local store the run brought into being, removed when nothing uses them. */
interface Leftovers {
  bridge?: string;
  hostLocal?: string;
}

async function removeLeftovers(l: Leftovers): Promise<void> {
  if (l.bridge) await removeBridgeIfUnused(l.bridge);
  if (l.hostLocal) await removeHostLocalDirIfEmpty(l.hostLocal);
}

async function exists(path: string): Promise<boolean> {
  return readdir(path).then(
    () => true,
    () => false,
  );
}

export async function runCompare(o: CompareOptions): Promise<Report> {
  const { settings, cleanup, progress } = o;
  const check = () => {
    if (o.signal.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error("interrupted");
  };
  const runId = randomBytes(3).toString("hex");
  const prefix = `cs-cmp-${runId}`;
  const docker = dockerClient(settings.dockerSocket, 60_000);
  const labels = { [LABEL]: runId };

  // ---- preconditions ---------------------------------------------------------------------------
  try {
    await docker.getImage(o.image).inspect();
  } catch (err) {
    if (statusOf(err) === 404) throw new Error(`image ${o.image} is not on this host: compare never pulls; pull or build it first (scripts/test-image.sh builds ${DEFAULT_IMAGE})`);
    throw new Error(`Docker is not answering on ${settings.dockerSocket}: ${(err as Error).message}`);
  }
  const named = o.conflist ? await findConfList(confDirs(settings), o.conflist) : undefined;
  let plan: NetworkPlan | undefined = named ? namedPlan(named) : undefined;
  const ports = await choosePorts(o.hostPort);
  const publishOf = (hostPort: number): PortMapping => ({ hostPort, containerPort: o.containerPort, protocol: o.protocol, ...(o.hostIP ? { hostIP: o.hostIP } : {}) });

  // ---- the cni-shim plugin serving column 2 ----------------------------------------------------
  let driverName: string;
  const inProcess = !(await socketAnswers(settings.socket));
  if (!inProcess) {
    driverName = basename(settings.socket).replace(/\.sock$/, "");
    progress(`using the cni-shim plugin on ${settings.socket} (driver "${driverName}")`);
  } else {
    driverName = `cni-shim-compare-${runId}`;
    const socket = `/run/docker/plugins/${driverName}.sock`;
    progress(`no cni-shim on ${settings.socket}: serving driver "${driverName}" from this process`);
    const driver = buildDriver(settings);
    let server: Server | undefined;
    cleanup.add(`cni-shim plugin on ${socket}`, async () => {
      await driver.stop();
      server?.close();
      server?.closeAllConnections();
      await rm(socket, { force: true });
    });
    server = (await listenUnix(createApp(servedDriver(driver)), socket)) as Server;
  }

  const leftovers: Leftovers = {};
  cleanup.add("bridge and host-local store created for the run", () => removeLeftovers(leftovers));
  if (plan?.bridge && !(await netns.linkExists(plan.bridge))) leftovers.bridge = plan.bridge;
  const namedDir = named && hostLocalDir(named.conflist);
  if (namedDir && !(await exists(namedDir))) leftovers.hostLocal = namedDir;
  const tmp = await mkdtemp(join(tmpdir(), `cni-shim-compare-${runId}-`));
  cleanup.add(`temporary dir ${tmp}`, () => rm(tmp, { recursive: true, force: true }));

  const startContainer = async (name: string, network: string, role: "probe" | "peer", hostPort?: number): Promise<Started> => {
    check();
    cleanup.add(`container ${name}`, () => removeContainer(docker, name, runId));
    const key = `${o.containerPort}/${o.protocol}`;
    const publish = role === "probe" && network !== "none" && hostPort !== undefined;
    const dir = "/tmp/cni-shim-compare";
    const cmd = role === "probe" ? ["sh", "-c", `mkdir -p ${dir} && echo '${PROBE_PAGE}' > ${dir}/index.html && exec httpd -f -p ${o.containerPort} -h ${dir}`] : ["sleep", "3600"];
    const spec = {
      name,
      Image: o.image,
      Cmd: cmd,
      Labels: labels,
      ...(publish ? { ExposedPorts: { [key]: {} } } : {}),
      HostConfig: { NetworkMode: network, ...(publish ? { PortBindings: { [key]: [{ HostIp: o.hostIP ?? "", HostPort: String(hostPort) }] } } : {}) },
    };
    const c = await docker.createContainer(spec).catch((err) => Promise.reject(failed(`docker create ${name}`, err)));
    await c.start().catch((err) => Promise.reject(failed(`docker start ${name} (network ${network})`, err)));
    return { id: c.id, name };
  };

  const createNetwork = async (name: string, spec: Record<string, unknown>): Promise<string> => {
    check();
    cleanup.add(`network ${name}`, () => removeNetwork(docker, name, runId));
    const net = await docker.createNetwork({ Name: name, CheckDuplicate: true, Labels: labels, ...spec }).catch((err) => Promise.reject(failed(`docker network create -d ${spec.Driver as string} ${name}`, err)));
    return net.id;
  };

  // ---- column 1: Docker's bridge driver --------------------------------------------------------
  // A network of its own (not the default "bridge"): like the cni-shim network it is
  // user-defined, so the comparison is about the driver, not default vs user-defined networks.
  progress("column 1: Docker bridge network and two containers");
  const net1 = `${prefix}-bridge`;
  const net1Id = await createNetwork(net1, { Driver: "bridge" });
  const ipam1 = ((await docker.getNetwork(net1Id).inspect()) as { IPAM: { Config: Array<{ Subnet: string; Gateway?: string }> } }).IPAM.Config.find((c) => parseCidr(c.Subnet)?.family === 4)!;
  const col1: ColumnSetup = {
    column: "bridge",
    dockerNetwork: net1,
    probe: await startContainer(`${prefix}-bridge-probe`, net1, "probe", ports[0]),
    peer: await startContainer(`${prefix}-bridge-peer`, net1, "peer"),
    network: { name: net1, subnet: ipam1.Subnet, gateway: ipam1.Gateway ?? "", bridge: `br-${net1Id.slice(0, 12)}` },
    hostPort: ports[0],
  };

  // ---- column 2: cni-shim ----------------------------------------------------------------------
  progress(`column 2: cni-shim network (driver ${driverName}) and two containers`);
  const net2 = `${prefix}-cni`;
  let net2Id = "";
  for (let attempt = 0; !net2Id; attempt++) {
    if (!named) plan = defaultPlan(pickFreeSubnet(await usedSubnets(docker), randomInt(256)), "embedded default");
    try {
      net2Id = await createNetwork(net2, {
        Driver: driverName,
        IPAM: { Driver: "default", Config: [{ Subnet: plan!.subnet, Gateway: plan!.gateway }] },
        ...(named ? { Options: { [api.SHIM_OPT.network]: named.conflist.name } } : {}),
      });
    } catch (err) {
      // Another run may have taken the same free subnet a moment ago: pick again.
      if (named || attempt >= 2 || !/overlap/i.test((err as Error).message)) throw err;
    }
  }
  const p = plan!;
  const listName = named ? named.conflist.name : defaultNetworkName(net2Id);
  const probe2 = await startContainer(`${prefix}-cni-probe`, net2, "probe", ports[1]);
  const peer2 = await startContainer(`${prefix}-cni-peer`, net2, "peer");
  const endpointId = ((await docker.getContainer(probe2.id).inspect()) as { NetworkSettings: { Networks: Record<string, { EndpointID: string }> } }).NetworkSettings.Networks[net2]?.EndpointID;
  // The list cni-shim really ran, from the CNI cache (libcni layout, shared with attach).
  const cached = endpointId ? await new ResultCache(settings.cacheDir).read(listName, endpointId, "eth0").catch(() => undefined) : undefined;
  let list2: ConfList | undefined = cached ? (JSON.parse(Buffer.from(cached.config, "base64").toString("utf8")) as ConfList) : undefined;
  if (!list2 && named) list2 = named.conflist;
  if (!list2) {
    // A cni-shim with another cache dir: instantiate the template the way it does.
    const template = await findConfList(confDirs(settings), DEFAULT_TEMPLATE);
    const req = api.CreateNetworkRequest.parse({ NetworkID: net2Id, Options: {}, IPv4Data: [{ AddressSpace: "LocalDefault", Pool: p.subnet, Gateway: `${p.gateway}/${parseCidr(p.subnet)!.prefix}` }], IPv6Data: [] });
    list2 = instantiateDefault(template.conflist, req, networkOptions(req));
  }
  const bridge2 = bridgeOf(list2);
  if (!named) {
    leftovers.bridge = bridge2;
    leftovers.hostLocal = hostLocalDir(list2);
  }
  const col2: ColumnSetup = {
    column: "cnishim",
    dockerNetwork: net2,
    probe: probe2,
    peer: peer2,
    cniContainerId: endpointId,
    network: { name: listName, subnet: p.subnet, gateway: p.gateway, ...(bridge2 ? { bridge: bridge2 } : {}) },
    hostPort: ports[1],
    cni: { network: list2.name, fingerprint: listFingerprint(list2) },
  };

  // ---- column 3: --network none + attach -------------------------------------------------------
  progress(`column 3: two --network none containers, cni-shim attach to ${listName}`);
  const dirs = confDirs(settings);
  if (!named) {
    const netd = join(tmp, "net.d");
    await mkdir(netd, { recursive: true });
    await writeFile(join(netd, `00-${listName}.conflist`), JSON.stringify(list2, null, 2));
    dirs.unshift(netd);
  }
  const attacher = new Attacher(buildRuntime(settings), docker, settings.stateDir, dirs);
  const attachTo = async (c: Started, portMappings: PortMapping[]) => {
    check();
    cleanup.add(`attachment of ${c.name}`, () =>
      attacher.detach(c.id, listName).catch((err: Error) => {
        if (!/^no cni-shim attachment/.test(err.message)) throw err;
      }),
    );
    return attacher.attach(c.id, { network: listName, portMappings }).catch((err) => Promise.reject(failed(`cni-shim attach ${c.name} --network ${listName}`, err)));
  };
  const probe3 = await startContainer(`${prefix}-attach-probe`, "none", "probe");
  const peer3 = await startContainer(`${prefix}-attach-peer`, "none", "peer");
  const rec3 = await attachTo(probe3, [publishOf(ports[2])]);
  await attachTo(peer3, []);
  const col3: ColumnSetup = {
    column: "attach",
    dockerNetwork: "none",
    probe: probe3,
    peer: peer3,
    cniContainerId: probe3.id,
    network: col2.network,
    hostPort: ports[2],
    cni: { network: rec3.network, fingerprint: listFingerprint(confListFromObject(JSON.parse(rec3.conflist), "attachment").conflist) },
  };

  // ---- collect ---------------------------------------------------------------------------------
  const setups = [col1, col2, col3] as const;
  progress("waiting for the probes to listen");
  for (const s of setups) {
    const pid = ((await docker.getContainer(s.probe.id).inspect()) as { State: { Pid: number } }).State.Pid;
    if (o.protocol === "tcp") await waitListening(pid, o.containerPort);
  }
  check();
  progress("collecting facts: namespaces, host links, iptables, docker inspect");
  const host = await hostState();
  const facts: ColumnFacts[] = [];
  for (const s of setups) {
    const target: ProbeTarget = {
      column: s.column,
      container: s.probe,
      peer: s.peer,
      dockerNetwork: s.dockerNetwork,
      ...(s.cniContainerId ? { cniContainerId: s.cniContainerId } : {}),
      network: s.network,
      publish: { hostPort: s.hostPort, containerPort: o.containerPort, protocol: o.protocol },
    };
    const f = await collectFacts(docker, target, host);
    if (s.cni) f.cni = s.cni;
    facts.push(f);
  }
  for (const [i, s] of setups.entries()) {
    check();
    progress(`reachability, column ${i + 1} (${COLUMN_TITLES[s.column].title})`);
    const ip = mainIPv4(facts[i]!)?.split("/")[0];
    facts[i]!.reach = ip
      ? await checkReach(docker, { probe: s.probe.id, peer: s.peer.id, probeIP: ip, gateway: s.network.gateway, hostPort: s.hostPort, containerPort: o.containerPort })
      : { peerPing: { ok: false, detail: "the probe has no IPv4 address" } };
  }

  // ---- report ----------------------------------------------------------------------------------
  const cols = facts as [ColumnFacts, ColumnFacts, ColumnFacts];
  const rows = buildRows(cols);
  return Report.parse({
    tool: "cni-shim compare",
    formatVersion: 1,
    createdAt: new Date().toISOString(),
    image: o.image,
    conflist: { name: listName, source: p.source, mode: p.mode, subnet: p.subnet, gateway: p.gateway, ...(bridge2 ? { bridge: bridge2 } : {}) },
    driver: { name: driverName, inProcess },
    columns: COLUMN_IDS.map((id, i) => ({ id, ...COLUMN_TITLES[id], facts: cols[i] })),
    rows,
    parity: parityOf(rows),
    notes: notesOf(rows),
  });
}
