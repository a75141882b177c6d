// The caller side of the CNI spec for network configuration lists (libcni AddNetworkList,
// DelNetworkList, CheckNetworkList, GCNetworkList, GetStatusNetworkList).
import { statSync } from "node:fs";
import { basename } from "node:path";
import { ConfList, type PluginConf, type Result, type CacheEntry } from "./schemas.js";
import { parseConfFile, type LoadedConfList } from "./config.js";
import { findPlugin } from "./plugins.js";
import { execPlugin, type CniCommand, type ExecObserver } from "./invoke.js";
import { VersionProbe, chooseVersion, compareVersions } from "./version.js";
import { ResultCache } from "./cache.js";
import { normaliseCniArgs, type CniArg } from "./args.js";
import { parseResult } from "./result.js";
import { knownFalseComplaint } from "./check-quirks.js";
import { hostLocalStore, type HostLocalReservation } from "./host-local.js";
import { ADD_LEFT_STATE, CniRuntimeError } from "./errors.js";
import { CNI_NAME_RE } from "./schemas.js";
import { KeyedMutex } from "../util/keyed-mutex.js";
import { KeyedGate } from "../util/keyed-gate.js";
import { log } from "../util/log.js";

export interface RuntimeOptions {
  cniPath: string[];
  cacheDir: string;
  /** Per plugin exec; the plugin is killed after it. */
  execTimeoutMs: number;
  onExec?: ExecObserver;
}

export interface Attachment {
  containerId: string;
  netns?: string;
  ifName: string;
  args?: CniArg[];
  capabilityArgs?: Record<string, unknown>;
}

export interface AddOutcome {
  result: Result;
  raw: Record<string, unknown>;
  cniVersion: string;
}

export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
/** How long prepare()'s plugin paths and version choice are reused without looking again. */
const PREPARED_FRESH_MS = 10_000;
/**
 * How long STATUS trusts the binaries' stamps without a stat (0.5-2 ms a round on every
 * CreateEndpoint's path). Calls that execute the chain always look: a binary gone since must fail
 * before the first ADD, not leave a chain half added.
 */
const STAMPS_FRESH_MS = 1_000;

/** Which file each path is now (inode and mtime; "" when gone): a replaced binary differs. */
function binaryStamps(paths: string[]): string[] {
  return paths.map((p) => {
    try {
      const st = statSync(p);
      return `${st.ino}:${st.mtimeMs}`;
    } catch {
      return "";
    }
  });
}

function validateAttachment(att: Attachment): void {
  if (!CNI_NAME_RE.test(att.containerId)) throw new CniRuntimeError(`invalid CNI container id "${att.containerId}"`);
  if (!att.ifName || att.ifName.length > 15 || /[/:\s]/.test(att.ifName) || att.ifName === "." || att.ifName === "..") {
    throw new CniRuntimeError(`invalid interface name "${att.ifName}": at most 15 characters, no '/', ':' or whitespace`);
  }
}

export class CniRuntime {
  readonly cache: ResultCache;
  private readonly probe: VersionProbe;
  private readonly locks = new KeyedMutex();
  /** Per CNI network: ADDs share it, the GC verb takes it alone (what it is told is valid must not change under it). */
  private readonly addsOrGc = new KeyedGate();
  private readonly prepared = new Map<string, { at: number; checked: number; stamps: string[]; value: { paths: string[]; version: string } }>();

  constructor(readonly opts: RuntimeOptions) {
    this.cache = new ResultCache(opts.cacheDir);
    this.probe = new VersionProbe(opts.cniPath, opts.execTimeoutMs, opts.onExec);
  }

  private key(net: string, att: Pick<Attachment, "containerId" | "ifName">): string {
    return `${net}/${att.containerId}/${att.ifName}`;
  }

