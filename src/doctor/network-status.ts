// `cni-shim doctor`: STATUS (CNI 1.1) of every created network's list, as CreateEndpoint asks
// it: a plugin that says it is not ready fails every `docker run` on that network.
import { buildRuntime } from "../compose.js";
import { StateStore } from "../driver/state.js";
import { compareVersions } from "../cni/version.js";
import { pass, problem, type Check, type CheckResult, type NamedCheck } from "./results.js";

const networkStatusCheck: Check = async ({ settings }) => {
  const networks = await new StateStore(settings.stateDir).listNetworks().catch(() => []);
  const runtime = buildRuntime({ ...settings, execTimeoutMs: Math.min(settings.execTimeoutMs, 10_000) });
  const out: CheckResult[] = [];
  for (const net of networks) {
    const details = { network: net.id.slice(0, 12), cniNetwork: net.conflist.name, cniVersion: net.conflist.cniVersion, cniVersions: net.conflist.cniVersions };
    try {
      const { version } = await runtime.prepare(net.conflist);
      await runtime.status(net.conflist);
      const asked = compareVersions(version, "1.1.0") >= 0 ? "every plugin answers STATUS: ready" : `sent CNI ${version}, which has no STATUS (1.1.0 and later): not asked`;
      out.push(pass("cni-shim", "network-status", `network ${details.network} (${net.conflist.name}): ${asked}`, { ...details, version }));
    } catch (err) {
      out.push(
        problem("fail", "cni-shim", "network-status", `network ${details.network} (${net.conflist.name}) is not ready: ${(err as Error).message}`, "containers cannot join it until the plugin is ready: see the plugin's message, or the conflist-NAME check for missing plugins and versions", details),
      );
    }
  }
  return out;
};

export const NETWORK_STATUS_CHECKS: NamedCheck[] = [{ group: "cni-shim", id: "network-status", run: networkStatusCheck }];
