// The look inside a container's namespace before an in-sandbox Join's ADD (what it reads:
// sandbox.ts): besides the chain's own execs, the one exec on that Join's path. Two things make
// it cheaper than `nsenter --net=FILE ip ...` (median per look, from a Node process like serve:
// 4.4 ms that way, 2.8 ms this way; see docs/benchmarks.md):
// - iproute2's own `ip -n NAME`: one program started instead of two. It takes a name under
//   /run/netns, so the SandboxKey gets a symlink there for the time of the look
//   (cni-shim-l<pid>-<n>; iproute2 opens the name, which follows the link).
// - A shell forked ahead of time, which waits for that name on its stdin and then execs ip: Node
//   forks its whole process for every spawn, synchronously, and this way the fork happens after
//   CreateEndpoint's reply (prepare()) instead of inside Join.
// - The same ip stays in the namespace while the chain's ADD runs (its stdin left open), and
//   what the Join does there after the ADD (the MAC a chain did not set, a default route another
//   interface has: sandbox.ts's AfterAdd; or, handed to Docker, the interface's routes and its
//   move out to the host: netns.ts's handOutBatch) goes to it as more batch lines: no second exec.
// When this way fails where nsenter works, the look falls back to nsenter, for good: it can make
// a Join faster, never fail one.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdir, readdir, readlink, symlink, unlink } from "node:fs/promises";
import { NETNS_DIR, netnsPath } from "./netns.js";
import { afterAddLines, handOutOf, LOOK_BATCH, lookInside, parseLook, runAfterAdd, type AfterAdd, type LookSession, type SandboxLook } from "./sandbox.js";
import { handOutBatch } from "./netns.js";
import { routesOf, type KernelRoute } from "./routes.js";
import { log } from "../util/log.js";
import { ownedByLiveProcess, processAlive } from "../util/pid.js";

const LINK_RE = /^cni-shim-l(\d+)-\d+$/;
const LOOK_TIMEOUT_MS = 10_000;
const HOLD_MS = 60_000;
// `read` fails at EOF: a standby whose parent went away exits without looking anywhere.
const STANDBY_SCRIPT = 'read -r ns || exit 0; exec ip -n "$ns" -j -batch -';

/** A look link of a live process (transient, not a leftover: leak checks use this). */
export const isLiveLookLink = (name: string): boolean => ownedByLiveProcess(LINK_RE, name);

/** Look links of processes killed in the middle of a look. */
export async function sweepLookLinks(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(NETNS_DIR).catch(() => [] as string[])) {
    const m = LINK_RE.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    // Only a symlink: never unlink a mounted namespace that happens to have such a name.
    if ((await readlink(netnsPath(name)).catch(() => undefined)) === undefined) continue;
    await unlink(netnsPath(name)).then(
      () => removed.push(name),
      () => undefined,
    );
  }
  return removed;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

interface Standby {
  child: ChildProcessWithoutNullStreams;
  exit: Promise<Exit>;
  /** Resolves with the first `n` lines of stdout as soon as they are there (rejects at exit before). */
  lines(n: number): Promise<string>;
}

function forkStandby(script: string): Standby {
  const child = spawn("/bin/sh", ["-c", script], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  const stderr: Buffer[] = [];
  let waiter: { n: number; resolve: (s: string) => void } | undefined;
  const firstLines = (n: number) => {
    let at = -1;
    for (let i = 0; i < n; i++) if ((at = stdout.indexOf("\n", at + 1)) < 0) return undefined;
    return stdout.slice(0, at + 1);
  };
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString("utf8");
    const got = waiter && firstLines(waiter.n);
    if (got !== undefined && waiter) waiter.resolve(got);
  });
  child.stderr.on("data", (d: Buffer) => stderr.push(d));
  child.stdin.on("error", () => undefined);
  const exit = new Promise<Exit>((resolve) => {
    const text = () => Buffer.concat(stderr).toString("utf8");
    child.on("error", (error) => resolve({ code: null, signal: null, stdout, stderr: text(), error }));
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr: text() }));
  });
  const lines = (n: number) =>
    new Promise<string>((resolve, reject) => {
      const got = firstLines(n);
      if (got !== undefined) return resolve(got);
      waiter = { n, resolve };
      void exit.then((e) => reject(exitError(e, firstLines(n))));
    });
  // Waiting idle, it keeps nothing alive; it exits at EOF when this process goes.
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.();
  return { child, exit, lines };
}

