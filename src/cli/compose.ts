// Wiring the runtime, state and driver from settings (shared by serve, gc and the tests).
import { CniRuntime } from "../cni/runtime.js";
import { StateStore } from "../driver/state.js";
import { CniShimDriver } from "../driver/driver.js";
import { dockerClient } from "../docker/client.js";
import { confDirs, type Settings } from "./settings.js";
import { log } from "../util/log.js";

export function buildRuntime(s: Settings): CniRuntime {
  return new CniRuntime({
    cniPath: s.cniPath,
    cacheDir: s.cacheDir,
    execTimeoutMs: s.execTimeoutMs,
    onExec: (r) => log.info("cni exec", { plugin: r.plugin, command: r.command, container: r.containerId?.slice(0, 12), ms: Math.round(r.ms), ok: r.ok }),
  });
}

export function buildDriver(s: Settings): CniShimDriver {
  return new CniShimDriver({
    runtime: buildRuntime(s),
    state: new StateStore(s.stateDir),
    confDirs: confDirs(s),
    docker: dockerClient(s.dockerSocket),
    reconcileGraceMs: s.reconcileGraceS * 1000,
    backgroundTeardown: s.backgroundTeardown,
  });
}
