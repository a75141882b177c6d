#!/usr/bin/env node
// Hostile-request soak (issue 8): floods a real `cni-shim serve` on a temp socket with garbage,
// broken and oversized requests, then checks that every reply was JSON {"Err": ...}, that the
// process survived and that its memory came back down.
//
//   node dist/scripts/soak/fuzz.js [--requests N] [--concurrency C] [--max-rss-mb M] [--timeout-s S]
//                                 [--seed N] [--idle-s S] [--log-level L] [--only CASE,...]
//
// Needs a build (make build: scripts/soak/fuzz.ts is built to dist/scripts/). No root, no Docker: the server gets its own temp
// state/cache/conf dirs, an EMPTY --cni-path (no plugin can ever run) and a --docker-socket that
// does not exist. No request can create anything: CreateEndpoint only names networks that do
// not exist (none is ever created) and every CreateNetwork carries a bad option or no pool.
//
// Prints a table and one line `FUZZ_RESULT {json}`. Exit 1 when the server died or stopped
// answering, any reply was not JSON (or had another content type, a stack trace, or no Err with
// a non-200 status), the flood left state records, RSS after the flood (and --idle-s of quiet)
// is over --max-rss-mb, or --timeout-s ran out; exit 2 on bad arguments. The server is always
// stopped and the temp dir removed.
// The parts are in scripts/soak/fuzz/: the bodies, the cases, their schedule, the raw HTTP, the
// checks on each reply, and the server under test.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { RECORD_KINDS } from "../../src/driver/state.js";
import { loadBodies } from "./fuzz/bodies.js";
import { buildCases } from "./fuzz/cases.js";
import { judge, type Stats } from "./fuzz/judge.js";
import { seed } from "./fuzz/random.js";
import { schedule } from "./fuzz/schedule.js";
import { alive, rssKb, stopServer, waitForSocket } from "./fuzz/server.js";
import { CONTENT_TYPE, exchange, httpRequest, type Spec } from "./fuzz/wire.js";

// dist/scripts/soak/fuzz.js: the repository is three levels up.
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN_JS = join(REPO, "dist/cli/main.js");
const TEMPLATE = join(REPO, "plugin-config/net.d/cni-shim-default.conflist");

// ---- options ------------------------------------------------------------------------------

function options() {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "16" },
      "max-rss-mb": { type: "string", default: "120" },
      "timeout-s": { type: "string", default: "300" },
      "idle-s": { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
      "log-level": { type: "string", default: "info" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1);
    const header = lines.slice(0, lines.findIndex((l) => !l.startsWith("//")));
    process.stdout.write(header.map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
    process.exit(0);
  }
  const num = (name: "requests" | "concurrency" | "max-rss-mb" | "timeout-s" | "idle-s" | "seed", min: number) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) usage(`--${name} must be a number >= ${min}, got "${values[name]}"`);
    return n;
  };
  return {
    requests: Math.floor(num("requests", 1)),
    concurrency: Math.floor(num("concurrency", 1)),
    maxRssMb: num("max-rss-mb", 1),
    timeoutS: num("timeout-s", 10),
    idleS: num("idle-s", 0),
    seed: Math.floor(num("seed", 0)),
    logLevel: values["log-level"],
    only: values.only ? values.only.split(",").filter(Boolean) : undefined,
  };
}

function usage(msg: string): never {
  process.stderr.write(`fuzz: ${msg}\n`);
  process.exit(2);
}

type Options = ReturnType<typeof options>;
type Cases = Record<string, () => Spec>;

// ---- one run against a server -------------------------------------------------------------

/** What a run found: the replies' figures, the server's memory and health, what it left. */
interface Outcome {
  stats: Stats;
  rss: { beforeMb: number; peakMb: number; hwmMb: number; afterMb: number };
  aliveAtEnd: boolean;
  healthyAtEnd: boolean;
  timedOut: boolean;
  interrupted: boolean;
  leftovers: string[];
  startupError?: string;
  floodMs: number;
}

const newStats = (): Stats => ({
  sent: 0,
  responses: 0,
  statuses: {},
  nonJson: 0,
  nonJsonExamples: [],
  noErr: 0,
  noErrExamples: [],
  wrongContentType: 0,
  wrongContentTypeExamples: [],
  stackTraces: 0,
  stackExamples: [],
  closedWithoutResponse: 0,
  connectionErrors: {},
  errorsAfterResponse: {},
  timeouts: 0,
  slowTimeouts: 0,
  largestReply: { bytes: 0 },
  byCase: {},
});

