#!/usr/bin/env node
// Benchmark: median wall time of `docker run --rm IMAGE true` on Docker's own bridge, on
// --network none, and on a cni-shim network, in the same run on the same machine, and how much
// of the cni-shim time is spent in CNI plugin execs (from the plugin's own "cni exec" log lines).
// Prints figures; asserts nothing. Usage: node scripts/bench.mjs [runs]
import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { fileURLToPath } from "node:url";

const runs = Number(process.argv[2] ?? 10);
const image = process.env.CNI_SHIM_TEST_IMAGE ?? "cni-shim-busybox:latest";
const dockerCli = existsSync("/usr/bin/docker") ? "/usr/bin/docker" : "docker";
const cli = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const dir = await mkdtemp(join(tmpdir(), "cnishim-bench-"));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const docker = (args) => execa(dockerCli, args, { timeout: 120_000 });

/** A cni-shim process with its own driver name; `logs` collects its JSON log lines. */
async function startPlugin(teardown) {
  const driver = `cnishim-bench-${teardown}-${process.pid}`;
  const socket = `/run/docker/plugins/${driver}.sock`;
  const base = join(dir, teardown);
  const p = { driver, net: `${driver}-net`, logs: "" };
  p.proc = execa("node", [cli, "serve", "--socket", socket, "--state-dir", join(base, "state"), "--cache-dir", join(base, "cache"), "--conf-dir", join(base, "net.d"), "--reconcile-interval", "0", "--teardown", teardown], { reject: false, all: true, buffer: false });
  p.proc.all.on("data", (d) => (p.logs += d));
  const answers = () => new Promise((r) => { const s = createConnection(socket); s.once("connect", () => (s.destroy(), r(true))); s.once("error", () => r(false)); });
  for (let i = 0; i < 100 && !(await answers()); i++) await new Promise((r) => setTimeout(r, 100));
  await docker(["network", "create", "-d", driver, p.net]);
  return p;
}

const plugins = [];
try {
  const bg = await startPlugin("background");
  plugins.push(bg);
  const sync = await startPlugin("sync");
  plugins.push(sync);
  const modes = {
    "docker bridge": { args: ["--network", "bridge"] },
    "--network none": { args: ["--network", "none"] },
    "cni-shim (sync DEL)": { args: ["--network", sync.net], plugin: sync },
    "cni-shim": { args: ["--network", bg.net], plugin: bg },
  };
  const times = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
  const execs = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
  await docker(["run", "--rm", image, "true"]); // warm caches
  for (let i = 0; i < runs; i++) {
    for (const [mode, { args, plugin }] of Object.entries(modes)) {
      const mark = plugin?.logs.length ?? 0;
      const t0 = performance.now();
      await docker(["run", "--rm", ...args, image, "true"]);
      const ms = performance.now() - t0;
      times[mode].push(ms);
      if (plugin) {
        // Only execs that ended inside the timed window count as on the critical path.
        await new Promise((r) => setTimeout(r, 400));
        const lines = plugin.logs.slice(mark).split("\n").filter((l) => l.includes('"cni exec"')).map((l) => JSON.parse(l));
        const end = Date.now() - 400;
        execs[mode].push({ total: lines.reduce((a, l) => a + l.ms, 0), onPath: lines.filter((l) => Date.parse(l.time) <= end).reduce((a, l) => a + l.ms, 0) });
      }
    }
  }
  console.log(`docker run --rm ${image} true, ${runs} runs each, median wall time:`);
  for (const [mode, xs] of Object.entries(times)) {
    let line = `  ${mode.padEnd(22)} ${median(xs).toFixed(0).padStart(6)} ms`;
    if (modes[mode].plugin) {
      const total = median(execs[mode].map((e) => e.total));
      const onPath = median(execs[mode].map((e) => e.onPath));
      line += `   CNI plugin execs ${total.toFixed(0)} ms per run, ${onPath.toFixed(0)} ms of it inside docker run = ${((onPath / median(xs)) * 100).toFixed(0)}%`;
    }
    console.log(line);
  }
} finally {
  for (const p of plugins) {
    await docker(["network", "rm", p.net]).catch(() => undefined);
    p.proc.kill("SIGTERM");
    await p.proc;
  }
  await rm(dir, { recursive: true, force: true });
}
