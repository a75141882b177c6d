import { rm } from "node:fs/promises";
import type { Server } from "node:net";
import v8 from "node:v8";
import vm from "node:vm";
import { createApp, listenUnix } from "../../libnetwork/server.js";
import { settingsHelp } from "../../settings.js";
import { dockerVersion } from "../../docker/engine.js";
import { buildDriver, buildRestartRecovery } from "../../compose.js";
import { parseCommandLine } from "../argv.js";
import { log } from "../../util/log.js";
import { VERSION } from "../../version.js";
import type { Command } from "../command.js";

/** Heap growth past the size at start that is worth a collection once requests stop. */
const HEAP_SLACK_BYTES = 16 * 1024 * 1024;
const IDLE_MS = 1_000;

/**
 * A burst of requests (a flood of hostile 1 MiB bodies: 200+ MB) leaves V8's heap at its
 * high-water mark until it next needs memory, which an idle plugin never does. After a second
 * without requests, when the heap grew, collect once the way V8 does under memory pressure
 * (compacting, shrinking the young generation); ~100 ms, once per burst.
 */
function returnMemoryWhenIdle(server: Server): void {
  const collect = memoryReducingCollection();
  if (!collect) return;
  const baseline = v8.getHeapStatistics().total_heap_size;
  const timer = setTimeout(() => {
    if (v8.getHeapStatistics().total_heap_size > baseline + HEAP_SLACK_BYTES) collect();
  }, IDLE_MS).unref();
  server.on("request", () => timer.refresh());
  server.on("connection", () => timer.refresh());
}

/**
 * v8.queryObjects() (Node >= 20.13) first collects all available garbage, shrinking every heap
 * space; its one-time ExperimentalWarning would be the only non-JSON line of the log. Older Node:
 * a plain full collection (no young-generation shrink) through --expose-gc.
 */
function memoryReducingCollection(): (() => void) | undefined {
  const queryObjects = (v8 as { queryObjects?: (ctor: unknown, options: { format: "count" }) => number }).queryObjects;
  if (queryObjects) {
    class NeverInstantiated {}
    return () => {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kept only to be put back on process below, never called unbound
      const emitWarning = process.emitWarning;
      process.emitWarning = () => {};
      try {
        queryObjects(NeverInstantiated, { format: "count" });
      } finally {
        process.emitWarning = emitWarning;
      }
    };
  }
  try {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  } finally {
    v8.setFlagsFromString("--no-expose-gc");
  }
}

export const serve: Command = {
  name: "serve",
  summary: "run the Docker network plugin (libnetwork remote driver) on a unix socket",
  help: `Usage: cni-shim serve [options]

Serves the libnetwork remote driver API. Docker finds it by the socket's file name:
/run/docker/plugins/cni-shim.sock serves "docker network create -d cni-shim".

Options:
${settingsHelp()}`,
  async run(argv) {
    const { settings } = parseCommandLine(argv, {});
    // Containers Docker failed to start while this plugin was unreachable (dockerd back first)
    // are started again: once Docker answers, shortly after Plugin.Activate (not inside it:
    // Docker waits for that reply) and after each reconciliation.
    const recovery = buildRestartRecovery(settings);
    // The engine's version: what the attach choice assumes before a Join has shown it more.
    const learnEngine = () => void dockerVersion(settings.dockerSocket).then((v) => (v ? driver.choice.setEngine(v) : undefined));
    const driver = buildDriver(settings, {
      activated: () => {
        learnEngine();
        recovery.schedule(3_000);
      },
      reconciled: () => recovery.schedule(0),
    });
    await driver.choice.load();
    await driver.choice.setEngine(await dockerVersion(settings.dockerSocket, 2_000));
    const server = await listenUnix(createApp(driver), settings.socket);
    returnMemoryWhenIdle(server);
    // The signal handlers at once: a client may stop us as soon as the socket answers.
    // Reconciliation every --reconcile-interval (its first run is scheduled below).
    const interval = settings.reconcileIntervalS > 0 ? setInterval(() => driver.scheduleReconcile(0), settings.reconcileIntervalS * 1000) : undefined;
    interval?.unref();
    let stopping = false;
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        stopping = true;
        log.info("shutting down", { signal });
        if (interval) clearInterval(interval);
        recovery.cancel();
        server.close();
        // Background teardowns finish first; Docker's idle connections are not waited for.
        void driver.stop().then(() => resolve());
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    // nodeFlags: packaging/serve-node-flags when started by a launcher of ours (a smaller footprint).
    // sandboxKeys: where Joins open the container's namespace (a managed plugin: in dockerd's view).
    const wanted = driver.choice.decide().kind;
    const keys = await driver.sandboxKeys();
    log.info("cni-shim serving", { version: VERSION, socket: settings.socket, confDir: settings.confDir, cniPath: settings.cniPath.join(":"), stateDir: settings.stateDir, cacheDir: settings.cacheDir, nodeFlags: process.execArgv.join(" "), attach: driver.choice.decide(), sandboxKeys: keys.how });
    if (!keys.open && wanted === "in-sandbox") log.warn("Joins will not see container namespaces: in-sandbox endpoints take the staging hand-out", { why: keys.how });
    if (stopping) return stopped.then(() => rm(settings.socket, { force: true })).then(() => 0);
    // Teardowns an earlier process (or boot) left unfinished; calls that collide wait for them.
    void driver.recover().catch((err: Error) => log.error("recovery of earlier endpoints failed; reconciliation will retry", { error: err.message }));
    // Endpoints Docker dropped while we were down (e.g. dockerd restarted) are found here.
    driver.scheduleReconcile(2_000);
    recovery.whenDockerAnswers();
    await stopped;
    await rm(settings.socket, { force: true });
    return 0;
  },
};
