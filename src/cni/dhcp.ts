// The CNI `dhcp` IPAM plugin and its daemon. The plugin itself only forwards ADD and DEL over a
// unix socket (default /run/cni/dhcp.sock) to `dhcp daemon`, which does the DHCP exchange inside
// the namespace given at ADD and keeps renewing the lease there until DEL. Nothing runs without
// the daemon, and Debian starts it only under systemd (cni-dhcp.socket): `cni-shim serve` starts
// it when a network's chain needs it and nothing answers (ensureDhcpDaemon).
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import type { ConfList } from "./schemas.js";
import { findPlugin } from "./plugins.js";

export const DEFAULT_DHCP_SOCKET = "/run/cni/dhcp.sock";

/** The daemon sockets the list's dhcp IPAMs talk to (`ipam.daemonSocketPath`, else the default); empty when none uses dhcp. */
export function dhcpSockets(list: ConfList): string[] {
  const out = new Set<string>();
  for (const p of list.plugins) {
    const ipam = p.ipam;
    if (ipam?.type !== "dhcp") continue;
    out.add(typeof ipam.daemonSocketPath === "string" && ipam.daemonSocketPath ? ipam.daemonSocketPath : DEFAULT_DHCP_SOCKET);
  }
  return [...out];
}

export const usesDhcp = (list: ConfList) => dhcpSockets(list).length > 0;

/** The daemon's command line for a socket (the default socket needs no flag). */
export function dhcpDaemonArgs(socket: string, pidFile: string): string[] {
  return ["daemon", "-pidfile", pidFile, ...(socket === DEFAULT_DHCP_SOCKET ? [] : ["-socketpath", socket])];
}

/** Where serve keeps a daemon's log and pid file: one pair per socket, under the state dir. */
export function dhcpDaemonFiles(stateDir: string, socket: string): { log: string; pid: string } {
  const suffix = socket === DEFAULT_DHCP_SOCKET ? "" : `-${socket.replace(/^\/+/, "").replace(/[^A-Za-z0-9_.-]/g, "_")}`;
  return { log: join(stateDir, `dhcp-daemon${suffix}.log`), pid: join(stateDir, `dhcp-daemon${suffix}.pid`) };
}

/** "answers": something accepts connections; "stale": a socket file nobody listens on; "absent": no file. */
export function probeDhcpSocket(socket: string, timeoutMs = 2_000): Promise<"answers" | "stale" | "absent"> {
  return new Promise((resolve) => {
    const s = connect(socket);
    const done = (v: "answers" | "stale" | "absent") => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    // A listener that accepts nothing within the bound is as good as none.
    const timer = setTimeout(() => done("stale"), timeoutMs);
    s.once("connect", () => done("answers"));
    s.once("error", (err: NodeJS.ErrnoException) => done(err.code === "ENOENT" ? "absent" : "stale"));
  });
}

export interface DhcpDaemonOptions {
  socket: string;
  cniPath: string[];
  stateDir: string;
  /** How long the started daemon has to answer. */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Make sure a dhcp daemon answers on `socket`: "running" when one already does, "started" when
 * this call started `<cni path>/dhcp daemon`: detached in its own session (it outlives cni-shim,
 * and with it the leases it renews), its output appended to a log file under the state dir.
 */
export async function ensureDhcpDaemon(opts: DhcpDaemonOptions): Promise<{ outcome: "running" | "started"; pid?: number; log?: string }> {
  const state = await probeDhcpSocket(opts.socket);
  if (state === "answers") return { outcome: "running" };
  const binary = await findPlugin("dhcp", opts.cniPath);
  // The daemon refuses to start on an existing socket file: a stale one is removed.
  if (state === "stale") await rm(opts.socket, { force: true });
  const files = dhcpDaemonFiles(opts.stateDir, opts.socket);
  await mkdir(opts.stateDir, { recursive: true });
  const fd = openSync(files.log, "a");
  let exited: string | undefined;
  try {
    const child = spawn(binary, dhcpDaemonArgs(opts.socket, files.pid), { detached: true, stdio: ["ignore", fd, fd] });
    child.once("exit", (code, signal) => (exited = `exited (${signal ?? `code ${code}`})`));
    child.once("error", (err) => (exited = err.message));
    child.unref();
    const deadline = Date.now() + (opts.timeoutMs ?? 5_000);
    while (Date.now() < deadline) {
      if (exited) break;
      if ((await probeDhcpSocket(opts.socket, 500)) === "answers") return { outcome: "started", pid: child.pid, log: files.log };
      await sleep(50);
    }
    if (!exited) child.kill("SIGKILL");
    const tail = (await readFile(files.log, "utf8").catch(() => "")).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`started "${binary} daemon" for ${opts.socket}, but it ${exited ?? `did not answer within ${opts.timeoutMs ?? 5_000} ms`}${tail ? ` (its log ${files.log}: ${tail})` : ""}`);
  } finally {
    closeSync(fd);
  }
}
