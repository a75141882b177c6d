// The look inside a container's namespace before an in-sandbox Join's ADD (what it reads:
// sandbox.ts): besides the chain's own execs, the one program on that Join's path, and no exec
// on it. `nsenter --net=FILE ip ...` costs a fork of this process and two execs (4.4 ms per look
// from a Node process like serve on a quiet machine, 10+ ms on a slow one; docs/benchmarks.md).
// Instead:
// - A small perl program (perl-base is on every Debian-based host and in the plugin's image),
//   forked ahead after CreateEndpoint's reply (prepare()), waits for the namespace's path on its
//   stdin, enters it (setns) and prints what `ip -j -batch` prints for LOOK_BATCH, read from
//   /proc/thread-self/net (dev, route, ipv6_route): no exec between the Join and its look. Node
//   forks its whole process for every spawn, synchronously, so the fork is off Join's path too.
//   ipv6_route lists every table without saying which: only when it has an IPv6 default does the
//   program ask ip which are main's (an exec on that rare path: a second network, dual stack).
// - It then becomes `ip -j -batch -` in the namespace (exec, while the chain's ADD runs), its
//   stdin left open, so what the Join does there after the ADD (the MAC a chain did not set, a
//   default route another interface has: sandbox.ts's AfterAdd; or, handed to Docker, the
//   interface's routes and its move out to the host: netns.ts's handOutBatch) goes to it as batch
//   lines: no second exec.
// When this way fails where nsenter works, the look falls back to nsenter, for good: it can make
// a Join faster, never fail one.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdir, readlink, unlink } from "node:fs/promises";
import { NETNS_DIR, netnsPath } from "./netns.js";
import { afterAddLines, handOutOf, lookInside, parseLook, runAfterAdd, type AfterAdd, type LookSession, type SandboxLook } from "./sandbox.js";
import { handOutBatch } from "./netns.js";
import { routesOf, type KernelRoute } from "./routes.js";
import { log } from "../util/log.js";
import { ownedByLiveProcess, processAlive } from "../util/pid.js";

// Look links: names under /run/netns for a SandboxKey, which earlier versions made for `ip -n`.
const LINK_RE = /^cni-shim-l(\d+)-\d+$/;
const LOOK_TIMEOUT_MS = 10_000;
const HOLD_MS = 60_000;
const CLONE_NEWNET = 0x40000000;
/** setns(2)'s number per Node architecture (perl-base has no syscall.ph); elsewhere: the plain look. */
const SETNS: Partial<Record<string, number>> = { x64: 308, arm64: 268, riscv64: 268, loong64: 268, arm: 375, ia32: 346, ppc64: 350, s390x: 339 };

/**
 * Reads the path (every line byte by byte: the rest of stdin may be ip's), enters the namespace
 * and prints the three lists of LOOK_BATCH as `ip -j -batch` does (only the fields parseLook
 * reads). Then, line by line: `mac IF MAC` sets a link's MAC (SIOCSIFHWADDR: no exec), `ip`
 * becomes `ip -j -batch -` there for the lines after it, EOF ends it. Each MAC set prints "ok"
 * (the Join goes on at that line, not at this process's exit: ~2 ms less here). EOF first (this process
 * went away): exits without looking anywhere.
 */