/** `cni-shim serve` on temp dirs, an empty --cni-path and a Docker socket that does not exist. */
async function startServer(dir: string, socketPath: string, logFile: string, logLevel: string): Promise<{ child: ChildProcess; state: string }> {
  const d = { state: join(dir, "state"), cache: join(dir, "cache"), conf: join(dir, "conf"), cniBin: join(dir, "cni-bin-empty") };
  for (const p of Object.values(d)) await mkdir(p, { recursive: true });
  await copyFile(TEMPLATE, join(d.conf, "cni-shim-default.conflist"));
  const logFd = openSync(logFile, "a");
  const args = ["serve", "--socket", socketPath, "--state-dir", d.state, "--cache-dir", d.cache, "--conf-dir", d.conf, "--cni-path", d.cniBin, "--docker-socket", join(dir, "no-docker.sock"), "--reconcile-interval", "0", "--log-level", logLevel];
  const child = spawn(process.execPath, [MAIN_JS, ...args], { stdio: ["ignore", logFd, logFd], env: { ...process.env, CNI_PATH: d.cniBin } });
  closeSync(logFd);
  return { child, state: d.state };
}

/** Flood: `concurrency` workers take the next case until all are sent or time is up. */
async function flood(opt: Options, cases: Cases, socketPath: string, out: Outcome, deadline: number) {
  const only = opt.only;
  const plan = only ? Array.from({ length: opt.requests }, (_, i) => only[i % only.length] as string) : schedule(opt.requests);
  let next = 0;
  const worker = async () => {
    while (next < plan.length && !out.interrupted) {
      if (Date.now() > deadline) {
        out.timedOut = true;
        return;
      }
      const name = plan[next++] as string;
      const spec = (cases[name] as () => Spec)();
      out.stats.sent++;
      (out.stats.byCase[name] ??= { sent: 0, statuses: {}, noResponse: 0 }).sent++;
      const remaining = Math.max(1_000, deadline - Date.now());
      const res = await exchange(socketPath, { ...spec, timeoutMs: Math.min(spec.timeoutMs ?? 15_000, remaining) });
      res.slow = !!spec.slow;
      judge(out.stats, name, res, !!spec.head);
    }
  };
  await Promise.all(Array.from({ length: opt.concurrency }, worker));
}

/** The server's memory over the flood (sampled), after it and --idle-s of quiet; its health; what it left. */
async function floodAndMeasure(opt: Options, cases: Cases, socketPath: string, server: ChildProcess, state: string, out: Outcome, started: number) {
  await new Promise((r) => setTimeout(r, 1_000));
  out.rss.beforeMb = (rssKb(server.pid).rss ?? 0) / 1024;
  for (const name of opt.only ?? []) if (!cases[name]) throw new Error(`--only: no case "${name}" (cases: ${Object.keys(cases).join(", ")})`);
  const sampler = setInterval(() => {
    const r = rssKb(server.pid);
    if (r.rss) out.rss.peakMb = Math.max(out.rss.peakMb, r.rss / 1024);
  }, 100);
  const floodStart = Date.now();
  await flood(opt, cases, socketPath, out, started + opt.timeoutS * 1000);
  out.floodMs = Date.now() - floodStart;
  clearInterval(sampler);
  await new Promise((r) => setTimeout(r, opt.idleS * 1000));
  const r = rssKb(server.pid);
  out.rss.afterMb = (r.rss ?? 0) / 1024;
  out.rss.hwmMb = (r.hwm ?? 0) / 1024;
  out.rss.peakMb = Math.max(out.rss.peakMb, out.rss.afterMb);
  out.aliveAtEnd = alive(server);
  if (out.aliveAtEnd) {
    const h = await exchange(socketPath, { steps: [httpRequest("POST", "/Plugin.Activate", undefined)], timeoutMs: 5_000 });
    out.healthyAtEnd = h.responses[0]?.status === 200;
  }
  // Nothing may have been created: no record of any kind (what the process learnt of its engine,
  // e.g. attach-seen.json, is kept beside them, and is no request's record).
  const records = await Promise.all(RECORD_KINDS.map(async (kind) => (await readdir(join(state, kind)).catch(() => [] as string[])).filter((f) => f.endsWith(".json")).map((f) => join(kind, f))));
  out.leftovers = records.flat();
}

