// Which containers the plugin starts again after Docker gave up on them while it was down.
// The fixtures are `docker inspect` bodies from Docker 20.10 (scripts/soak.ts, phase
// dockerd-first): `always` containers whose restore start failed with the plugin kill -9'd
// (socket left: connection refused) and stopped cleanly (socket gone: plugin not found), and an
// `unless-stopped` container the user stopped. The other cases are those bodies changed
// in the one field that matters.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { containersToRestart, restartVerdict, unreachableError, type ContainerInspect, type PluginIdentity } from "../../src/docker/restart-candidates.js";

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/docker-inspect/${name}`, import.meta.url), "utf8")) as ContainerInspect;
const unreachable = fixture("20.10-always-plugin-unreachable.json");
const userStopped = fixture("20.10-unless-stopped-user-stopped.json");

const me: PluginIdentity = {
  driver: "cnishim-soak-cc8bf6",
  socket: "/run/docker/plugins/cnishim-soak-cc8bf6.sock",
  networks: [{ Id: "9daa0fcc14e3ff80d628e4f69728afc1c871875ae767e3f461da221f74d7c504", Name: "soak-df-6c17a7" }],
};

/** The fixture with some fields changed (deep enough for State, HostConfig, NetworkSettings). */
function variant(base: ContainerInspect, change: { State?: Partial<NonNullable<ContainerInspect["State"]>>; policy?: string; retries?: number; networks?: Record<string, { NetworkID: string }>; networkMode?: string }): ContainerInspect {
  const c = structuredClone(base);
  if (change.State) c.State = { ...c.State, ...change.State };
  if (change.policy !== undefined) c.HostConfig!.RestartPolicy = { Name: change.policy, MaximumRetryCount: change.retries ?? 0 };
  if (change.networks) c.NetworkSettings!.Networks = change.networks;
  if (change.networkMode !== undefined) c.HostConfig!.NetworkMode = change.networkMode;
  return c;
}

describe("restartVerdict", () => {
  it("starts an `always` container whose restore start failed with the plugin unreachable (the real 20.10 body)", () => {
    expect(unreachable.HostConfig?.RestartPolicy?.Name).toBe("always");
    const v = restartVerdict(unreachable, me);
    expect(v.start).toBe(true);
    expect(v.reason).toMatch(/restart policy always; .*could not reach the plugin/);
  });

  it("starts one whose restore start failed with the plugin's socket gone (the real 20.10 body after a clean stop)", () => {
    const notFound = fixture("20.10-always-plugin-not-found.json");
    expect(notFound.State?.Error).toBe('failed to add endpoint: plugin "cnishim-soak-211636" not found');
    const other: PluginIdentity = { driver: "cnishim-soak-211636", socket: "/run/docker/plugins/cnishim-soak-211636.sock", networks: [{ Id: "1a1038a42e3e279a4819e18540f904e94d97880528b59e6064c2b726c97dd187", Name: "soak-df-0e1955" }] };
    expect(restartVerdict(notFound, other)).toEqual({ start: true, reason: "restart policy always; its start failed because Docker did not find the plugin" });
    expect(restartVerdict(notFound, me).start).toBe(false); // another driver's network and plugin
  });

  it("starts `unless-stopped` and `on-failure` containers in the same state", () => {
    expect(restartVerdict(variant(unreachable, { policy: "unless-stopped" }), me).start).toBe(true);
    expect(restartVerdict(variant(unreachable, { policy: "on-failure", retries: 3 }), me).start).toBe(true);
  });

  it("leaves containers without a restart policy alone (a failed `docker start` was reported to whoever ran it)", () => {
    expect(restartVerdict(variant(unreachable, { policy: "no" }), me)).toEqual({ start: false, reason: 'restart policy "no"' });
    expect(restartVerdict(variant(unreachable, { policy: "" }), me).start).toBe(false);
  });

  it("leaves an `unless-stopped` container the user stopped alone: it carries no error (the real 20.10 body)", () => {
    expect(userStopped.HostConfig?.RestartPolicy?.Name).toBe("unless-stopped");
    expect(userStopped.State?.Error).toBe("");
    expect(restartVerdict(userStopped, me)).toEqual({ start: false, reason: "no failed start (stopped, or exited by itself)" });
  });

  it("leaves running, restarting, paused, created and dead containers alone", () => {
    expect(restartVerdict(variant(unreachable, { State: { Running: true, Status: "running" } }), me).start).toBe(false);
    expect(restartVerdict(variant(unreachable, { State: { Restarting: true, Status: "restarting" } }), me).start).toBe(false);
    expect(restartVerdict(variant(unreachable, { State: { Paused: true, Status: "paused" } }), me).start).toBe(false);
    expect(restartVerdict(variant(unreachable, { State: { Status: "created" } }), me).start).toBe(false);
    expect(restartVerdict(variant(unreachable, { State: { Status: "dead", Dead: true } as never }), me).start).toBe(false);
  });

  it("leaves containers whose start failed because another plugin was unreachable", () => {
    const other = 'failed to add endpoint: legacy plugin: Post "http://%2Frun%2Fdocker%2Fplugins%2Fweave.sock/Plugin.Activate": dial unix /run/docker/plugins/weave.sock: connect: connection refused';
    expect(restartVerdict(variant(unreachable, { State: { Error: other } }), me)).toEqual({ start: false, reason: "its last start failed for another reason" });
    // A driver whose name merely starts with ours is another plugin.
    const longer = unreachable.State!.Error!.replaceAll("cnishim-soak-cc8bf6.sock", "cnishim-soak-cc8bf6x.sock");
    expect(restartVerdict(variant(unreachable, { State: { Error: longer } }), me).start).toBe(false);
  });

  it("leaves containers whose start failed at the plugin's own answer (a CNI error), not at reaching it", () => {
    const answered = "failed to create endpoint web on network demo: NetworkDriver.CreateEndpoint: cni ADD failed: plugin bridge: failed to allocate for range 0: no IP addresses available";
    expect(restartVerdict(variant(unreachable, { State: { Error: answered } }), me).start).toBe(false);
  });

  it("leaves containers that are not on a network of this driver", () => {
    const elsewhere = variant(unreachable, { networks: { bridge: { NetworkID: "4a6fe3970d68" } }, networkMode: "bridge" });
    expect(restartVerdict(elsewhere, me)).toEqual({ start: false, reason: "not on a network of driver cnishim-soak-cc8bf6" });
    // Attached by network id alone (the entry's key is the name the container was started with).
    const byId = variant(unreachable, { networks: { renamed: { NetworkID: me.networks[0]!.Id } }, networkMode: "renamed" });
    expect(restartVerdict(byId, me).start).toBe(true);
  });
});

describe("unreachableError", () => {
  const id = { driver: "cni-shim", socket: "/run/docker/plugins/cni-shim.sock" };
  it("recognises the texts moby produces for an unreachable legacy plugin", () => {
    // 20.10, restore: the socket file is there, nobody listens (the plugin was kill -9'd).
    expect(unreachableError('failed to add endpoint: legacy plugin: Post "http://%2Frun%2Fdocker%2Fplugins%2Fcni-shim.sock/Plugin.Activate": dial unix /run/docker/plugins/cni-shim.sock: connect: connection refused', id)).toBeDefined();
    // Newer engines wrap it; the socket file is missing.
    expect(unreachableError('failed to set up container networking: failed to add endpoint: legacy plugin: Post "http://%2Frun%2Fdocker%2Fplugins%2Fcni-shim.sock/Plugin.Activate": dial unix /run/docker/plugins/cni-shim.sock: connect: no such file or directory', id)).toBeDefined();
    // The connection broke or timed out mid-call.
    expect(unreachableError('failed to create endpoint web on network demo: legacy plugin: Post "http://%2Frun%2Fdocker%2Fplugins%2Fcni-shim.sock/NetworkDriver.CreateEndpoint": EOF', id)).toBeDefined();
    // plugin/errors.go, no socket file at lookup.
    expect(unreachableError('failed to add endpoint: plugin "cni-shim" not found', id)).toBeDefined();
  });
  it("does not take other failures for it", () => {
    expect(unreachableError("", id)).toBeUndefined();
    expect(unreachableError('plugin "cni-shim-other" not found', id)).toBeUndefined();
    expect(unreachableError("NetworkDriver.Join: endpoint abc not found", id)).toBeUndefined();
    expect(unreachableError('Post "http://%2Frun%2Fdocker%2Fplugins%2Fcni-shim.sock.old/Plugin.Activate": dial unix /run/docker/plugins/cni-shim.sock.old: connect: connection refused', id)).toBeUndefined();
  });
});

describe("containersToRestart", () => {
  it("picks exactly the containers Docker gave up on because of this plugin", () => {
    const all = [
      unreachable,
      variant(unreachable, { policy: "unless-stopped" }),
      variant(unreachable, { policy: "on-failure" }),
      variant(unreachable, { policy: "no" }),
      userStopped,
      variant(unreachable, { State: { Running: true, Status: "running", Error: "" } }),
    ].map((c, i) => ({ ...c, Id: `${i}${c.Id.slice(1)}` }));
    expect(containersToRestart(all, me).map((x) => x.container.Id[0])).toEqual(["0", "1", "2"]);
  });
});
