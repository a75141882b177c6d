// A `cni-shim serve` of the soak's own (temp state, cache and conf dirs), as systemd would run it:
// started, kill -9'd or stopped, restarted; its log lines counted (forced teardowns, recoveries,
// containers it started again, where Joins happened).
import { execa, type ResultPromise } from "execa";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketAnswers, unixRequest } from "../../src/util/http.js";
import { CLI, SERVE_NODE_FLAGS, rand, say, sleep } from "./settings.js";
import { sh, type ShResult } from "./shell.js";
import { countAttach, noAttachCounts } from "./attach-counts.js";

export class Plugin {
  readonly driver = `cnishim-soak-${rand()}`;
  readonly socket = `/run/docker/plugins/${this.driver}.sock`;
  kills = 0;
  bootId: string | undefined;
  readonly logTail: string[] = [];
  readonly warnings = { forced: 0, recovered: 0, restarted: 0 };
  /** Which attach path the endpoints took (the plugin's log: attach-counts.ts). */
  readonly attach = noAttachCounts();
  base = "";
  stateDir = "";
  cacheDir = "";
  confDir = "";
  child: ResultPromise<{ reject: false; all: true; buffer: false }> | undefined;
  logFile: WriteStream | undefined;

  constructor(readonly teardown: string) {}

  async init() {
    this.base = await mkdtemp(join(tmpdir(), `${this.driver}-`));
    this.stateDir = join(this.base, "state");
    this.cacheDir = join(this.base, "cache");
    this.confDir = join(this.base, "net.d");
  }
  args() {
    return [...SERVE_NODE_FLAGS, CLI, "serve", "--socket", this.socket, "--state-dir", this.stateDir, "--cache-dir", this.cacheDir, "--conf-dir", this.confDir, "--reconcile-interval", "0", "--teardown", this.teardown];
  }
  async start() {
    const env = this.bootId ? { ...process.env, CNI_SHIM_BOOT_ID: this.bootId } : process.env;
    const child = execa("node", this.args(), { reject: false, all: true, buffer: false, env });
    this.child = child;
    const logFile = (this.logFile ??= createWriteStream(join(tmpdir(), `${this.driver}.log`)));
    child.all.on("data", (d: Buffer) => {
      logFile.write(d);
      for (const line of d.toString().split("\n").filter(Boolean)) this.count(line);
    });
    for (let i = 0; i < 150; i++) {
      if (await socketAnswers(this.socket)) return;
      await sleep(100);
    }
    throw new Error(`plugin did not start:\n${this.logTail.slice(-20).join("\n")}`);
  }
  /** One line of the plugin's log: the figures it feeds, and the tail kept for failures. */
  private count(line: string) {
    if (line.includes('"teardown forced')) this.warnings.forced++;
    if (line.includes('"recovering endpoint')) this.warnings.recovered++;
    if (line.includes('"container started again"')) this.warnings.restarted++;
    countAttach(this.attach, line);
    this.logTail.push(line);
    if (this.logTail.length > 200) this.logTail.shift();
  }
  running(): boolean {
    return !!this.child && this.child.exitCode === null;
  }
  async kill9() {
    if (!this.child || !this.running()) return;
    this.child.kill("SIGKILL");
    await this.child;
    this.kills++;
  }
  async stop() {
    if (!this.child || !this.running()) return;
    this.child.kill("SIGTERM");
    await Promise.race([this.child, sleep(30_000)]);
    if (this.running()) await this.kill9();
  }
  async settle() {
    const r = await unixRequest(this.socket, "POST", "/CniShim.Settle", 120_000, "{}");
    if (r.status !== 200) throw new Error(`settle: ${r.status} ${r.body}`);
  }
  /**
   * The user's cleanup command, run with the plugin stopped and no grace (the serving plugin
   * keeps endpoints younger than --reconcile-grace: Docker may be mid-start). Returns what it
   * removed: endpoints Docker forgot, e.g. when a kill broke a docker run for good.
   */
  async gc(): Promise<ShResult & { removed: number }> {
    await this.stop();
    const r = await sh("node", [CLI, "gc", "--socket", `${this.socket}.stopped`, "--state-dir", this.stateDir, "--cache-dir", this.cacheDir, "--conf-dir", this.confDir, "--reconcile-grace", "0", "--log-level", "error"], { timeoutMs: 300_000 });
    let removed = 0;
    try {
      const rep = JSON.parse(r.out) as { endpointsRemoved?: unknown[]; cacheEntriesRemoved?: number };
      removed = (rep.endpointsRemoved?.length ?? 0) + (rep.cacheEntriesRemoved ?? 0);
    } catch {
      /* reported as a failure below */
    }
    return { ...r, removed };
  }
  async records() {
    const list = async (kind: string) => (await readdir(join(this.stateDir, kind)).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
    return { endpoints: await list("endpoints"), networks: await list("networks") };
  }
  async dispose(keepLog: boolean) {
    await this.stop();
    this.logFile?.end();
    if (!keepLog) await rm(join(tmpdir(), `${this.driver}.log`), { force: true });
    else say(`plugin log kept: ${join(tmpdir(), `${this.driver}.log`)}`);
    await rm(this.base, { recursive: true, force: true });
  }
}