/** The server's log, in figures: lines, lines not JSON, stack frames, and its tail. */
async function readLog(logFile: string, stats: Stats) {
  const logLines = (await readFile(logFile, "utf8").catch(() => "")).split("\n").filter(Boolean);
  stats.logLines = logLines.length;
  stats.logNonJsonLines = logLines.filter((l) => !l.startsWith("{")).length;
  stats.logStackLines = logLines.filter((l) => /^\s+at /.test(l)).length;
  stats.logTail = logLines.slice(-5);
}

/** A server of its own, flooded and measured, always stopped and its temp dir removed. */
async function runAgainstServer(opt: Options, cases: Cases): Promise<Outcome> {
  const dir = await mkdtemp(join(tmpdir(), "cnishim-fuzz-"));
  const socketPath = join(dir, "cni-shim.sock");
  const logFile = join(dir, "serve.log");
  const out: Outcome = { stats: newStats(), rss: { beforeMb: 0, peakMb: 0, hwmMb: 0, afterMb: 0 }, aliveAtEnd: false, healthyAtEnd: false, timedOut: false, interrupted: false, leftovers: [], floodMs: 0 };
  const onSignal = () => void (out.interrupted = true);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const started = Date.now();
  let child: ChildProcess | undefined;
  try {
    const server = await startServer(dir, socketPath, logFile, opt.logLevel);
    child = server.child;
    child.on("error", (err) => (out.startupError = err.message));
    if (!(await waitForSocket(socketPath, child, 20_000))) throw new Error(`cni-shim serve did not answer on ${socketPath} within 20 s${out.startupError ? ` (${out.startupError})` : ""}`);
    await floodAndMeasure(opt, cases, socketPath, child, server.state, out, started);
  } catch (err) {
    out.startupError = err instanceof Error ? err.message : String(err);
  } finally {
    await stopServer(child);
    await readLog(logFile, out.stats);
    await rm(dir, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return out;
}

// ---- verdict and report -------------------------------------------------------------------

function failuresOf(opt: Options, o: Outcome): string[] {
  const { stats, rss } = o;
  const failures = [];
  if (o.startupError) failures.push(o.startupError);
  if (o.interrupted) failures.push("interrupted");
  if (o.timedOut) failures.push(`--timeout-s ${opt.timeoutS} reached after ${stats.sent} requests`);
  if (!o.aliveAtEnd) failures.push("the server process died");
  else if (!o.healthyAtEnd) failures.push("the server no longer answers Plugin.Activate");
  if (stats.nonJson) failures.push(`${stats.nonJson} non-JSON responses`);
  if (stats.noErr) failures.push(`${stats.noErr} non-200 responses without Err`);
  if (stats.wrongContentType) failures.push(`${stats.wrongContentType} responses with another content type than ${CONTENT_TYPE}`);
  if (stats.stackTraces) failures.push(`${stats.stackTraces} responses with a stack trace or HTML`);
  if (rss.afterMb > opt.maxRssMb) failures.push(`RSS after the flood ${rss.afterMb.toFixed(1)} MB > --max-rss-mb ${opt.maxRssMb}`);
  if (o.leftovers.length) failures.push(`the flood left state records: ${o.leftovers.join(", ")}`);
  return failures;
}

/** The FUZZ_RESULT line's object. */
function resultOf(opt: Options, o: Outcome, failures: string[], fixtures: string, combos: number) {
  const { stats, rss } = o;
  return {
    ok: failures.length === 0,
    failures,
    requests: stats.sent,
    responses: stats.responses,
    concurrency: opt.concurrency,
    seed: opt.seed,
    floodSeconds: +(o.floodMs / 1000).toFixed(1),
    statuses: stats.statuses,
    nonJson: stats.nonJson,
    nonJsonExamples: stats.nonJsonExamples,
    non200WithoutErr: stats.noErr,
    noErrExamples: stats.noErrExamples,
    wrongContentType: stats.wrongContentType,
    stackTraces: stats.stackTraces,
    closedWithoutResponse: stats.closedWithoutResponse,
    connectionErrors: stats.connectionErrors,
    errorsAfterResponse: stats.errorsAfterResponse,
    clientTimeouts: stats.timeouts,
    slowlorisTimeouts: stats.slowTimeouts,
    largestReplyBytes: stats.largestReply.bytes,
    alive: o.aliveAtEnd,
    rssMb: { before: +rss.beforeMb.toFixed(1), peak: +rss.peakMb.toFixed(1), hwm: +rss.hwmMb.toFixed(1), after: +rss.afterMb.toFixed(1), limit: opt.maxRssMb },
    log: { lines: stats.logLines, nonJsonLines: stats.logNonJsonLines, stackLines: stats.logStackLines },
    fixtures,
    wrongTypeCombinations: combos,
  };
}

/** The table's rows: the figures that count. */
function rowsOf(opt: Options, o: Outcome, floodSeconds: number): [string, string][] {
  const { stats, rss } = o;
  return [
    ["requests sent", `${stats.sent} (concurrency ${opt.concurrency}, seed ${opt.seed}, ${floodSeconds} s)`],
    ["responses by status", Object.entries(stats.statuses).map(([s, n]) => `${s}: ${n}`).join("  ") || "-"],
    ["non-JSON responses", String(stats.nonJson)],
    ["non-200 without Err", String(stats.noErr)],
    ["wrong content type", String(stats.wrongContentType)],
    ["stack trace / HTML", String(stats.stackTraces)],
    ["closed without reply", String(stats.closedWithoutResponse)],
    ["connection errors", Object.entries(stats.connectionErrors).map(([k, n]) => `${k}: ${n}`).join("  ") || "0"],
    ["client timeouts", `${stats.timeouts} (+ ${stats.slowTimeouts} slowloris, expected)`],
    ["largest reply", `${stats.largestReply.bytes} bytes${stats.largestReply.case ? ` (${stats.largestReply.case})` : ""}`],
    ["server alive at end", o.aliveAtEnd ? (o.healthyAtEnd ? "yes, answering" : "yes, NOT answering") : "NO"],
    ["RSS before/peak/after", `${rss.beforeMb.toFixed(1)} / ${rss.peakMb.toFixed(1)} (VmHWM ${rss.hwmMb.toFixed(1)}) / ${rss.afterMb.toFixed(1)} MB, limit ${opt.maxRssMb}`],
    ["server log", `${stats.logLines} lines, ${stats.logNonJsonLines} not JSON, ${stats.logStackLines} stack frames`],
  ];
}

/** The printed table: the rows, per case, examples of what failed, PASS or FAIL. */
function report(rows: [string, string][], stats: Stats, failures: string[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = [`cni-shim fuzz against ${MAIN_JS}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  out.push("  by case:");
  for (const [name, c] of Object.entries(stats.byCase).sort()) {
    out.push(`    ${name.padEnd(22)} ${String(c.sent).padStart(5)}  ${Object.entries(c.statuses).map(([s, n]) => `${s}:${n}`).join(" ")}${c.noResponse ? `  no reply:${c.noResponse}` : ""}`);
  }
  for (const [title, ex] of [["non-JSON", stats.nonJsonExamples], ["without Err", stats.noErrExamples], ["content type", stats.wrongContentTypeExamples], ["stack trace", stats.stackExamples]] as const) {
    for (const e of ex) out.push(`  example (${title}): ${e}`);
  }
  if (failures.length) {
    out.push("  server log tail:", ...(stats.logTail ?? []).map((l) => `    ${l.slice(0, 300)}`));
    out.push(`FAIL: ${failures.join("; ")}`);
  } else out.push("PASS");
  return out.join("\n") + "\n";
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  const opt = options();
  seed(opt.seed || 1);
  if (!existsSync(MAIN_JS)) usage(`${MAIN_JS} not found: build first with "npx tsc -p tsconfig.json"`);
  const { bodies, source } = loadBodies();
  const { cases, combos } = buildCases(bodies);
  const outcome = await runAgainstServer(opt, cases);
  const failures = failuresOf(opt, outcome);
  const result = resultOf(opt, outcome, failures, source, combos);
  process.stdout.write(report(rowsOf(opt, outcome, result.floodSeconds), outcome.stats, failures));
  process.stdout.write(`FUZZ_RESULT ${JSON.stringify(result)}\n`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
