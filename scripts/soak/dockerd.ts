// Phase "dockerd": --restart always containers; dockerd kill -9'd and restarted N times; each time
// every container must be back with working networking, and a new one must start.
import { allBack, freshRun, restartSet, type BackFigures } from "./containers.js";
import { dockerdUp, killDockerd } from "./engine.js";
import { runPhase, type PhaseFigures } from "./phase.js";
import { checkTime } from "./settings.js";

export interface DockerdFigures extends PhaseFigures, BackFigures {
  back: number;
  notBack: string[];
  dockerdKills: number;
  containers: number;
  freshRunOk: number;
}

export async function dockerdPhase(kills: number): Promise<DockerdFigures> {
  const fig: DockerdFigures = { dockerdKills: 0, containers: 3, back: 0, notBack: [], freshRunOk: 0, unexpectedFailures: [], leaks: {}, seconds: 0 };
  return runPhase({ teardown: "background", netPrefix: "soak-dk" }, fig, async (r) => {
    const set = await restartSet(r.net, r.containers);
    await allBack(set, r.net, fig, "before");
    fig.back = 0;
    for (let i = 0; i < kills; i++) {
      checkTime(`dockerd kill ${i}`);
      await killDockerd({ alsoContainerd: false });
      fig.dockerdKills++;
      await dockerdUp();
      await allBack(set, r.net, fig, `after dockerd kill ${i + 1}`);
      await freshRun(r.net, "soak-dk-fresh", r.containers, fig, `fresh run after dockerd kill ${i + 1}`);
    }
  });
}