  /**
   * Resolve plugin paths and the cniVersion to send; fails before anything is executed. The
   * answer for a chain is reused while its binaries are unchanged (one stat each, all at once)
   * and for at most PREPARED_FRESH_MS: the search through CNI_PATH and the version probe's checks
   * are three file lookups per plugin, one after another (~0.8 ms for a chain of four), and a
   * start makes 3 to 5 calls. A binary replaced (an upgrade) is probed again at once (`recent`:
   * within STAMPS_FRESH_MS); a plugin put into an earlier CNI_PATH dir is found within
   * PREPARED_FRESH_MS; one gone is found by its exec.
   */
  async prepare(list: ConfList, { recent = false }: { recent?: boolean } = {}): Promise<{ paths: string[]; version: string }> {
    const key = JSON.stringify([list.name, list.plugins.map((p) => p.type), list.cniVersion, list.cniVersions ?? []]);
    const hit = this.prepared.get(key);
    const now = performance.now();
    if (hit && now - hit.at < PREPARED_FRESH_MS) {
      if (recent && now - hit.checked < STAMPS_FRESH_MS) return hit.value;
      const stamps = binaryStamps(hit.value.paths);
      if (stamps.every((s, i) => s === hit.stamps[i])) return (hit.checked = now), hit.value;
    }
    const paths = await Promise.all(list.plugins.map((p) => findPlugin(p.type, this.opts.cniPath)));
    const stamps = binaryStamps(paths);
    const supported = new Map<string, string[]>();
    for (const [i, path] of paths.entries()) supported.set(list.plugins[i]!.type, await this.probe.supported(path));
    const value = { paths, version: chooseVersion(list, supported) };
    this.prepared.set(key, { at: performance.now(), checked: performance.now(), stamps, value });
    return value;
  }

