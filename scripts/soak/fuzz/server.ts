// The cni-shim serve under test: its memory, whether it is alive and answering, and its stop.
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { exchange, httpRequest } from "./wire.js";

export function rssKb(pid: number | undefined): { rss?: number; hwm?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return { rss: rss ? Number(rss[1]) : undefined, hwm: hwm ? Number(hwm[1]) : undefined };
  } catch {
    return {};
  }
}

export const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

export async function waitForSocket(socketPath: string, child: ChildProcess, ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!alive(child)) return false;
    const r = await exchange(socketPath, { steps: [httpRequest("POST", "/Plugin.Activate", undefined)], timeoutMs: 1_000 });
    if (r.responses[0]?.status === 200) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

export async function stopServer(child: ChildProcess | undefined) {
  if (!child || !alive(child)) return;
  const exited = new Promise((res) => child.once("exit", res));
  child.kill("SIGTERM");
  const timeout = new Promise((res) => setTimeout(() => res("timeout"), 5_000).unref());
  if ((await Promise.race([exited, timeout])) === "timeout" && alive(child)) {
    child.kill("SIGKILL");
    await exited;
  }
}
