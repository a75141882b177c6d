// Which containers Docker gave up on only because this plugin was unreachable (pure: inspect
// bodies in, verdicts out; restart-recovery.ts asks Docker and starts them).
//
// When dockerd comes back before the plugin (both killed, or the plugin's unit starts late),
// dockerd's restore starts the containers with a restart policy, fails to attach them to our
// network and does not try again. On Docker 20.10 State.Error then reads, from moby's
// libnetwork (network.go addEndpoint), plugin/store.go (Get: "legacy plugin") and
// pkg/plugins/client.go (Post on the socket):
//   failed to add endpoint: legacy plugin: Post "http://%2Frun%2Fdocker%2Fplugins%2Fcni-shim.sock/Plugin.Activate":
//     dial unix /run/docker/plugins/cni-shim.sock: connect: connection refused
// and, with the socket file gone, plugin/errors.go's `plugin "cni-shim" not found`. Newer
// engines wrap the same texts in more context ("failed to set up container networking: ...").
// A container qualifies only when it is not running, not being restarted by Docker, has a
// restart policy, is attached to a network of this driver, and its last start failed with such
// an error naming this plugin. A container the user stopped carries no error (a successful start
// clears State.Error, a stop sets none), so `unless-stopped` containers stopped by hand stay
// stopped; a plugin that answered with an error of its own (a CNI failure) does not qualify.
import type { z } from "zod";
import type { ContainerRestartView } from "./inspect.js";

/** The part of GET /containers/{id}/json the decision reads (checked as inspect.ts says). */
export type ContainerInspect = z.infer<typeof ContainerRestartView>;

/** This plugin: its driver name, its socket, and the Docker networks of that driver. */
export interface PluginIdentity {
  driver: string;
  socket: string;
  networks: Array<{ Id: string; Name: string }>;
}

export type Verdict = { start: true; reason: string } | { start: false; reason: string };

/** Restart policies under which Docker itself starts a container when the daemon starts. */
const POLICIES = new Set(["always", "unless-stopped", "on-failure"]);

/**
 * Transport failures of a call to a plugin socket (pkg/plugins/client.go passes the Go error
 * through): the socket is there but nobody listens, it is missing, the connection broke or
 * timed out. An HTTP answer of the plugin (`NetworkDriver.CreateEndpoint: ...`) is none of these.
 */
const UNREACHABLE = /connect: connection refused|connect: no such file or directory|connection reset by peer|broken pipe|: EOF\b|i\/o timeout|context deadline exceeded|Client\.Timeout exceeded/;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Does this State.Error say that Docker could not reach THIS plugin? */
export function unreachableError(error: string, me: Pick<PluginIdentity, "driver" | "socket">): string | undefined {
  if (!error) return undefined;
  const file = me.socket.split("/").pop() ?? me.socket;
  // The socket as Go prints it: in the URL (slashes as %2F) and in the dial error (plain).
  const namesSocket = new RegExp(`(?:/|%2F)${escapeRegExp(file)}(?![\\w.-])`, "i").test(error);
  if (namesSocket && UNREACHABLE.test(error)) return "its start failed because Docker could not reach the plugin";
  // plugin/errors.go errNotFound: no socket file (the plugin was stopped and removed it).
  if (error.includes(`plugin "${me.driver}" not found`)) return "its start failed because Docker did not find the plugin";
  return undefined;
}

/** Should this container be started again, and why (or why not)? */
export function restartVerdict(c: ContainerInspect, me: PluginIdentity): Verdict {
  const st = c.State ?? {};
  if (st.Running || st.Restarting || st.Paused) return { start: false, reason: "running, restarting or paused" };
  // "created": a `docker run` that failed, reported to whoever ran it; Docker's restore only
  // starts containers that ran before, which are "exited" once it failed to start them.
  if (st.Status !== "exited") return { start: false, reason: `status ${st.Status ?? "unknown"}` };
  const policy = c.HostConfig?.RestartPolicy?.Name ?? "";
  if (!POLICIES.has(policy)) return { start: false, reason: `restart policy "${policy || "no"}"` };
  const ids = new Set(me.networks.map((n) => n.Id));
  const names = new Set(me.networks.map((n) => n.Name));
  const attached = Object.entries(c.NetworkSettings?.Networks ?? {}).some(([name, n]) => names.has(name) || (!!n?.NetworkID && ids.has(n.NetworkID)));
  const mode = c.HostConfig?.NetworkMode ?? "";
  if (!attached && !names.has(mode) && !ids.has(mode)) return { start: false, reason: `not on a network of driver ${me.driver}` };
  const why = unreachableError(st.Error ?? "", me);
  if (!why) return { start: false, reason: st.Error ? "its last start failed for another reason" : "no failed start (stopped, or exited by itself)" };
  return { start: true, reason: `restart policy ${policy}; ${why}` };
}

/** The containers to start again, with the reason. */
export function containersToRestart(containers: ContainerInspect[], me: PluginIdentity): Array<{ container: ContainerInspect; reason: string }> {
  const out: Array<{ container: ContainerInspect; reason: string }> = [];
  for (const c of containers) {
    const v = restartVerdict(c, me);
    if (v.start) out.push({ container: c, reason: v.reason });
  }
  return out;
}
