import { parseArgs } from "node:util";
import { request } from "node:http";
import { resolveSettings, settingFlags, confDirs } from "../settings.js";
import { buildDriver, buildRuntime } from "../compose.js";
import { Attacher } from "../../attach/attach.js";
import { dockerClient } from "../../docker/client.js";
import type { ReconcileReport } from "../../driver/driver.js";
import { settingsHelp } from "./serve.js";
import { setLogLevel } from "../../util/log.js";
import type { Command } from "../command.js";

/** Ask the running plugin to reconcile; undefined when nothing answers on the socket. */
function askServer(socketPath: string): Promise<unknown | undefined> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: "/CniShim.Reconcile", method: "POST", timeout: 120_000 }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        const parsed = JSON.parse(body || "{}") as { Result?: unknown; Err?: string };
        if (res.statusCode !== 200) reject(new Error(parsed.Err ?? `plugin answered ${res.statusCode}`));
        else resolve(parsed.Result);
      });
    });
    req.on("timeout", () => req.destroy(new Error("the plugin did not answer within 120 s")));
    req.on("error", (err: NodeJS.ErrnoException) => (err.code === "ENOENT" || err.code === "ECONNREFUSED" ? resolve(undefined) : reject(err)));
    req.end("{}");
  });
}

export const gc: Command = {
  name: "gc",
  summary: "reconcile with Docker now: fully tear down endpoints and networks Docker no longer has",
  help: `Usage: cni-shim gc [options]

Compares cni-shim's records with the networks and endpoints Docker still has and runs a full
CNI DEL for what Docker forgot (e.g. after a dockerd restart). Endpoints Docker still uses are
never touched. Asks the running plugin on --socket; runs in-process when none is running.

Options:
${settingsHelp}`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: settingFlags, allowPositionals: false });
    const settings = resolveSettings(values);
    setLogLevel(settings.logLevel);
    let report = (await askServer(settings.socket)) as ReconcileReport | undefined;
    if (report === undefined) report = await buildDriver(settings).reconcile();
    // Attachments (cni-shim attach) of containers that stopped or are gone.
    const attacher = new Attacher(buildRuntime(settings), dockerClient(settings.dockerSocket), settings.stateDir, confDirs(settings));
    const detached = await attacher.gc();
    process.stdout.write(JSON.stringify({ ...report, attachmentsRemoved: detached.map((a) => `${a.containerName}/${a.network}`) }, null, 2) + "\n");
    return report.errors.length ? 1 : 0;
  },
};
