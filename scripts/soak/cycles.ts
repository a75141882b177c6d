// Phase "cycles": docker run -d / docker rm -f on one network, some with -p, while the plugin is
// kill -9'd at random points (idle, during an in-flight docker run, during a background teardown)
// and restarted at once, as systemd's Restart=always does. Every running container must answer.
import { httpd, reachable, running } from "./containers.js";
import { runPhase, type PhaseFigures, type PhaseRun } from "./phase.js";
import { IMAGE, pastDeadline, pick, random, rand, sleep } from "./settings.js";
import { docker, type ShResult } from "./shell.js";

export interface CyclesFigures extends PhaseFigures {
  teardown: string;
  cycles: number;
  dockerCommands: number;
  kills: number;
  killsInFlightRun: number;
  killsDuringTeardown: number;
  expectedFailures: number;
  connectivityChecks: number;
  connectivityFailures: string[];
  stoppedAtTimeLimit?: boolean;
}
type KillKind = "killsInFlightRun" | "killsDuringTeardown";
const KILL_KINDS = ["killsInFlightRun", "killsDuringTeardown", undefined] as const;

/** The cycles of one phase: the containers alive and the kill windows docker failures may overlap. */
class Cycles {
  private readonly alive = new Map<string, number>(); // name -> published host port (or 0)
  private readonly killWindows: [number, number][] = [];
  private port = 20000 + pick(20000);

  constructor(
    private readonly r: PhaseRun,
    private readonly fig: CyclesFigures,
    private readonly killEvery: number,
  ) {}

  async killAndRestart(kind: KillKind | undefined) {
    const k0 = Date.now();
    await this.r.plugin.kill9();
    this.fig.kills++;
    if (kind) this.fig[kind]++;
    await this.r.plugin.start();
    this.killWindows.push([k0, Date.now()]);
  }

  /** A docker command; its failure is expected when it overlapped a kill. */
  private async cmd(args: string[], what: string): Promise<ShResult> {
    const t0 = Date.now();
    const r = await docker(args, { timeoutMs: 120_000 });
    this.fig.dockerCommands++;
    if (!r.ok) {
      const t1 = Date.now();
      if (this.killWindows.some(([k0, k1]) => k0 <= t1 && t0 <= k1)) this.fig.expectedFailures++;
      else this.fig.unexpectedFailures.push(`${what}: ${r.err.slice(0, 400)}`);
    }
    return r;
  }

  async cycle(i: number) {
    this.fig.cycles++;
    const name = `soak-${rand()}`;
    this.r.containers.push(name);
    const publish = pick(3); // 0: none, 1: -p PORT:80, 2: -p 80
    const scheduled = i % this.killEvery === this.killEvery - 1 || random() < 0.03;
    const kind = scheduled ? KILL_KINDS[pick(3)] : undefined;
    await this.start(name, publish, kind, scheduled);
    await this.removeSome(kind);
    await this.checkAll();
  }

  /** docker run, with the plugin kill -9'd during it or right after when scheduled so. */
  private async start(name: string, publish: number, kind: KillKind | undefined, scheduled: boolean) {
    const hostPort = publish === 1 ? ++this.port : 0;
    const args = ["run", "-d", "--name", name, "--network", this.r.net, ...(publish === 1 ? ["-p", `${hostPort}:80`] : publish === 2 ? ["-p", "80"] : []), IMAGE, ...httpd];
    let run: ShResult;
    if (kind === "killsInFlightRun") {
      const p = this.cmd(args, `run ${name}`);
      await sleep(30 + pick(400));
      await this.killAndRestart(kind);
      run = await p;
    } else {
      run = await this.cmd(args, `run ${name}`);
      if (scheduled && kind === undefined) await this.killAndRestart(undefined);
    }
    if (run.ok && (await running(name))) this.alive.set(name, publish === 2 ? await publishedPort(name) : hostPort);
    else await docker(["rm", "-f", name], { timeoutMs: 120_000 });
  }

  /** Removes one or two at random; sometimes kills the plugin while their teardown runs. */
  private async removeSome(kind: KillKind | undefined) {
    if (this.alive.size > 4 || (this.alive.size && random() < 0.4)) {
      const victims = [...this.alive.keys()].sort(() => random() - 0.5).slice(0, 1 + pick(2));
      const rms = victims.map((v) => this.cmd(["rm", "-f", v], `rm ${v}`));
      for (const v of victims) this.alive.delete(v);
      if (kind === "killsDuringTeardown") {
        await sleep(pick(150));
        await this.killAndRestart(kind);
      }
      await Promise.all(rms);
    } else if (kind === "killsDuringTeardown") {
      await this.killAndRestart(kind);
    }
  }

  /** Every running container must answer, directly and on its published port. */
  private async checkAll() {
    for (const [c, p] of this.alive) {
      if (!(await running(c))) {
        this.fig.connectivityFailures.push(`${c}: not running any more`);
        this.alive.delete(c);
        continue;
      }
      this.fig.connectivityChecks++;
      const bad = await reachable(c, this.r.net, p);
      if (bad) this.fig.connectivityFailures.push(bad);
    }
  }
}

/** The host port Docker picked for `-p 80`. */
async function publishedPort(name: string): Promise<number> {
  const r = await docker(["port", name, "80/tcp"]);
  return r.ok ? Number(r.out.split("\n")[0]?.split(":").pop()) : 0;
}

export async function cyclesPhase(teardown: string, cycles: number, minKills: number): Promise<CyclesFigures> {
  const fig: CyclesFigures = { teardown, cycles: 0, dockerCommands: 0, kills: 0, killsInFlightRun: 0, killsDuringTeardown: 0, expectedFailures: 0, unexpectedFailures: [], connectivityChecks: 0, connectivityFailures: [], forcedTeardowns: 0, recovered: 0, leaks: {}, seconds: 0 };
  return runPhase({ teardown, netPrefix: `soak-${teardown}` }, fig, async (r) => {
    // Spread the kills over the run so each kind happens; more come at random.
    const run = new Cycles(r, fig, Math.max(1, Math.floor(cycles / Math.max(1, minKills))));
    for (let i = 0; i < cycles; i++) {
      // Out of time: stop cycling (the figures so far stand, marked), then clean up and check.
      if (pastDeadline()) {
        fig.stoppedAtTimeLimit = true;
        break;
      }
      await run.cycle(i);
    }
    while (fig.kills < minKills && !fig.stoppedAtTimeLimit) await run.killAndRestart(undefined);
  });
}