  /** The stdin of one plugin: its conf plus name, version, runtimeConfig and prevResult. */
  static pluginStdin(list: ConfList, plugin: PluginConf, version: string, capabilityArgs: Record<string, unknown>, prevResult?: unknown): Record<string, unknown> {
    const stdin: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: version };
    const runtimeConfig: Record<string, unknown> = { ...(plugin.runtimeConfig ?? {}) };
    for (const [cap, enabled] of Object.entries(plugin.capabilities ?? {})) {
      if (enabled && capabilityArgs[cap] !== undefined) runtimeConfig[cap] = capabilityArgs[cap];
    }
    if (Object.keys(runtimeConfig).length) stdin.runtimeConfig = runtimeConfig;
    else delete stdin.runtimeConfig;
    if (prevResult !== undefined) stdin.prevResult = prevResult;
    else delete stdin.prevResult;
    return stdin;
  }

  private async exec(command: CniCommand, pluginPath: string, att: Attachment, args: CniArg[], stdin: unknown) {
    try {
      return await execPlugin(
        { pluginPath, command, containerId: att.containerId, netns: att.netns, ifName: att.ifName, args, cniPath: this.opts.cniPath, stdin, timeoutMs: this.opts.execTimeoutMs },
        this.opts.onExec,
      );
    } catch (err) {
      if (!(err instanceof CniRuntimeError) || !err.notExecuted) throw err;
      // Gone (or no longer executable) since prepare() found it: look again, and say what to do.
      this.prepared.clear();
      await findPlugin(basename(pluginPath), this.opts.cniPath);
      throw err;
    }
  }

  async add(net: LoadedConfList, att: Attachment): Promise<AddOutcome> {
    validateAttachment(att);
    const args = normaliseCniArgs(att.args);
    const caps = att.capabilityArgs ?? {};
    return this.locks.run(this.key(net.conflist.name, att), () => this.addsOrGc.shared(net.conflist.name, async () => {
      const { paths, version } = await this.prepare(net.conflist);
      let prev: unknown;
      await this.cache.markOwned(net.conflist.name, att.containerId, att.ifName);
      try {
        for (const [i, plugin] of net.conflist.plugins.entries()) {
          prev = await this.exec("ADD", paths[i]!, att, args, CniRuntime.pluginStdin(net.conflist, plugin, version, caps, prev));
        }
        const result = parseResult(prev, net.conflist.plugins.at(-1)!.type);
        const entry: CacheEntry = {
          kind: "cniCacheV1",
          containerId: att.containerId,
          config: net.bytes.toString("base64"),
          ifName: att.ifName,
          networkName: net.conflist.name,
          netns: att.netns,
          cniArgs: args,
          capabilityArgs: caps,
          result: prev as Record<string, unknown>,
        };
        await this.cache.write(entry);
        return { result, raw: prev as Record<string, unknown>, cniVersion: version };
      } catch (err) {
        // A failed chain leaves things behind (an interface, an IP reservation, firewall rules):
        // undo it all, with the result the plugins that ran made (firewall finds its rules by it).
        try {
          await this.delChain(net.conflist, paths, version, att, args, caps, prev);
          await this.cache.remove(net.conflist.name, att.containerId, att.ifName);
          await this.cache.unmarkOwned(net.conflist.name, att.containerId, att.ifName);
        } catch (cleanupErr) {
          log.error("cleanup after failed CNI ADD also failed", { network: net.conflist.name, containerId: att.containerId, error: (cleanupErr as Error).message });
          (err as Error).message += ` (cleanup with DEL also failed: ${(cleanupErr as Error).message})`;
          if (typeof err === "object" && err !== null) (err as Record<symbol, unknown>)[ADD_LEFT_STATE] = true;
        }
        throw err;
      }
    }));
  }

  private async delChain(list: ConfList, paths: string[], version: string, att: Attachment, args: CniArg[], caps: Record<string, unknown>, prevResult: unknown): Promise<void> {
    const sendPrev = compareVersions(version, "0.4.0") >= 0 ? prevResult : undefined;
    const errors: unknown[] = [];
    // Reverse order; keep going after a failure so one broken plugin does not leak the others.
    for (let i = list.plugins.length - 1; i >= 0; i--) {
      try {
        await this.exec("DEL", paths[i]!, att, args, CniRuntime.pluginStdin(list, list.plugins[i]!, version, caps, sendPrev));
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  }

  /** What a DEL sends: the ADD's cached CNI_ARGS and capability args when there are any. */
  private async delInputs(net: LoadedConfList, att: Attachment) {
    const cached = await this.cache.read(net.conflist.name, att.containerId, att.ifName);
    return { cached, args: cached?.cniArgs ?? normaliseCniArgs(att.args), caps: cached?.capabilityArgs ?? att.capabilityArgs ?? {} };
  }

  /**
   * DEL with the cached result as prevResult and the cached CNI_ARGS and capability args of the
   * ADD (portmap's DEL needs the same portMappings). Idempotent; the cache goes only on success.
   */
  async del(net: LoadedConfList, att: Attachment, fallbackPrevResult?: Result): Promise<void> {
    validateAttachment(att);
    await this.locks.run(this.key(net.conflist.name, att), async () => {
      const { cached, args, caps } = await this.delInputs(net, att);
      const { paths, version } = await this.prepare(net.conflist);
      // Without a cache entry (an ADD cut short) the caller's view of the result stands in:
      // firewall and portmap find what to remove only through prevResult.
      const prev = cached?.result ?? (fallbackPrevResult ? { ...fallbackPrevResult, cniVersion: version } : undefined);
      await this.delChain(net.conflist, paths, version, att, args, caps, prev);
      await this.cache.remove(net.conflist.name, att.containerId, att.ifName);
      await this.cache.unmarkOwned(net.conflist.name, att.containerId, att.ifName);
    });
  }

  /**
   * DEL of only the IPAM plugins of the list, called the way their main plugin calls them (its
   * own config on stdin). For a teardown whose chain DEL failed on state that was already gone:
   * the address must still be released. Returns the IPAM types that were run.
   */
  async delIpam(net: LoadedConfList, att: Attachment): Promise<string[]> {
    validateAttachment(att);
    return this.locks.run(this.key(net.conflist.name, att), async () => {
      const { args, caps } = await this.delInputs(net, att);
      const { version } = await this.prepare(net.conflist);
      const ran: string[] = [];
      for (const plugin of net.conflist.plugins) {
        const ipamType = plugin.ipam?.type;
        if (ipamType === undefined) continue;
        const path = await findPlugin(ipamType, this.opts.cniPath);
        await this.exec("DEL", path, att, args, CniRuntime.pluginStdin(net.conflist, plugin, version, caps));
        ran.push(ipamType);
      }
      await this.cache.unmarkOwned(net.conflist.name, att.containerId, att.ifName);
      return ran;
    });
  }

  /**
   * ADD of only the IPAM plugins of the list, called the way their main plugin calls them, in
   * `att.netns`: for the dhcp IPAM, whose daemon takes (and renews) the lease in the namespace
   * it is given, when the interface has moved to another one. Returns the last IPAM's result.
   */
  async addIpam(net: LoadedConfList, att: Attachment): Promise<Result> {
    validateAttachment(att);
    return this.locks.run(this.key(net.conflist.name, att), () => this.addsOrGc.shared(net.conflist.name, async () => {
      const { args, caps } = await this.delInputs(net, att);
      const { version } = await this.prepare(net.conflist);
      let out: Result | undefined;
      for (const plugin of net.conflist.plugins) {
        const ipamType = plugin.ipam?.type;
        if (ipamType === undefined) continue;
        const path = await findPlugin(ipamType, this.opts.cniPath);
        out = parseResult(await this.exec("ADD", path, att, args, CniRuntime.pluginStdin(net.conflist, plugin, version, caps)), ipamType);
      }
      if (!out) throw new CniRuntimeError(`CNI network "${net.conflist.name}" has no IPAM plugin`);
      return out;
    }));
  }

  /** The config a cached attachment was added with (used when the caller no longer has it). */
  static confListOf(entry: CacheEntry): LoadedConfList {
    return parseConfFile(Buffer.from(entry.config, "base64").toString("utf8"), `cache of ${entry.networkName}/${entry.containerId}`);
  }

  /**
   * STATUS (spec 1.1, libcni GetStatusNetworkList): of every plugin, and the first in the list's
   * order that is not ready throws with its message, as libcni's (which asks them one after the
   * other and stops there). Asked all at once: STATUS changes nothing, and a start waits for the
   * slowest plugin rather than for them all in turn. Lists sent a version below 1.1.0 are not asked.
   */
  async status(list: ConfList): Promise<void> {
    const { paths, version } = await this.prepare(list, { recent: true });
    if (compareVersions(version, "1.1.0") < 0) return;
    const asked = await Promise.allSettled(
      list.plugins.map((plugin, i) => execPlugin({ pluginPath: paths[i]!, command: "STATUS", cniPath: this.opts.cniPath, stdin: CniRuntime.pluginStdin(list, plugin, version, {}), timeoutMs: this.opts.execTimeoutMs }, this.opts.onExec)),
    );
    const notReady = asked.find((a) => a.status === "rejected");
    if (notReady) throw notReady.reason;
  }

  /**
   * CHECK (libcni CheckNetworkList): each plugin in order with `prevResult` (the cached result,
   * as the caller places it) and the ADD's CNI_ARGS and capability args; the first complaint
   * throws. Returns why nothing was checked: lists below 0.4.0 have no CHECK, `disableCheck`.
   */
  async check(net: LoadedConfList, att: Attachment, prevResult: Record<string, unknown>): Promise<string | undefined> {
    validateAttachment(att);
    const list = net.conflist;
    if (list.disableCheck) return "the list sets disableCheck";
    return this.locks.run(this.key(list.name, att), async () => {
      const { paths, version } = await this.prepare(list);
      if (compareVersions(version, "0.4.0") < 0) return `CNI ${version} has no CHECK (0.4.0 and later)`;
      const args = normaliseCniArgs(att.args);
      for (const [i, plugin] of list.plugins.entries()) {
        await this.exec("CHECK", paths[i]!, att, args, CniRuntime.pluginStdin(list, plugin, version, att.capabilityArgs ?? {}, prevResult)).catch((err: Error) => {
          const dismissed = knownFalseComplaint(plugin.type, err.message, prevResult);
          if (!dismissed) throw err;
          log.debug("CHECK complaint dismissed", { plugin: plugin.type, complaint: err.message, why: dismissed });
        });
      }
      return undefined;
    });
  }

  /**
   * GC: DEL every cached attachment of the network that is not in `valid`, then send the GC
   * verb (spec 1.1) to plugins that speak it. Returns the attachments removed. `inUse` is
   * asked with CNI container ids: attachments the caller is working on right now stay.
   */
  async gc(net: LoadedConfList, valid: Array<{ containerId: string; ifName: string }>, inUse: (cniContainerId: string) => boolean = () => false): Promise<CacheEntry[]> {
    const keep = new Set(valid.map((v) => `${v.containerId}/${v.ifName}`));
    const removed: CacheEntry[] = [];
    const errors: unknown[] = [];
    for (const entry of await this.cache.list(net.conflist.name)) {
      if (keep.has(`${entry.containerId}/${entry.ifName}`) || inUse(entry.containerId)) continue;
      try {
        await this.del(CniRuntime.confListOf(entry), { containerId: entry.containerId, ifName: entry.ifName, netns: entry.netns, args: entry.cniArgs, capabilityArgs: entry.capabilityArgs });
        removed.push(entry);
      } catch (err) {
        errors.push(err);
      }
    }
    if (!net.conflist.disableGC) await this.gcVerb(net.conflist, valid).catch((err: unknown) => errors.push(err));
    if (errors.length) throw errors[0];
    return removed;
  }

  /**
   * The GC verb (spec 1.1) to each plugin, with `cni.dev/valid-attachments`: what the caller
   * says is valid plus every attachment still cached (one whose DEL failed, one in use). No ADD
   * of the network runs meanwhile: one finishing after the list was made would be released.
   * Every plugin is sent it, whatever the others answered; the first error throws.
   */
  private async gcVerb(list: ConfList, valid: Array<{ containerId: string; ifName: string }>): Promise<void> {
    const { paths, version } = await this.prepare(list);
    if (compareVersions(version, "1.1.0") < 0) return;
    await this.addsOrGc.exclusive(list.name, async () => {
      const all = new Map([...valid, ...(await this.cache.list(list.name))].map((a) => [`${a.containerId}/${a.ifName}`, { containerID: a.containerId, ifname: a.ifName }]));
      const errors: unknown[] = [];
      for (const [i, plugin] of list.plugins.entries()) {
        const stdin = { ...CniRuntime.pluginStdin(list, plugin, version, {}), "cni.dev/valid-attachments": [...all.values()] };
        await execPlugin({ pluginPath: paths[i]!, command: "GC", cniPath: this.opts.cniPath, stdin, timeoutMs: this.opts.execTimeoutMs }, this.opts.onExec).catch((err: unknown) => errors.push(err));
      }
      if (errors.length) throw errors[0];
    });
  }

  /**
   * host-local reservations of the network that no attachment holds: not in `valid`, not
   * cached, older than `minAgeMs` (another process's ADD may be under way). What a forgotten
   * attachment (an ADD cut short, its records lost) left, which the reference plugins' GC does
   * not release (1.9.1: bridge, host-local, portmap and firewall GC are no-ops). Looked at while
   * no ADD of the network runs here: a finished ADD is cached, so never counted.
   */
  async unheldReservations(list: ConfList, valid: Array<{ containerId: string; ifName: string }>, minAgeMs: number, now = Date.now()): Promise<HostLocalReservation[]> {
    return this.addsOrGc.exclusive(list.name, async () => {
      const held = new Set([...valid, ...(await this.cache.list(list.name))].map((a) => `${a.containerId}/${a.ifName}`));
      const heldIds = new Set([...held].map((k) => k.split("/")[0]));
      // A reservation without an interface (older host-local) is held by any attachment of its container.
      const unheld = (await hostLocalStore(list)).filter((r) => !(r.ifName ? held.has(`${r.containerId}/${r.ifName}`) : heldIds.has(r.containerId)) && now - r.mtimeMs >= minAgeMs);
      // Only what this runtime added: the store may be shared with other runtimes (cache.ts).
      const owns = await this.cache.owned(list.name);
      return unheld.filter((r) => owns(r.containerId, r.ifName));
    });
  }
}