function exitError(exit: Exit, got?: string): Error {
  if (got !== undefined) return new Error("the look's ip printed its lists and exited before the rest");
  return exit.error ?? new Error(`"ip -n ... -j -batch -" failed: ${exit.stderr.trim() || (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`)}`);
}

let seq = 0;

/** A symlink /run/netns/<name> to the namespace file (a pid's leftover of the same name is replaced). */
async function linkNamespace(name: string, nsFile: string): Promise<void> {
  const path = netnsPath(name);
  try {
    await symlink(nsFile, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") await mkdir(NETNS_DIR, { recursive: true });
    else if (code === "EEXIST") await unlink(path);
    else throw err;
    await symlink(nsFile, path);
  }
}

export interface LookerOptions {
  /** The standby's script: reads the link's name, then execs the look (tests give failing ones). */
  script?: string;
  /** The plain look, and the fallback (nsenter). */
  plain?: (nsFile: string) => Promise<LookSession>;
  timeoutMs?: number;
  /** How long a look's ip waits for its finish (the chain's ADD runs in between) before it is let go. */
  holdMs?: number;
}

export class SandboxLooker {
  private standby?: Standby;
  private quick = true;
  private readonly script: string;
  private readonly plain: (nsFile: string) => Promise<LookSession>;
  private readonly timeoutMs: number;
  private readonly holdMs: number;

  constructor(opts: LookerOptions = {}) {
    this.script = opts.script ?? STANDBY_SCRIPT;
    this.plain = opts.plain ?? lookInside;
    this.timeoutMs = opts.timeoutMs ?? LOOK_TIMEOUT_MS;
    this.holdMs = opts.holdMs ?? HOLD_MS;
  }

  /** Whether looks still take the quick way (false after it failed where the plain one worked). */
  get quickWay(): boolean {
    return this.quick;
  }

  /** Fork the shell the next look uses: call it once a reply is out (the fork blocks the event loop). */
  prepare(): void {
    if (!this.quick || (this.standby && this.standby.child.exitCode === null && !this.standby.child.killed)) return;
    try {
      this.standby = forkStandby(this.script);
    } catch (err) {
      log.warn("could not fork ahead for the look inside container namespaces", { error: (err as Error).message });
    }
  }

  /** Let the waiting shell go (shutdown). */
  close(): void {
    this.standby?.child.stdin.end();
    this.standby = undefined;
  }

  async look(nsFile: string): Promise<LookSession> {
    if (!this.quick) return this.plain(nsFile);
    let standby = this.standby;
    this.standby = undefined;
    if (!standby || standby.child.exitCode !== null || standby.child.killed) standby = forkStandby(this.script);
    const name = `cni-shim-l${process.pid}-${++seq}`;
    try {
      await linkNamespace(name, nsFile);
      try {
        return this.session(standby, nsFile, parseLook(await this.lookThrough(standby, name)));
      } finally {
        // ip entered the namespace when it started: the name is not needed beyond the look.
        await unlink(netnsPath(name)).catch(() => undefined);
      }
    } catch (err) {
      standby.child.kill("SIGKILL");
      const look = await this.plain(nsFile); // the namespace's own trouble fails the Join here
      this.quick = false;
      log.warn("the look inside container namespaces through `ip -n` failed where nsenter worked: using nsenter from now on", { error: (err as Error).message });
      return look;
    }
  }

  private async lookThrough(standby: Standby, name: string): Promise<string> {
    const timer = setTimeout(() => standby.child.kill("SIGKILL"), this.timeoutMs);
    // stdin stays open: the same ip runs the Join's AfterAdd once the chain's ADD is done.
    standby.child.stdin.write(`${name}\n${LOOK_BATCH}`);
    return standby.lines(3).finally(() => clearTimeout(timer));
  }

  /**
   * The look's ip, still in the namespace, waits for the AfterAdd or the hand-out (one exec for
   * the look and what follows the ADD). Not finished within holdMs (a Join that never got there):
   * let go; a finish or hand-out after that (or after ip failed) is an exec of its own.
   */
  private session(standby: Standby, nsFile: string, look: SandboxLook): LookSession {
    const hold = setTimeout(() => standby.child.stdin.end(), this.holdMs);
    hold.unref();
    const gone = () => standby.child.stdin.writableEnded || standby.child.exitCode !== null;
    let done: Promise<unknown> | undefined;
    const finish = async (after?: AfterAdd): Promise<void> => {
      clearTimeout(hold);
      const lines = after ? afterAddLines(after) : [];
      if (gone()) return lines.length ? runAfterAdd(nsFile, after!) : undefined;
      standby.child.stdin.end(lines.map((l) => `${l}\n`).join(""));
      if (lines.length) await this.ended(standby, lines.join("; "));
    };
    const handOut = async (ifName: string, tmpName: string): Promise<KernelRoute[]> => {
      clearTimeout(hold);
      if (gone()) return handOutOf(nsFile, ifName, tmpName);
      const batch = handOutBatch(ifName, tmpName);
      standby.child.stdin.end(`${batch}\n`);
      // The look's three lists, then the routes (the batch's first line; the moves print nothing).
      return routesOf((await this.ended(standby, batch.replaceAll("\n", "; "))).split("\n")[3] ?? "", ifName);
    };
    return {
      ...look,
      finish: async (after) => void (await (done ??= finish(after))),
      handOut: (ifName, tmpName) => (done ? handOutOf(nsFile, ifName, tmpName) : (done = handOut(ifName, tmpName))),
    };
  }

  /** The look's ip's stdout once it exited after its last lines (`what`), or what failed. */
  private async ended(standby: Standby, what: string): Promise<string> {
    const timer = setTimeout(() => standby.child.kill("SIGKILL"), this.timeoutMs);
    const exit = await standby.exit.finally(() => clearTimeout(timer));
    if (exit.error || exit.code !== 0) throw new Error(`${what}: ${exit.stderr.trim() || exitError(exit).message}`);
    return exit.stdout;
  }
}
