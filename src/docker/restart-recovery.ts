// Containers Docker gave up on while this plugin was unreachable, started again once it serves.
//
// dockerd's restore starts the containers with a restart policy once, at daemon start; when the
// plugin is not up yet (dockerd came back first), their start fails with the plugin unreachable
// and Docker's restart manager does not retry a start that failed there. This asks Docker which
// containers on networks of this driver are in that state (restart-candidates.ts decides) and
// starts them with POST /containers/{id}/start. It runs when serve starts (once Docker answers),
// shortly after Plugin.Activate (never inside it: Docker waits for that reply, and may call it
// from the very restore that is starting containers) and after each reconciliation. Every
// Engine API call is bounded in time; nothing here loads dockerode.
import type { z } from "zod";
import { unixRequest } from "../util/http.js";
import { log } from "../util/log.js";
import { checked } from "../util/zod.js";
import { ContainerList, ContainerRestartView, NetworkList } from "./inspect.js";
import { containersToRestart, type ContainerInspect, type PluginIdentity } from "./restart-candidates.js";

export interface RestartRecoveryOptions {
  dockerSocket: string;
  /** This plugin's socket; its file name without .sock is the driver name. */
  pluginSocket: string;
  /** Each Engine API question (default 10 s). */
  timeoutMs?: number;
  /** Each container start: Docker calls this plugin's CreateEndpoint and Join meanwhile (default 90 s). */
  startTimeoutMs?: number;
  /** Containers started at once (default 4). */
  concurrency?: number;
}

export interface RecoveryReport {
  /** Names of the containers started again. */
  started: string[];
  /** Names of the containers whose start failed, with Docker's answer. */
  failed: Array<{ container: string; error: string }>;
}

export const driverNameOf = (socket: string): string => (socket.split("/").pop() ?? socket).replace(/\.sock$/, "");

const q = (filters: Record<string, string[]>) => encodeURIComponent(JSON.stringify(filters));
const nameOf = (c: { Id: string; Name?: string }) => (c.Name ?? "").replace(/^\//, "") || c.Id.slice(0, 12);

class DockerApiError extends Error {
  constructor(
    readonly status: number,
    what: string,
    body: string,
  ) {
    let message = body.trim();
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      /* not JSON: the text as is */
    }
    super(`${what}: Docker answered ${status}: ${message.slice(0, 500)}`);
  }
}

export class RestartRecovery {
  readonly driver: string;
  private readonly timeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly concurrency: number;
  private timer?: NodeJS.Timeout;
  private waiting?: NodeJS.Timeout;
  private running?: Promise<RecoveryReport>;
  private again = false;
  private stopped = false;
  /** Failures already logged at warn, by container id and error: each is logged once. */
  private readonly reported = new Set<string>();

  constructor(private readonly opts: RestartRecoveryOptions) {
    this.driver = driverNameOf(opts.pluginSocket);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 90_000;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
  }

