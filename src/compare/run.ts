// Orchestration of `cni-shim compare`: start the probe image three ways, collect, build the
// report. Every resource is registered with the Cleanup before it is created; the caller runs
// the cleanup (also on Ctrl-C). The columns, the report and the rendering live elsewhere.
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
// - --conflist NAME --ipam-driver null: the cni-shim network has Docker's null IPAM, so the
//   list's own IPAM picks the cni-shim column's addresses too, as for the attach column.
import { mkdtemp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Server } from "node:http";
import { findConfList } from "../cni/config.js";
import type { ConfList, PortMapping } from "../cni/schemas.js";
import { buildAttacher, buildDriver, buildRuntime } from "../compose.js";
import { dockerVersion } from "../docker/engine.js";
import { confDirs, type Settings } from "../settings.js";
import { dockerClient } from "../docker/client.js";
import type { CniShimDriver } from "../driver/driver.js";
import * as netns from "../host/netns.js";
import { removeBridgeIfUnused } from "../host/leftovers.js";
import { hostLocalDir, removeHostLocalDirIfEmpty } from "../cni/host-local.js";
import { createApp, listenUnix, type NetworkDriver } from "../libnetwork/server.js";
import { socketAnswers } from "../util/http.js";
import type { Cleanup } from "./cleanup.js";
import { collectColumns, startAttachColumn, startBridgeColumn, startCniShimColumn } from "./columns.js";
import type { Report } from "./model.js";
import { bridgeOf, choosePorts, namedPlan } from "./plan.js";
import { buildReport } from "./report.js";
import { CompareSession, statusOf } from "./session.js";

export const DEFAULT_IMAGE = "cni-shim-busybox:latest";

export interface CompareOptions {
  settings: Settings;
  image: string;
  conflist?: string;
  /** Create the cni-shim network with Docker's null IPAM (needs conflist): the list's IPAM picks. */
  nullIpam?: boolean;
  /** Host port of the first column (the next two get +1, +2); undefined = choose free ports. */
  hostPort?: number;
  containerPort: number;
  protocol: PortMapping["protocol"];
  hostIP?: string;
  cleanup: Cleanup;
  progress: (msg: string) => void;
  signal: AbortSignal;
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

/** The cni-shim plugin of column 2: the one answering on --socket, or one served from this process. */
async function columnTwoDriver(settings: Settings, s: CompareSession): Promise<Report["driver"]> {
  if (await socketAnswers(settings.socket)) {
    const name = basename(settings.socket).replace(/\.sock$/, "");
    s.progress(`using the cni-shim plugin on ${settings.socket} (driver "${name}")`);
    return { name, inProcess: false };
  }
  const name = `cni-shim-compare-${s.runId}`;
  const socket = `/run/docker/plugins/${name}.sock`;
  s.progress(`no cni-shim on ${settings.socket}: serving driver "${name}" from this process`);
  const driver = buildDriver(settings);
  // As serve does: the engine's version, for the attach path before any Join has shown it.
  await driver.choice.setEngine(await dockerVersion(settings.dockerSocket, 5_000));
  s.progress(`new endpoints take the ${driver.choice.decide().kind} path (${driver.choice.decide().why})`);
  const served: { server?: Server } = {};
  s.cleanup.add(`cni-shim plugin on ${socket}`, async () => {
    await driver.stop();
    served.server?.close();
    served.server?.closeAllConnections();
    await rm(socket, { force: true });
  });
  served.server = (await listenUnix(createApp(servedDriver(driver)), socket)) as Server;
  return { name, inProcess: true, attach: driver.choice.decide().kind };
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

/** A conf dir of its own holding `list`, searched first, so attach applies exactly that list. */
async function confDirWith(tmp: string, list: ConfList): Promise<string> {
  const dir = join(tmp, "net.d");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `00-${list.name}.conflist`), JSON.stringify(list, null, 2));
  return dir;
}

export async function runCompare(o: CompareOptions): Promise<Report> {
  const { settings, cleanup } = o;
  const docker = dockerClient(settings.dockerSocket, 60_000);
  const s = new CompareSession(docker, o.image, { containerPort: o.containerPort, protocol: o.protocol, ...(o.hostIP ? { hostIP: o.hostIP } : {}) }, cleanup, o.progress, o.signal);

  // ---- preconditions ---------------------------------------------------------------------------
  try {
    await docker.getImage(o.image).inspect();
  } catch (err) {
    if (statusOf(err) === 404) throw new Error(`image ${o.image} is not on this host: compare never pulls; pull or build it first (scripts/test-image.sh builds ${DEFAULT_IMAGE})`, { cause: err });
    throw new Error(`Docker is not answering on ${settings.dockerSocket}: ${(err as Error).message}`, { cause: err });
  }
  if (o.nullIpam && !o.conflist) throw new Error("--ipam-driver null needs --conflist NAME: the embedded default takes its subnet from Docker's IPAM");
  const found = o.conflist ? await findConfList(confDirs(settings), o.conflist) : undefined;
  const named = found && { found, plan: namedPlan(found) };
  const ports = await choosePorts(o.hostPort);
  const driver = await columnTwoDriver(settings, s);

  const leftovers: Leftovers = {};
  cleanup.add("bridge and host-local store created for the run", () => removeLeftovers(leftovers));
  if (named?.plan.bridge && !(await netns.linkExists(named.plan.bridge))) leftovers.bridge = named.plan.bridge;
  const namedDir = named && hostLocalDir(named.found.conflist);
  if (namedDir && !(await exists(namedDir))) leftovers.hostLocal = namedDir;
  const tmp = await mkdtemp(join(tmpdir(), `cni-shim-compare-${s.runId}-`));
  cleanup.add(`temporary dir ${tmp}`, () => rm(tmp, { recursive: true, force: true }));

  // ---- the three columns -----------------------------------------------------------------------
  const col1 = await startBridgeColumn(s, ports[0]);
  const col2 = await startCniShimColumn(s, { driverName: driver.name, named, nullIpam: o.nullIpam, runtime: buildRuntime(settings), hostPort: ports[1] });
  if (!named) {
    leftovers.bridge = bridgeOf(col2.list);
    leftovers.hostLocal = hostLocalDir(col2.list);
  }
  const attachDirs = named ? confDirs(settings) : [await confDirWith(tmp, col2.list), ...confDirs(settings)];
  const col3 = await startAttachColumn(s, { attacher: buildAttacher(settings, { docker, confDirs: attachDirs }), network: col2.setup.network, hostPort: ports[2] });

  // ---- collect and report ----------------------------------------------------------------------
  const facts = await collectColumns(s, [col1, col2.setup, col3]);
  const p = col2.plan;
  const bridge = col2.setup.network.bridge;
  return buildReport({
    createdAt: new Date().toISOString(),
    image: o.image,
    conflist: { name: col2.setup.network.name, source: p.source, mode: p.mode, subnet: p.subnet, gateway: p.gateway, ...(bridge ? { bridge } : {}) },
    driver,
    facts,
  });
}
