import { rm } from "node:fs/promises";
import { createApp, listenUnix } from "../../libnetwork/server.js";
import { settingsFromArgv, SETTINGS_TABLE } from "../settings.js";
import { buildDriver } from "../compose.js";
import { log } from "../../util/log.js";
import type { Command } from "../command.js";

export const settingsHelp = SETTINGS_TABLE.map(([flag, env, def, what]) => `  ${flag.padEnd(22)} ${what}\n  ${"".padEnd(22)} env ${env}, default ${def}`).join("\n");

export const serve: Command = {
  name: "serve",
  summary: "run the Docker network plugin (libnetwork remote driver) on a unix socket",
  help: `Usage: cni-shim serve [options]

Serves the libnetwork remote driver API. Docker finds it by the socket's file name:
/run/docker/plugins/cni-shim.sock serves "docker network create -d cni-shim".

Options:
${settingsHelp}`,
  async run(argv) {
    const settings = settingsFromArgv(argv);
    const driver = buildDriver(settings);
    const server = await listenUnix(createApp(driver), settings.socket);
    log.info("cni-shim serving", { socket: settings.socket, confDir: settings.confDir, cniPath: settings.cniPath.join(":"), stateDir: settings.stateDir, cacheDir: settings.cacheDir });
    // Teardowns an earlier process (or boot) left unfinished; calls that collide wait for them.
    void driver.recover().catch((err: Error) => log.error("recovery of earlier endpoints failed; reconciliation will retry", { error: err.message }));
    // Endpoints Docker dropped while we were down (e.g. dockerd restarted) are found here.
    driver.scheduleReconcile(2_000);
    const interval = settings.reconcileIntervalS > 0 ? setInterval(() => driver.scheduleReconcile(0), settings.reconcileIntervalS * 1000) : undefined;
    interval?.unref();
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        log.info("shutting down", { signal });
        if (interval) clearInterval(interval);
        server.close();
        // Background teardowns finish first; Docker's idle connections are not waited for.
        void driver.stop().then(() => resolve());
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });
    await rm(settings.socket, { force: true });
    return 0;
  },
};
