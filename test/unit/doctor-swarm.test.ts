// doctor's swarm check from what Docker says (swarmVerdict, pure): off a swarm it passes; on a
// swarm node it wants a managed plugin enabled under the name swarm networks use.
import { describe, expect, it } from "vitest";
import { swarmVerdict, type SwarmFacts } from "../../src/doctor/swarm.js";

const driver = { Interface: { Types: ["docker.networkdriver/1.0"] } };
const facts = (over: Partial<SwarmFacts>): SwarmFacts => ({ nodeState: "active", plugins: [], swarmNetworks: [], name: "cni-shim", ...over });

describe("doctor swarm", () => {
  it("passes off a swarm, whatever the plugins", () => {
    const r = swarmVerdict(facts({ nodeState: "inactive", socket: "/run/docker/plugins/cni-shim.sock" }));
    expect(r).toMatchObject({ id: "swarm", status: "pass" });
    expect(r.summary).toContain("not an active swarm node (Swarm.LocalNodeState inactive)");
  });

  it("passes with the managed plugin enabled, naming the -d swarm networks use", () => {
    const r = swarmVerdict(facts({ plugins: [{ Name: "cni-shim:latest", Enabled: true, Config: driver }] }));
    expect(r.status).toBe("pass");
    expect(r.summary).toContain("swarm networks can use -d cni-shim:latest");
  });

  it("counts a plugin installed without --alias (REGISTRY/cni-shim:TAG), and no other network driver", () => {
    const r = swarmVerdict(facts({ plugins: [{ Name: "weave:latest", Enabled: true, Config: driver }, { Name: "10.0.0.1:5000/cni-shim:0.9.0", Enabled: true, Config: driver }] }));
    expect(r.summary).toContain("-d 10.0.0.1:5000/cni-shim:0.9.0");
  });

  it("warns when only the plain socket plugin is there: swarm takes managed plugins only, and says what to install", () => {
    const r = swarmVerdict(facts({ socket: "/run/docker/plugins/cni-shim.sock" }));
    expect(r.status).toBe("warn");
    expect(r.summary).toContain("only the plain plugin on /run/docker/plugins/cni-shim.sock");
    expect(r.summary).toContain("swarm accepts only managed plugins");
    expect(r.fix).toContain("docker plugin install --grant-all-permissions --alias cni-shim REGISTRY/cni-shim:TAG");
  });

  it("fails when the managed plugin is disabled", () => {
    const r = swarmVerdict(facts({ plugins: [{ Name: "cni-shim:latest", Enabled: false, Config: driver }] }));
    expect(r).toMatchObject({ status: "fail", fix: "docker plugin enable cni-shim:latest" });
  });

  it("fails when a swarm network uses a cni-shim driver name not enabled here", () => {
    const r = swarmVerdict(facts({ plugins: [{ Name: "cni-shim:latest", Enabled: true, Config: driver }], swarmNetworks: [{ Name: "web", Driver: "cni-shim:0.9.0" }, { Name: "ovl", Driver: "overlay" }] }));
    expect(r.status).toBe("fail");
    expect(r.summary).toContain("web (-d cni-shim:0.9.0)");
    expect(r.summary).not.toContain("ovl");
    expect(r.fix).toContain("docker plugin install");
  });

  it("names the plugin to enable when a swarm network's driver is a disabled plugin here", () => {
    const r = swarmVerdict(facts({ plugins: [{ Name: "cni-shim:latest", Enabled: false, Config: driver }], swarmNetworks: [{ Name: "web", Driver: "cni-shim:latest" }, { Name: "db", Driver: "cni-shim:latest" }] }));
    expect(r).toMatchObject({ status: "fail", fix: "docker plugin enable cni-shim:latest" });
    expect(r.summary).toContain("web (-d cni-shim:latest), db (-d cni-shim:latest)");
  });
});
