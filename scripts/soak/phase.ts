// What every phase shares: its own plugin and network, and at its end (also after a failure) the
// cleanup a user would do and the leak check against the snapshot taken before it.
import { removeAll } from "./containers.js";
import { dockerdUp } from "./engine.js";
import { settledLeaks, type Leaks, type Snapshot } from "./leak-verdict.js";
import { snapshot } from "./leaks.js";
import { createNetwork, namesOf, removeNetworkLeftovers } from "./network.js";
import { Plugin } from "./plugin.js";
import { errText, rand } from "./settings.js";
import { docker } from "./shell.js";

/** What every phase reports; finishPhase fills the end-of-phase figures. */
export interface PhaseFigures {
  unexpectedFailures: string[];
  leaks: Leaks;
  /** Left at the phase's end but gone within a minute (another plugin's teardown: leaks.ts settledLeaks). */
  leaksCleared?: Leaks;
  seconds: number;
  connectivityFailures?: string[];
  notBack?: string[];
  gcRemoved?: number;
  forcedTeardowns?: number;
  recovered?: number;
  /** Joins done in the container's own namespace (Docker 28+), and hand-outs a Join fell back to. */
  inSandboxJoins?: number;
  /** Joins whose chain ran in the container's namespace and whose interface then went on to Docker (--attach auto on 28+). */
  inSandboxHandedJoins?: number;
  inSandboxFallbacks?: number;
  /** In-sandbox Joins that took the hand-out for a container with a Docker-managed network (or Docker's lists unanswered). */
  inSandboxMixedHandOuts?: number;
}

/** A running phase: its plugin, its network, and every container it made (removed at its end). */
export interface PhaseRun {
  plugin: Plugin;
  net: string;
  containers: string[];
}

/**
 * A phase from start to end: a plugin of its own (--teardown `teardown`, the boot id given) and a
 * network `netPrefix-xxxxxx` on it, then `body`, then finishPhase whatever happened.
 */
export async function runPhase<F extends PhaseFigures>(o: { teardown: string; netPrefix: string; bootId?: string }, fig: F, body: (r: PhaseRun) => Promise<void>): Promise<F> {
  const plugin = new Plugin(o.teardown);
  await plugin.init();
  plugin.bootId = o.bootId;
  await plugin.start();
  const before = await snapshot(plugin);
  const r: PhaseRun = { plugin, net: `${o.netPrefix}-${rand()}`, containers: [] };
  const started = Date.now();
  try {
    await createNetwork(plugin, r.net);
    await body(r);
  } finally {
    await finishPhase(r, fig, before, started);
  }
  return fig;
}

/** Containers and network removed as a user would, the user's gc, then the leak snapshot. */
async function finishPhase({ plugin, net, containers }: PhaseRun, fig: PhaseFigures, before: Snapshot, started: number) {
  await dockerdUp().catch(() => undefined); // a phase that failed half-way may have left it down
  // Removing the network needs the plugin: a network rm it cannot answer leaves the network
  // half-deleted in dockerd, whose pool then collides with the next network's at its restart.
  if (!plugin.running()) await plugin.start().catch((e) => fig.unexpectedFailures.push(`plugin restart for cleanup: ${errText(e)}`));
  await removeAll(containers);
  await plugin.settle().catch((e) => fig.unexpectedFailures.push(`settle: ${errText(e)}`));
  const rmNet = await docker(["network", "rm", net]);
  if (!rmNet.ok) fig.unexpectedFailures.push(`network rm: ${rmNet.err}`);
  const gc = await plugin.gc();
  if (!gc.ok) fig.unexpectedFailures.push(`gc: ${gc.err}`);
  fig.gcRemoved = gc.removed;
  await removeNetworkLeftovers(namesOf(net));
  const { leaks, cleared } = await settledLeaks(before, () => snapshot(plugin));
  fig.leaks = leaks;
  if (Object.keys(cleared).length) fig.leaksCleared = cleared;
  fig.forcedTeardowns = plugin.warnings.forced;
  fig.recovered = plugin.warnings.recovered;
  fig.inSandboxJoins = plugin.attach.inSandboxJoins;
  fig.inSandboxHandedJoins = plugin.attach.handedJoins;
  fig.inSandboxFallbacks = plugin.attach.fallbacks;
  fig.inSandboxMixedHandOuts = plugin.attach.mixedHandOuts;
  fig.seconds = Math.round((Date.now() - started) / 1000);
  await plugin.dispose(!!(fig.unexpectedFailures.length || fig.connectivityFailures?.length || fig.notBack?.length || Object.keys(fig.leaks).length));
}