const LOOK_SCRIPT = String.raw`use strict;
my ($setns, $newnet) = map { $_ + 0 } @ARGV;
sub line { my $l = ""; for (;;) { my $n = sysread(STDIN, my $c, 1); return undef unless $n; return $l if $c eq "\n"; $l .= $c; } }
my $path = line();
exit 0 unless defined $path;
open(my $ns, "<", $path) or die "cannot open $path: $!\n";
syscall($setns, fileno($ns), $newnet) == 0 or die "cannot enter $path: $!\n";
close($ns);
sub rows { open(my $f, "<", "/proc/thread-self/net/$_[0]") or die "cannot read /proc/thread-self/net/$_[0]: $!\n"; my @r = <$f>; return @r; }
my @dev = rows("dev");
my @links = map { /^\s*([^:\s]+):/ ? $1 : () } @dev[2 .. $#dev];
my $v4 = grep { my @f = split; @f > 7 && $f[1] eq "00000000" && $f[7] eq "00000000" } rows("route");
my $v6 = grep { my @f = split; $f[0] =~ /^0{32}$/ && $f[1] eq "00" && !(hex($f[8]) & 0x200) } rows("ipv6_route");
if ($v6) { my $out = qx(ip -j -6 route show default); die "ip -6 route show default failed\n" if $?; $v6 = () = $out =~ /"dst"/g; }
s/(["\\])/\\$1/g for @links;
my $defaults = sub { "[" . join(",", ('{"dst":"default"}') x $_[0]) . "]\n" };
syswrite(STDOUT, $defaults->($v4) . "[" . join(",", map { qq({"ifname":"$_"}) } @links) . "]\n" . $defaults->($v4 + $v6));
while (defined(my $req = line())) {
  exec("ip", "-j", "-batch", "-") or die "cannot run ip: $!\n" if $req eq "ip";
  my ($if, $mac) = $req =~ /^mac (\S{1,15}) ((?:[0-9a-f]{2}:){5}[0-9a-f]{2})$/ or die "unknown request: $req\n";
  socket(my $s, 2, 2, 0) or die "socket: $!\n";
  ioctl($s, 0x8924, pack("a16 S a6 x40", $if, 1, pack("C6", map { hex } split(/:/, $mac)))) or die "cannot set the MAC of $if to $mac: $!\n";
  syswrite(STDOUT, "ok\n");
}
`;

/** The standby's command line, or none where setns's number is not known. */
function lookCommand(): string[] | undefined {
  const nr = SETNS[process.arch];
  return nr === undefined ? undefined : ["perl", "-e", LOOK_SCRIPT, String(nr), String(CLONE_NEWNET)];
}

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

