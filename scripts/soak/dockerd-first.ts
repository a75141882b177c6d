// Phase "dockerd-first": plugin and dockerd both down; dockerd restarted first (it tries the
// restart-policy containers while the plugin is down and gives up on them), the plugin 3 s later:
// it must start them again (src/docker/restart-recovery.ts), with working networking, and leave an
// unless-stopped container the user stopped alone. Rounds alternate kill -9 of the plugin (socket
// file left) and a clean stop (socket removed).
import { allBack, freshRun, httpd, restartSet, running, stateOf, type BackFigures, type Container } from "./containers.js";
import { dockerdUp, killDockerd } from "./engine.js";
import { runPhase, type PhaseFigures, type PhaseRun } from "./phase.js";
import { checkTime, DOCKER, IMAGE, rand, sleep } from "./settings.js";
import { docker, must } from "./shell.js";

export interface DockerdFirstFigures extends PhaseFigures, BackFigures {
  back: number;
  notBack: string[];
  rounds: number;
  containers: number;
  tried: number;
  failedWhileDown: number;
  errorsSeen: string[];
  notTriedByDocker: string[];
  secondsToBack: number[];
  startedByPlugin: number;
  userStoppedStayedStopped: number;
  freshRunOk: number;
}

/** The restart set plus an unless-stopped and an on-failure container, and one the user stopped. */
async function containersOfPhase(r: PhaseRun): Promise<{ set: Container[]; stopped: string }> {
  const set = await restartSet(r.net, r.containers); // three --restart always, one with a published port
  for (const policy of ["unless-stopped", "on-failure"]) {
    const name = `soak-df-${policy}-${rand()}`;
    r.containers.push(name);
    await must(DOCKER, ["run", "-d", "--restart", policy, "--name", name, "--network", r.net, IMAGE, ...httpd]);
    set.push({ name, port: 0 });
  }
  // An unless-stopped container the user stopped: it must stay stopped.
  const stopped = `soak-df-user-stopped-${rand()}`;
  r.containers.push(stopped);
  await must(DOCKER, ["run", "-d", "--restart", "unless-stopped", "--name", stopped, "--network", r.net, IMAGE, ...httpd]);
  await must(DOCKER, ["stop", "-t", "1", stopped]);
  return { set, stopped };
}

/**
 * Waits until Docker has tried each restart-policy container (running, or failed with the plugin
 * unreachable). Docker 20.10 retries each attempt for 15 s, one container after the other, and
 * answers its API only once its restore has tried them all; an engine that answers earlier gets
 * 45 s more. Docker 20.10's restore stops containers it finds alive (without live-restore) through
 * its kill path, which marks them stopped by hand: it restarts `always` and `on-failure` ones, not
 * `unless-stopped` ones. Those it does not try must stay as Docker left them.
 */
async function dockerTries(set: Container[], fig: DockerdFirstFigures): Promise<{ tried: Container[]; untried: string[] }> {
  const until = Date.now() + 45_000;
  const tried: Container[] = [];
  const untried: string[] = [];
  for (const c of set) {
    let st = await stateOf(c.name);
    while (!st.Running && !st.Error && Date.now() < until) {
      await sleep(500);
      st = await stateOf(c.name);
    }
    if (!st.Running && st.Error) {
      fig.failedWhileDown++;
      if (!fig.errorsSeen.includes(st.Error)) fig.errorsSeen.push(st.Error);
    }
    if (st.Running || st.Error) tried.push(c);
    else untried.push(c.name);
  }
  fig.notTriedByDocker.push(...untried);
  fig.tried += tried.length;
  return { tried, untried };
}

/** After the plugin's recovery: the user's stop holds, and what Docker did not try stays stopped. */
async function leftAlone(r: PhaseRun, set: Container[], stopped: string, untried: string[], fig: DockerdFirstFigures, round: number) {
  await sleep(2_000); // the plugin's recovery has run
  if (await running(stopped)) fig.notBack.push(`round ${round}: ${stopped} (unless-stopped, stopped by the user) was started`);
  else fig.userStoppedStayedStopped++;
  for (const n of untried) if (await running(n)) fig.notBack.push(`round ${round}: ${n} was started although Docker did not try it`);
  // Docker's own restore (plugin up) starts the untried ones no more than we do: bring them
  // back by hand for the next round.
  for (const n of untried) await docker(["start", n]);
  if (untried.length) await allBack(set.filter((c) => untried.includes(c.name)), r.net, { notBack: fig.unexpectedFailures, back: 0 }, `started by hand after round ${round}`);
}

async function round(r: PhaseRun, set: Container[], stopped: string, fig: DockerdFirstFigures, i: number) {
  checkTime(`dockerd-first round ${i}`);
  fig.rounds++;
  // Odd rounds kill the plugin (its socket file stays: "connection refused"), even ones stop
  // it cleanly (serve removes its socket: "plugin not found").
  if (i % 2 === 0) await r.plugin.kill9();
  else await r.plugin.stop();
  await killDockerd({ alsoContainerd: false });
  await dockerdUp();
  const { tried, untried } = await dockerTries(set, fig);
  await sleep(3_000);
  const t0 = Date.now();
  await r.plugin.start();
  await allBack(tried, r.net, fig, `after round ${i + 1}`);
  fig.secondsToBack.push(Math.round((Date.now() - t0) / 100) / 10);
  await leftAlone(r, set, stopped, untried, fig, i + 1);
  await freshRun(r.net, "soak-df-fresh", r.containers, fig, `fresh run after round ${i + 1}`);
}

export async function dockerdFirstPhase(rounds: number): Promise<DockerdFirstFigures> {
  const fig: DockerdFirstFigures = { rounds: 0, containers: 0, tried: 0, failedWhileDown: 0, errorsSeen: [], notTriedByDocker: [], back: 0, notBack: [], secondsToBack: [], startedByPlugin: 0, userStoppedStayedStopped: 0, freshRunOk: 0, unexpectedFailures: [], leaks: {}, seconds: 0 };
  return runPhase({ teardown: "background", netPrefix: "soak-df" }, fig, async (r) => {
    const { set, stopped } = await containersOfPhase(r);
    fig.containers = set.length;
    await allBack(set, r.net, fig, "before");
    fig.back = 0;
    for (let i = 0; i < rounds; i++) await round(r, set, stopped, fig, i);
    fig.startedByPlugin = r.plugin.warnings.restarted;
  });
}
