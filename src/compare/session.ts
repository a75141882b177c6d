// What every step of one compare run shares: its id and label, the Docker client, the cleanup
// (every container and network is registered before it is created), the abort check and the
// probe's port. Containers and networks are removed only when they carry this run's label.
import { randomBytes } from "node:crypto";
import type Docker from "dockerode";
import type { PortMapping } from "../cni/schemas.js";
import { inspectContainer, inspectNetwork } from "../docker/inspect.js";
import type { Cleanup } from "./cleanup.js";
import { PROBE_PAGE } from "./reach.js";

/** Label on every container and network compare creates (value: the run id). */
export const LABEL = "io.cni-shim.compare";

export interface Started {
  id: string;
  name: string;
}

/** The probe's port inside the containers and how it is published. */
export interface ProbePort {
  containerPort: number;
  protocol: PortMapping["protocol"];
  hostIP?: string;
}

export const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** Docker's own message with what compare was doing (dockerode prefixes "(HTTP code 500) ..."). */
export function failed(what: string, err: unknown): Error {
  const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
  return new Error(`${what}: ${message.replace(/^\(HTTP code \d+\) [^-]*- /, "").trim()}`);
}

export class CompareSession {
  readonly runId = randomBytes(3).toString("hex");
  /** Name prefix of everything the run creates. */
  readonly prefix = `cs-cmp-${this.runId}`;
  private readonly labels = { [LABEL]: this.runId };

  constructor(
    readonly docker: Docker,
    readonly image: string,
    readonly port: ProbePort,
    readonly cleanup: Cleanup,
    readonly progress: (msg: string) => void,
    private readonly signal: AbortSignal,
  ) {}

  /** Stop between steps once the user asked to (Ctrl-C). */
  check(): void {
    if (this.signal.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new Error("interrupted");
  }

  /** How a column publishes the probe port on `hostPort` through CNI (portmap). */
  publishOf(hostPort: number): PortMapping {
    const { containerPort, protocol, hostIP } = this.port;
    return { hostPort, containerPort, protocol, ...(hostIP ? { hostIP } : {}) };
  }

  /** A probe (httpd serving PROBE_PAGE, published through Docker when hostPort is given) or a peer. */
  async startContainer(name: string, network: string, role: "probe" | "peer", hostPort?: number): Promise<Started> {
    this.check();
    this.cleanup.add(`container ${name}`, () => this.removeContainer(name));
    const { containerPort, protocol, hostIP } = this.port;
    const key = `${containerPort}/${protocol}`;
    const publish = role === "probe" && network !== "none" && hostPort !== undefined;
    const dir = "/tmp/cni-shim-compare";
    const cmd = role === "probe" ? ["sh", "-c", `mkdir -p ${dir} && echo '${PROBE_PAGE}' > ${dir}/index.html && exec httpd -f -p ${containerPort} -h ${dir}`] : ["sleep", "3600"];
    const spec = {
      name,
      Image: this.image,
      Cmd: cmd,
      Labels: this.labels,
      ...(publish ? { ExposedPorts: { [key]: {} } } : {}),
      HostConfig: { NetworkMode: network, ...(publish ? { PortBindings: { [key]: [{ HostIp: hostIP ?? "", HostPort: String(hostPort) }] } } : {}) },
    };
    const c = await this.docker.createContainer(spec).catch((err) => Promise.reject(failed(`docker create ${name}`, err)));
    await c.start().catch((err) => Promise.reject(failed(`docker start ${name} (network ${network})`, err)));
    return { id: c.id, name };
  }

  async createNetwork(name: string, spec: Record<string, unknown>): Promise<string> {
    this.check();
    this.cleanup.add(`network ${name}`, () => this.removeNetwork(name));
    const net = await this.docker.createNetwork({ Name: name, CheckDuplicate: true, Labels: this.labels, ...spec }).catch((err) => Promise.reject(failed(`docker network create -d ${spec.Driver as string} ${name}`, err)));
    return net.id;
  }

  private async removeContainer(name: string): Promise<void> {
    try {
      const info = await inspectContainer(this.docker, name);
      if (info.Config.Labels?.[LABEL] !== this.runId) return;
      await this.docker.getContainer(info.Id).remove({ force: true });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  private async removeNetwork(name: string): Promise<void> {
    try {
      const info = await inspectNetwork(this.docker, name);
      if (info.Labels?.[LABEL] !== this.runId) return;
      await this.docker.getNetwork(info.Id).remove();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }
}