function forkStandby(command: string[]): Standby {
  const child = spawn(command[0]!, command.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
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
  if (got !== undefined) return new Error("the look printed its lists and its ip exited before the rest");
  return exit.error ?? new Error(`the look inside the namespace failed: ${exit.stderr.trim() || (exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`)}`);
}

export interface LookerOptions {
  /** The standby's command: reads the namespace's path, prints the look, then execs ip (tests give failing ones). */
  command?: string[];
  /** The plain look, and the fallback (nsenter). */
  plain?: (nsFile: string) => Promise<LookSession>;
  timeoutMs?: number;
  /** How long a look's ip waits for its finish (the chain's ADD runs in between) before it is let go. */
  holdMs?: number;
}

export class SandboxLooker {
  private standby?: Standby;
  private quick = true;
  private readonly command?: string[];
  private readonly plain: (nsFile: string) => Promise<LookSession>;
  private readonly timeoutMs: number;
  private readonly holdMs: number;

  constructor(opts: LookerOptions = {}) {
    this.command = opts.command ?? lookCommand();
    this.quick = this.command !== undefined;
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
      this.standby = forkStandby(this.command!);
    } catch (err) {
      log.warn("could not fork ahead for the look inside container namespaces", { error: (err as Error).message });
    }
  }

  /** Let the waiting shell go (shutdown). */
  close(): void {
    this.standby?.child.stdin.end();
    this.standby = undefined;
  }

  /**
   * `ipAhead`: ip is started as soon as the look is printed, ready for lines after the ADD (a
   * hand-out to Docker will follow); otherwise only when a line needs it (the MAC alone does not).
   */
  async look(nsFile: string, { ipAhead = false }: { ipAhead?: boolean } = {}): Promise<LookSession> {
    if (!this.quick) return this.plain(nsFile);
    let standby = this.standby;
    this.standby = undefined;
    if (!standby || standby.child.exitCode !== null || standby.child.killed) standby = forkStandby(this.command!);
    try {
      return this.session(standby, nsFile, parseLook(await this.lookThrough(standby, nsFile, ipAhead)), ipAhead);
    } catch (err) {
      standby.child.kill("SIGKILL");
      const look = await this.plain(nsFile); // the namespace's own trouble fails the Join here
      this.quick = false;
      log.warn("the look inside container namespaces through perl and ip failed where nsenter worked: using nsenter from now on", { error: (err as Error).message });
      return look;
    }
  }

  private async lookThrough(standby: Standby, nsFile: string, ipAhead: boolean): Promise<string> {
    if (nsFile.includes("\n")) throw new Error(`a namespace path with a newline: ${JSON.stringify(nsFile)}`);
    const timer = setTimeout(() => standby.child.kill("SIGKILL"), this.timeoutMs);
    // stdin stays open: the same process, then ip, runs the Join's AfterAdd once the chain's ADD is done.
    standby.child.stdin.write(`${nsFile}\n${ipAhead ? "ip\n" : ""}`);
    return standby.lines(3).finally(() => clearTimeout(timer));
  }

  /**
   * The look's ip, still in the namespace, waits for the AfterAdd or the hand-out (one exec for
   * the look and what follows the ADD). Not finished within holdMs (a Join that never got there):
   * let go; a finish or hand-out after that (or after ip failed) is an exec of its own.
   */
  private session(standby: Standby, nsFile: string, look: SandboxLook, ipStarted: boolean): LookSession {
    const hold = setTimeout(() => standby.child.stdin.end(), this.holdMs);
    hold.unref();
    const gone = () => standby.child.stdin.writableEnded || standby.child.exitCode !== null;
    const toIp = (lines: string[]) => `${ipStarted ? "" : "ip\n"}${lines.map((l) => `${l}\n`).join("")}`;
    let done: Promise<unknown> | undefined;
    const finish = async (after?: AfterAdd): Promise<void> => {
      clearTimeout(hold);
      const lines = after ? afterAddLines(after) : [];
      if (gone()) return lines.length ? runAfterAdd(nsFile, after!) : undefined;
      if (!lines.length) return void standby.child.stdin.end();
      // The MAC alone needs no ip: the look's own program sets it.
      const macOnly = !ipStarted && after?.mac && !after.deleteDefaults.length;
      if (macOnly) return this.macSet(standby, after.ifName, after.mac!);
      standby.child.stdin.end(toIp(lines));
      await this.ended(standby, lines.join("; "));
    };
    const handOut = async (ifName: string, tmpName: string): Promise<KernelRoute[]> => {
      clearTimeout(hold);
      if (gone()) return handOutOf(nsFile, ifName, tmpName);
      const batch = handOutBatch(ifName, tmpName);
      standby.child.stdin.end(toIp(batch.split("\n")));
      // The look's three lists, then the routes (the batch's first line; the moves print nothing).
      return routesOf((await this.ended(standby, batch.replaceAll("\n", "; "))).split("\n")[3] ?? "", ifName);
    };
    return {
      ...look,
      finish: async (after) => void (await (done ??= finish(after))),
      handOut: (ifName, tmpName) => (done ? handOutOf(nsFile, ifName, tmpName) : (done = handOut(ifName, tmpName))),
    };
  }

  /** The MAC set by the look's own program: done at its "ok" (the look's three lists are lines 1-3). */
  private async macSet(standby: Standby, ifName: string, mac: string): Promise<void> {
    const timer = setTimeout(() => standby.child.kill("SIGKILL"), this.timeoutMs);
    standby.child.stdin.end(`mac ${ifName} ${mac.toLowerCase()}\n`);
    try {
      const out = await standby.lines(4);
      if (!out.endsWith("\nok\n")) throw new Error(`unexpected reply: ${JSON.stringify(out.split("\n")[3])}`);
    } catch (err) {
      throw new Error(`link set dev ${ifName} address ${mac}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The look's ip's stdout once it exited after its last lines (`what`), or what failed. */
  private async ended(standby: Standby, what: string): Promise<string> {
    const timer = setTimeout(() => standby.child.kill("SIGKILL"), this.timeoutMs);
    const exit = await standby.exit.finally(() => clearTimeout(timer));
    if (exit.error || exit.code !== 0) throw new Error(`${what}: ${exit.stderr.trim() || exitError(exit).message}`);
    return exit.stdout;
  }
}
