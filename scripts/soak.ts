#!/usr/bin/env node
// Fault-injection soak against the real dockerd and the real CNI plugins (make soak).
//
// Phases (each bounded in count and time, each printing figures):
//   cycles   docker run -d / docker rm -f on one cni-shim network, some with -p, while the plugin
//            is kill -9'd at random points (idle, during an in-flight docker run, during a
//            background teardown) and restarted at once, as systemd's Restart=always does.
//   dockerd  --restart always containers; dockerd kill -9'd and restarted N times; each time every
//            container must be back with working networking.
//   dockerd-first  plugin and dockerd both kill -9'd; dockerd restarted first (it tries the
//            restart-policy containers while the plugin is down and gives up on them), the plugin
//            3 s later: it must start them again (src/docker/restart-recovery.ts), with working
//            networking, and leave an unless-stopped container the user stopped alone. Rounds
//            alternate kill -9 of the plugin (socket file left) and a clean stop (socket removed).
//   reboot   the same containers; plugin, dockerd, containerd and the containers killed, then what a
//            reboot wipes is removed (veths, named netns, the network's bridge and iptables state,
//            sandbox mounts) and everything restarted with a new boot id.
//   fuzz     hostile requests straight at the socket (scripts/soak/fuzz.ts).
// --ipam null runs every phase on networks made with --ipam-driver null (the chain's host-local
// picks the addresses; CreateEndpoint replies with them) instead of Docker's IPAM.
// Failures of docker commands that overlapped a kill are expected and counted apart; any other
// failure, any connectivity failure of a running container, any leak after removal and gc makes
// the exit code non-zero.
//
// Network safety: traffic goes only to containers this script created and to 127.0.0.1.
// Built by make build (tsconfig.scripts.json) to dist/scripts/soak.js; one module per phase in
// scripts/soak/ (cycles, dockerd, dockerd-first, reboot; phase.ts has what they share).
import { execa } from "execa";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { dockerdUp } from "./soak/engine.js";
import { cyclesPhase, type CyclesFigures } from "./soak/cycles.js";
import { dockerdFirstPhase, type DockerdFirstFigures } from "./soak/dockerd-first.js";
import { dockerdPhase, type DockerdFigures } from "./soak/dockerd.js";
import type { PhaseFigures } from "./soak/phase.js";
import { rebootPhase, type RebootFigures } from "./soak/reboot.js";
import { CLI, configure, IMAGE, ROOT, say } from "./soak/settings.js";
import { docker, slow } from "./soak/shell.js";

const { values: opt } = parseArgs({
  options: {
    cycles: { type: "string", default: "150" },
    kills: { type: "string", default: "10" },
    teardown: { type: "string", default: "both" },
    "dockerd-kills": { type: "string", default: "3" },
    "dockerd-first": { type: "string", default: "2" },
    reboot: { type: "string", default: "1" },
    fuzz: { type: "string", default: "10000" },
    "timeout-s": { type: "string", default: "3600" },
    phases: { type: "string", default: "cycles,dockerd,dockerd-first,reboot,fuzz" },
    seed: { type: "string" },
    // "null": every network is made with --ipam-driver null on a conflist of the soak's own
    // (bridge + host-local + portmap + firewall): the chain's IPAM picks the addresses.
    ipam: { type: "string", default: "docker" },
  },
});
if (opt.ipam !== "docker" && opt.ipam !== "null") throw new Error(`--ipam must be docker or null, got "${opt.ipam}"`);
const phases = new Set(opt.phases.split(","));
const seedUsed = Number(opt.seed ?? Date.now() % 1e9);
configure({ seed: seedUsed, timeoutS: Number(opt["timeout-s"]), ipam: opt.ipam });

type FuzzFigures = { exitCode: number | undefined } & Record<string, unknown>;
type Figures = CyclesFigures | DockerdFigures | DockerdFirstFigures | RebootFigures | FuzzFigures;

/** Phase "fuzz": hostile requests straight at a socket (scripts/soak/fuzz.ts, its own process). */
async function fuzzPhase(n: number): Promise<FuzzFigures> {
  const r = await execa("node", [join(ROOT, "dist/scripts/soak/fuzz.js"), "--requests", String(n)], { reject: false, all: true, timeout: 600_000 });
  process.stdout.write(r.all + "\n");
  const line = String(r.all).split("\n").find((l) => l.startsWith("FUZZ_RESULT "));
  return { exitCode: r.exitCode, ...(line ? (JSON.parse(line.slice("FUZZ_RESULT ".length)) as Record<string, unknown>) : { error: "no FUZZ_RESULT line" }) };
}

/** A phase's verdict: anything unexpected, not back, or leaked fails the soak. */
const bad = (f: PhaseFigures) => !!(f.unexpectedFailures.length || f.connectivityFailures?.length || f.notBack?.length || Object.keys(f.leaks).length);

/** One phase: announced, run, its figures printed and kept; true when it failed. */
async function phase<F extends Figures>(results: Record<string, Figures>, key: string, announce: string, run: () => Promise<F>, failed: (f: F) => boolean): Promise<boolean> {
  say(announce);
  const f = await run();
  results[key] = f;
  if (key !== "fuzz") say(JSON.stringify(f));
  return failed(f);
}

