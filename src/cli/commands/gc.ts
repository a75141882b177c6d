import { unixRequest } from "../../util/http.js";
import { settingsHelp } from "../../settings.js";
import { buildAttacher, buildDriver } from "../../compose.js";
import type { ReconcileReport } from "../../driver/driver.js";
import { parseCommandLine } from "../argv.js";
import type { Command } from "../command.js";

/** Ask the running plugin to reconcile; undefined when nothing answers on the socket. */
async function askServer(socketPath: string): Promise<unknown> {
  let res;
  try {
    res = await unixRequest(socketPath, "POST", "/CniShim.Reconcile", 120_000, "{}");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ECONNREFUSED") return undefined;
    throw err;
  }
  const parsed = JSON.parse(res.body || "{}") as { Result?: unknown; Err?: string };
  if (res.status !== 200) throw new Error(parsed.Err ?? `plugin answered ${res.status}`);
  return parsed.Result;
}

export const gc: Command = {
  name: "gc",
  summary: "reconcile with Docker now: fully tear down endpoints and networks Docker no longer has",
  help: `Usage: cni-shim gc [options]

Compares cni-shim's records with the networks and endpoints Docker still has and runs a full
CNI DEL for what Docker forgot (e.g. after a dockerd restart). Endpoints Docker still uses are
never touched. Asks the running plugin on --socket; runs in-process when none is running.

Options:
${settingsHelp()}`,
  async run(argv) {
    const { settings } = parseCommandLine(argv, {});
    let report = (await askServer(settings.socket)) as ReconcileReport | undefined;
    if (report === undefined) report = await buildDriver(settings).reconcile();
    // Attachments (cni-shim attach) of containers that stopped or are gone.
    const detached = await buildAttacher(settings).gc();
    process.stdout.write(JSON.stringify({ ...report, attachmentsRemoved: detached.map((a) => `${a.containerName}/${a.network}`) }, null, 2) + "\n");
    return report.errors.length ? 1 : 0;
  },
};
