// What every part of the soak shares: where things are, the engine under test, and the run's
// settings (seed, deadline, IPAM), which soak.ts sets from its command line before any phase runs.
import { existsSync, readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { mulberry32 } from "./random.js";

// dist/scripts/soak/settings.js: the repository is three levels up.
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = join(ROOT, "dist/cli/main.js");
// The node flags every launcher starts `serve` with: the soak runs what ships.
export const SERVE_NODE_FLAGS = readFileSync(join(ROOT, "packaging/serve-node-flags"), "utf8").trim().split(/\s+/);
// The engine under test (scripts/engine.sh run N -- node dist/scripts/soak.js): its own client; 20
// is the system's dockerd.
export const DOCKER = process.env.CNI_SHIM_DOCKER_CLI ?? (existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker");
export const ENGINE = process.env.CNI_SHIM_ENGINE ?? "20";
export const HARNESS = process.env.CNI_SHIM_ENGINE_HARNESS ?? join(ROOT, "scripts/engine.sh");
export const IMAGE = process.env.CNI_SHIM_TEST_IMAGE ?? "cni-shim-busybox:latest";

export type Ipam = "docker" | "null";
const run = { deadline: Infinity, timeoutS: 0, ipam: "docker" as Ipam, random: mulberry32(0) };

/** The run's settings, once, before the first phase. */
export function configure(o: { seed: number; timeoutS: number; ipam: Ipam }) {
  run.random = mulberry32(o.seed); // seeded, so a failing run can be replayed with --seed
  run.timeoutS = o.timeoutS;
  run.deadline = Date.now() + o.timeoutS * 1000;
  run.ipam = o.ipam;
}

export const ipam = () => run.ipam;
export const random = () => run.random();
export const pick = (n: number) => Math.floor(random() * n);
export const pastDeadline = () => Date.now() > run.deadline;
export function checkTime(what: string) {
  if (pastDeadline()) throw new Error(`soak: time limit (${run.timeoutS} s) reached during ${what}`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A unique suffix for names (not seeded: names must not collide with a replayed run's leftovers). */
export const rand = () => randomBytes(3).toString("hex");
export const say = (...a: unknown[]) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}]`, ...a);
export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