  /** Run in `delayMs` unless a run is already scheduled. */
  schedule(delayMs: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run().catch((err: Error) => log.warn("restart recovery: Docker could not be asked", { error: err.message }));
    }, delayMs);
    this.timer.unref();
  }

  /**
   * At serve start: wait until Docker answers (every second for half a minute, then every 5 s,
   * for at most `giveUpMs`), then run once. The restore's failed starts are visible by then:
   * dockerd answers its API only after it restored the containers.
   */
  whenDockerAnswers(giveUpMs = 10 * 60_000): void {
    const until = Date.now() + giveUpMs;
    let tries = 0;
    const attempt = async () => {
      this.waiting = undefined;
      if (this.stopped) return;
      if (await this.dockerAnswers()) return this.schedule(0);
      if (Date.now() > until) return log.debug("restart recovery: Docker did not answer; reconciliation will look again");
      this.waiting = setTimeout(() => void attempt(), ++tries < 30 ? 1_000 : 5_000);
      this.waiting.unref();
    };
    void attempt();
  }

  cancel(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.waiting) clearTimeout(this.waiting);
    this.timer = this.waiting = undefined;
  }

  /** One run at a time; a request during a run makes one more run after it. */
  run(): Promise<RecoveryReport> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.runOnce().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.schedule(0);
      }
    });
    return this.running;
  }

  private async dockerAnswers(): Promise<boolean> {
    try {
      return (await unixRequest(this.opts.dockerSocket, "GET", "/_ping", Math.min(this.timeoutMs, 2_000))).status === 200;
    } catch {
      return false;
    }
  }

  private async get<T extends z.ZodType>(path: string, what: string, schema: T): Promise<z.output<T>> {
    const res = await unixRequest(this.opts.dockerSocket, "GET", path, this.timeoutMs);
    if (res.status !== 200) throw new DockerApiError(res.status, what, res.body);
    return checked(`Docker's ${what}`, schema, JSON.parse(res.body));
  }

  private async runOnce(): Promise<RecoveryReport> {
    const report: RecoveryReport = { started: [], failed: [] };
    const networks = (await this.get(`/networks?filters=${q({ driver: [this.driver] })}`, "network list", NetworkList)).filter(
      (n) => n.Driver === undefined || n.Driver === this.driver,
    );
    if (!networks.length) return report;
    const ids = new Set(networks.map((n) => n.Id));
    const names = new Set(networks.map((n) => n.Name));
    // The list carries each container's networks, not its State.Error or restart policy: inspect
    // only the exited ones attached to a network of ours.
    const listed = await this.get(`/containers/json?all=1&filters=${q({ status: ["exited"] })}`, "container list", ContainerList);
    const onOurs = listed.filter(
      (c) => Object.entries(c.NetworkSettings?.Networks ?? {}).some(([name, n]) => names.has(name) || (!!n?.NetworkID && ids.has(n.NetworkID))) || names.has(c.HostConfig?.NetworkMode ?? "") || ids.has(c.HostConfig?.NetworkMode ?? ""),
    );
    const inspected: ContainerInspect[] = [];
    for (const c of onOurs) {
      try {
        inspected.push(await this.get(`/containers/${encodeURIComponent(c.Id)}/json`, "container inspect", ContainerRestartView));
      } catch (err) {
        if ((err as DockerApiError).status !== 404) throw err; // removed meanwhile: nothing to do
      }
    }
    const me: PluginIdentity = { driver: this.driver, socket: this.opts.pluginSocket, networks };
    const todo = containersToRestart(inspected, me);
    let next = 0;
    const worker = async () => {
      while (next < todo.length && !this.stopped) {
        const { container, reason } = todo[next++]!;
        await this.start(container, reason, report);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, todo.length) }, worker));
    return report;
  }

  private async start(c: ContainerInspect, reason: string, report: RecoveryReport): Promise<void> {
    const name = nameOf(c);
    const failedBefore = c.State?.Error ?? "";
    try {
      const res = await unixRequest(this.opts.dockerSocket, "POST", `/containers/${encodeURIComponent(c.Id)}/start`, this.startTimeoutMs);
      // 304: already started (by Docker itself, or someone else) meanwhile.
      if (res.status === 304) return;
      if (res.status !== 204 && res.status !== 200) throw new DockerApiError(res.status, "container start", res.body);
      report.started.push(name);
      log.info("container started again", { container: name, id: c.Id.slice(0, 12), reason, failedBefore });
    } catch (err) {
      const error = (err as Error).message;
      report.failed.push({ container: name, error });
      const key = `${c.Id}\n${error}`;
      if (this.reported.has(key)) return log.debug("container could not be started again", { container: name, id: c.Id.slice(0, 12), error });
      this.reported.add(key);
      log.warn("container could not be started again", { container: name, id: c.Id.slice(0, 12), reason, error });
    }
  }
}