/** The phases --phases names, in order; true when one failed. */
async function runPhases(results: Record<string, Figures>): Promise<boolean> {
  let failed = false;
  const kills = Number(opt.kills);
  if (phases.has("cycles")) {
    for (const mode of opt.teardown === "both" ? ["background", "sync"] : [opt.teardown]) {
      const announce = `cycles: ${opt.cycles} cycles, at least ${opt.kills} kills, teardown ${mode}`;
      failed = (await phase(results, `cycles-${mode}`, announce, () => cyclesPhase(mode, Number(opt.cycles), kills), (f) => bad(f) || (f.kills < kills && !f.stoppedAtTimeLimit))) || failed;
    }
  }
  if (phases.has("dockerd") && Number(opt["dockerd-kills"]) > 0) {
    failed = (await phase(results, "dockerd", `dockerd: ${opt["dockerd-kills"]} kill -9s with --restart always containers`, () => dockerdPhase(Number(opt["dockerd-kills"])), bad)) || failed;
  }
  if (phases.has("dockerd-first") && Number(opt["dockerd-first"]) > 0) {
    const announce = `dockerd-first: ${opt["dockerd-first"]} round(s) of plugin (kill -9, then a clean stop) and dockerd kill -9, dockerd back 3 s before the plugin`;
    failed = (await phase(results, "dockerd-first", announce, () => dockerdFirstPhase(Number(opt["dockerd-first"])), bad)) || failed;
  }
  if (phases.has("reboot") && Number(opt.reboot) > 0) {
    failed = (await phase(results, "reboot", "reboot: simulated power cycle with --restart always containers", rebootPhase, bad)) || failed;
  }
  if (phases.has("fuzz") && Number(opt.fuzz) > 0) {
    failed = (await phase(results, "fuzz", `fuzz: ${opt.fuzz} hostile requests`, () => fuzzPhase(Number(opt.fuzz)), (f) => f.exitCode !== 0)) || failed;
  }
  return failed;
}

/** A phase's line of the summary. */
function summaryLine(k: string, figures: Figures): string {
  if (k.startsWith("cycles")) {
    const f = figures as CyclesFigures;
    return `  ${k.padEnd(18)} cycles ${f.cycles}, docker cmds ${f.dockerCommands}, kill -9 ${f.kills} (in-flight run ${f.killsInFlightRun}, during teardown ${f.killsDuringTeardown}), expected failures ${f.expectedFailures}, unexpected ${f.unexpectedFailures.length}, connectivity checks ${f.connectivityChecks} / failures ${f.connectivityFailures.length}, forced teardowns ${f.forcedTeardowns}, joins in the container's namespace ${f.inSandboxJoins ?? 0}, there then handed to Docker ${f.inSandboxHandedJoins ?? 0} (hand-out fall-backs ${f.inSandboxFallbacks ?? 0}, for mixed networks ${f.inSandboxMixedHandOuts ?? 0}), leaks ${Object.keys(f.leaks).length}, ${f.seconds} s${f.stoppedAtTimeLimit ? " (stopped at the time limit)" : ""}`;
  }
  if (k === "dockerd-first") {
    const f = figures as DockerdFirstFigures;
    return `  ${k.padEnd(18)} rounds ${f.rounds}, failed at restore while the plugin was down ${f.failedWhileDown}, not tried by Docker (left stopped) ${f.notTriedByDocker.length}, back with networking ${f.back}/${f.tried} (started by the plugin ${f.startedByPlugin}; s to back ${f.secondsToBack.join(", ")}), user-stopped stayed stopped ${f.userStoppedStayedStopped}/${f.rounds}, fresh runs ok ${f.freshRunOk}, unexpected ${f.unexpectedFailures.length}, leaks ${Object.keys(f.leaks).length}, ${f.seconds} s`;
  }
  if (k === "fuzz") return `  ${k.padEnd(18)} exit ${(figures as FuzzFigures).exitCode}: ${JSON.stringify(figures)}`;
  const f = figures as DockerdFigures | RebootFigures;
  return `  ${k.padEnd(18)} ${f.dockerdKills !== undefined ? `dockerd kill -9 ${f.dockerdKills}, ` : ""}containers back with networking ${f.back}/${f.containers * (f.dockerdKills ?? 1)}, fresh runs ok ${f.freshRunOk}, unexpected ${f.unexpectedFailures.length}, leaks ${Object.keys(f.leaks).length}, ${f.seconds} s`;
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error("soak: must run as root");
  await access(CLI).catch(() => {
    throw new Error(`${CLI} missing: run make build`);
  });
  await dockerdUp();
  if (!(await docker(["image", "inspect", IMAGE])).ok) throw new Error(`image ${IMAGE} missing: run scripts/test-image.sh`);
  say(`seed ${seedUsed} (replay with --seed ${seedUsed})`);
  const results: Record<string, Figures> = {};
  const failed = await runPhases(results);
  console.log("\nSOAK SUMMARY");
  for (const [k, figures] of Object.entries(results)) console.log(summaryLine(k, figures));
  if (slow.length) console.log(`  slow docker commands (> 3 s): ${slow.length}; first: ${slow.slice(0, 5).join("; ")}`);
  console.log(`SOAK_RESULT ${JSON.stringify({ ok: !failed, seed: seedUsed, results })}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(2);
  },
);
