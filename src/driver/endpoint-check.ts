// CHECK of an endpoint's chain (libcni CheckNetworkList) where the interface is now: for
// `cni-shim endpoints --check` and the drift reconciliation logs.
import type { CniOps } from "./seams.js";
import type { SandboxSight } from "../host/sandbox-key.js";
import type { EndpointRecord, NetworkRecord } from "./state.js";
import { checkTarget } from "./check-target.js";
import { networkConfList } from "./network-conf.js";

export interface EndpointCheck {
  endpoint: string;
  status: "ok" | "failed" | "skipped";
  /** The plugin's complaint, or why nothing was checked. */
  message: string;
}

export interface EndpointCheckDeps {
  cni: Pick<CniOps, "cache" | "check">;
  /** The link with `mac` in a bound namespace (host/link-by-mac.ts). */
  linkByMac(nsFile: string, mac: string): Promise<string | undefined>;
  /** Where this process opens a SandboxKey (host/sandbox-key.ts); none: the key itself. */
  sight?(sandboxKey: string): Promise<SandboxSight>;
}

export async function checkEndpoint(deps: EndpointCheckDeps, rec: EndpointRecord, net: NetworkRecord): Promise<EndpointCheck> {
  const out = (status: EndpointCheck["status"], message: string): EndpointCheck => ({ endpoint: rec.id, status, message });
  const list = networkConfList(net);
  const entry = await deps.cni.cache.read(list.conflist.name, rec.cniContainerId, rec.ifName);
  const sight = rec.sandboxKey && deps.sight ? await deps.sight(rec.sandboxKey) : undefined;
  // A managed plugin that cannot look where Docker put the namespace: nothing is known of it (not drift).
  if (sight?.kind === "unseen") return out("skipped", `cannot open the container's namespace: ${sight.why}`);
  const name = rec.sandboxKey && rec.macAddress ? await deps.linkByMac(rec.sandboxKey, rec.macAddress) : undefined;
  const target = checkTarget(rec, entry, name, sight?.kind === "visible" ? sight.path : rec.sandboxKey);
  if (target.kind === "skip") return out("skipped", target.why);
  if (target.kind === "fail") return out("failed", target.why);
  try {
    const why = await deps.cni.check(list, target.attachment, target.prevResult);
    return why ? out("skipped", why) : out("ok", "ok");
  } catch (err) {
    return out("failed", (err as Error).message);
  }
}
