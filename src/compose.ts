// Wiring the runtime, state, driver and attacher from settings: the one place every command
// (and compare) builds them, so they all read the same directories the same way.
import type Docker from "dockerode";
import { CniRuntime } from "./cni/runtime.js";
import { StateStore } from "./driver/state.js";
import { CniShimDriver } from "./driver/driver.js";
import { AttachChoice } from "./driver/attach-choice.js";
import { ForwardAccept, forwardOwner } from "./driver/forward-accept.js";
import { applyForwardChain } from "./host/forward-chain.js";
import { Attacher } from "./attach/attach.js";
import { dockerClient } from "./docker/client.js";
import { dockerNetworksOverSocket } from "./docker/networks.js";
import { dockerContainersOverSocket } from "./docker/containers.js";
import { RestartRecovery } from "./docker/restart-recovery.js";
import type { DhcpOps, DriverEvents } from "./driver/seams.js";
import { dhcpSockets, ensureDhcpDaemon } from "./cni/dhcp.js";
import { confDirs, type Settings } from "./settings.js";
import { log } from "./util/log.js";

export function buildRuntime(s: Settings): CniRuntime {
  return new CniRuntime({
    cniPath: s.cniPath,
    cacheDir: s.cacheDir,
    execTimeoutMs: s.execTimeoutMs,
    onExec: (r) => log.info("cni exec", { plugin: r.plugin, command: r.command, container: r.containerId?.slice(0, 12), ms: Math.round(r.ms), ok: r.ok }),
  });
}

/** The dhcp IPAM's daemon (started when a network needs it and none answers) and the IPAM-only calls. */
function buildDhcp(s: Settings, runtime: CniRuntime): DhcpOps {
  return {
    async ensureDaemon(list) {
      for (const socket of dhcpSockets(list)) {
        const out = await ensureDhcpDaemon({ socket, cniPath: s.cniPath, stateDir: s.stateDir }).catch((err: Error) => {
          throw new Error(`CNI network "${list.name}" uses the dhcp IPAM and no dhcp daemon answers on ${socket}: ${err.message}; start one yourself (/usr/lib/cni/dhcp daemon, or systemctl enable --now cni-dhcp.socket) and try again`);
        });
        if (out.outcome === "started") log.info("started the dhcp daemon", { socket, pid: out.pid, log: out.log, cniNetwork: list.name });
      }
    },
    addIpam: (net, att) => runtime.addIpam(net, att),
    delIpam: (net, att) => runtime.delIpam(net, att),
  };
}

export function buildDriver(s: Settings, events?: DriverEvents): CniShimDriver {
  const state = new StateStore(s.stateDir);
  const runtime = buildRuntime(s);
  return new CniShimDriver({
    events,
    runtime,
    dhcp: buildDhcp(s, runtime),
    state,
    forward: new ForwardAccept({ enabled: s.acceptForwarding, owner: forwardOwner(s.stateDir), networks: () => state.listNetworks(), apply: applyForwardChain }),
    confDirs: confDirs(s),
    dockerNetworks: dockerNetworksOverSocket(s.dockerSocket),
    dockerContainers: dockerContainersOverSocket(s.dockerSocket),
    reconcileGraceMs: s.reconcileGraceS * 1000,
    teardownMode: s.teardownMode,
    attach: new AttachChoice(s.attach, s.stateDir),
  });
}

/** serve's restart recovery: containers Docker gave up on while the plugin was unreachable. */
export function buildRestartRecovery(s: Settings): RestartRecovery {
  return new RestartRecovery({ dockerSocket: s.dockerSocket, pluginSocket: s.socket, startTimeoutMs: Math.max(90_000, 3 * s.execTimeoutMs) });
}

export interface AttacherOverrides {
  /** A client with another timeout (compare waits longer on a busy daemon). */
  docker?: Docker;
  /** Conf dirs searched instead of the settings' (compare puts a temporary one first). */
  confDirs?: string[];
}

export function buildAttacher(s: Settings, overrides: AttacherOverrides = {}): Attacher {
  return new Attacher(buildRuntime(s), overrides.docker ?? dockerClient(s.dockerSocket), new StateStore(s.stateDir), overrides.confDirs ?? confDirs(s));
}
