// `cni-shim attach`: the way the Docker-era kubelet (dockershim) networked a pod. The container
// runs on Docker's "none" network and the CNI list is applied straight into its namespace
// (/proc/<pid>/ns/net), loopback first, with K8S_* CNI_ARGS. Also the reference column of compare.
import type Docker from "dockerode";
import { CniRuntime } from "../cni/runtime.js";
import { inspectContainer } from "../docker/inspect.js";
import { confListFromObject, findConfList, parseConfFile, type LoadedConfList } from "../cni/config.js";
import type { PortMapping } from "../cni/schemas.js";
import type { StateStore } from "../driver/state.js";
import { attachmentRecords, type AttachmentRecord } from "./record.js";
import { convergentDel } from "../teardown/convergent.js";
import { log } from "../util/log.js";

const LOOPBACK_LIST = { cniVersion: "1.0.0", name: "cni-loopback", plugins: [{ type: "loopback" }] };

interface ContainerInfo {
  id: string;
  name: string;
  pid: number;
  running: boolean;
  networkMode: string;
}

async function lookUpContainer(docker: Docker, ref: string): Promise<ContainerInfo | undefined> {
  try {
    const info = await inspectContainer(docker, ref);
    return { id: info.Id, name: info.Name.replace(/^\//, ""), pid: info.State.Pid, running: info.State.Running, networkMode: info.HostConfig.NetworkMode };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

export interface AttachOptions {
  network?: string;
  portMappings?: PortMapping[];
  ifName?: string;
}

export class Attacher {
  private readonly records: ReturnType<typeof attachmentRecords>;

  constructor(
    private readonly runtime: CniRuntime,
    private readonly docker: Docker,
    state: StateStore,
    private readonly confDirs: string[],
  ) {
    this.records = attachmentRecords(state);
  }

  list(): Promise<AttachmentRecord[]> {
    return this.records.list();
  }

  async attach(ref: string, opts: AttachOptions = {}): Promise<AttachmentRecord> {
    const c = await lookUpContainer(this.docker, ref);
    if (!c) throw new Error(`no container "${ref}": start one with docker run --network none ...`);
    if (!c.running || !c.pid) throw new Error(`container ${c.name} is not running: attach needs its network namespace`);
    if (c.networkMode !== "none") throw new Error(`container ${c.name} uses network mode "${c.networkMode}": start it with --network none, as the kubelet did, so that only CNI configures it`);
    const list = await findConfList(this.confDirs, opts.network ?? "cni-shim-default");
    const ifName = opts.ifName ?? "eth0";
    if ((await this.list()).some((a) => a.containerId === c.id && a.network === list.conflist.name)) {
      throw new Error(`container ${c.name} is already attached to ${list.conflist.name}: detach it first`);
    }
    const nsPath = `/proc/${c.pid}/ns/net`;
    const cniArgs: Array<[string, string]> = [
      ["K8S_POD_NAMESPACE", "docker"],
      ["K8S_POD_NAME", c.name],
      ["K8S_POD_INFRA_CONTAINER_ID", c.id],
    ];
    const caps = opts.portMappings?.length ? { portMappings: opts.portMappings } : {};
    // dockershim: loopback first, then the pod network on eth0.
    const loopback = confListFromObject(LOOPBACK_LIST, "built-in loopback");
    const lo = { containerId: c.id, netns: nsPath, ifName: "lo", args: cniArgs };
    await this.runtime.add(loopback, lo);
    let out;
    try {
      out = await this.runtime.add(list, { containerId: c.id, netns: nsPath, ifName, args: cniArgs, capabilityArgs: caps });
    } catch (err) {
      // The runtime rolled the failed chain back; the loopback attachment (and its cache entry) goes too.
      await this.runtime.del(loopback, lo).catch((delErr: Error) => log.warn("could not undo the loopback attachment", { container: c.name, error: delErr.message }));
      throw err;
    }
    const rec: AttachmentRecord = {
      containerId: c.id,
      containerName: c.name,
      network: list.conflist.name,
      conflist: list.bytes.toString("utf8"),
      netns: nsPath,
      ifName,
      portMappings: opts.portMappings ?? [],
      cniArgs,
      result: out.result,
      createdAt: new Date().toISOString(),
    };
    await this.records.put(rec);
    return rec;
  }

  /** DEL the attachment; when the container (and its netns) is gone, DEL in a stand-in netns. */
  async detach(ref: string, network?: string): Promise<AttachmentRecord[]> {
    const c = await lookUpContainer(this.docker, ref);
    const all = await this.list();
    const mine = all.filter((a) => (a.containerId === c?.id || a.containerId === ref || a.containerName === ref) && (!network || a.network === network));
    if (!mine.length) throw new Error(`no cni-shim attachment for "${ref}"${network ? ` on ${network}` : ""}`);
    for (const rec of mine) await this.teardown(rec, c?.running ? c.pid : undefined);
    return mine;
  }

  private async teardown(rec: AttachmentRecord, pid: number | undefined): Promise<void> {
    const list: LoadedConfList = parseConfFile(rec.conflist, `attachment ${rec.containerName}/${rec.network}`);
    // When the namespace died with the container, the DEL runs in a stand-in namespace.
    await convergentDel(this.runtime, {
      list,
      attachment: { containerId: rec.containerId, ifName: rec.ifName, args: rec.cniArgs, capabilityArgs: rec.portMappings.length ? { portMappings: rec.portMappings } : {} },
      result: rec.result,
      liveNetns: pid ? `/proc/${pid}/ns/net` : undefined,
      stagingNetns: `cni-shim-a${rec.containerId.slice(0, 11)}`,
      label: { container: rec.containerName },
    });
    await this.runtime.del(confListFromObject(LOOPBACK_LIST, "built-in loopback"), { containerId: rec.containerId, ifName: "lo", netns: pid ? `/proc/${pid}/ns/net` : undefined, args: rec.cniArgs }).catch(() => undefined);
    await this.records.delete(rec);
    log.info("detached", { container: rec.containerName, network: rec.network });
  }

  /** Attachments whose container is gone or stopped: DEL them. */
  async gc(): Promise<AttachmentRecord[]> {
    const removed: AttachmentRecord[] = [];
    for (const rec of await this.list()) {
      const c = await lookUpContainer(this.docker, rec.containerId);
      if (c?.running && `/proc/${c.pid}/ns/net` === rec.netns) continue;
      await this.teardown(rec, undefined);
      removed.push(rec);
    }
    return removed;
  }
}
