// When an in-sandbox Join takes the hand-out (src/driver/mixed.ts): Docker's interfaces in the
// namespace, or a container not started yet that has this network and one cni-shim does not drive.
import { describe, expect, it } from "vitest";
import { foreignLinks, mixedReason, needsDockerLook, networkIdOf, type DockerView } from "../../src/driver/mixed.js";

const ours = new Set(["net-cni-a", "net-cni-b"]);
const networks: DockerView["networks"] = [
  { id: "net-cni-a", name: "cnia" },
  { id: "net-cni-b", name: "cnib" },
  { id: "net-docker-1234567890", name: "mybridge" },
];
const base = { links: ["lo"], ownLinks: [], networkId: "net-cni-a", cniShimNetworks: ours };
const view = (...containers: DockerView["containers"]): DockerView => ({ containers, networks });

describe("mixedReason", () => {
  it("stays in the sandbox for a fresh namespace of a container with cni-shim networks only", () => {
    expect(mixedReason({ ...base, docker: view({ id: "c1", state: "created", networks: [{ key: "cnia", networkId: "" }, { key: "cnib", networkId: "" }] }) })).toBeUndefined();
  });

  it("takes the hand-out when a container not started yet has this network and a Docker one (by name, NetworkID empty)", () => {
    const why = mixedReason({ ...base, docker: view({ id: "c1", state: "created", networks: [{ key: "cnia", networkId: "" }, { key: "mybridge", networkId: "" }] }) });
    expect(why).toContain("mybridge");
  });

  it("matches a container's network by NetworkID, by id and by id prefix", () => {
    for (const key of ["net-docker-1234567890", "net-docker"]) {
      expect(mixedReason({ ...base, docker: view({ id: "c1", state: "exited", networks: [{ key: "x", networkId: "net-cni-a" }, { key, networkId: "" }] }) })).toContain(key);
    }
    expect(networkIdOf({ key: "cnib", networkId: "" }, networks)).toBe("net-cni-b");
    expect(networkIdOf({ key: "whatever", networkId: "net-cni-a" }, networks)).toBe("net-cni-a");
    // A network Docker's list does not have counts as one cni-shim does not drive.
    expect(networkIdOf({ key: "gone", networkId: "" }, networks)).toBe("gone");
  });

  it("ignores running containers and containers not on this network", () => {
    const mixed = [{ key: "cnia", networkId: "net-cni-a" }, { key: "mybridge", networkId: "net-docker-1234567890" }];
    expect(mixedReason({ ...base, docker: view({ id: "c1", state: "running", networks: mixed }), networkId: "net-cni-a" })).toBeUndefined();
    expect(mixedReason({ ...base, docker: view({ id: "c1", state: "created", networks: mixed }), networkId: "net-cni-b" })).toBeUndefined();
    expect(mixedReason({ ...base, docker: view({ id: "c1", state: "restarting", networks: mixed }) })).toBeDefined();
  });

  it("takes the hand-out when Docker's interfaces are in the namespace, whatever Docker's lists say", () => {
    expect(mixedReason({ ...base, links: ["lo", "eth0"], docker: view() })).toContain("eth0");
    expect(mixedReason({ ...base, links: ["lo", "eth0", "eth1"], ownLinks: ["eth0"] })).toContain("eth1");
  });

  it("keeps the path of a namespace where cni-shim's own interfaces are, without asking Docker", () => {
    expect(mixedReason({ ...base, links: ["lo", "eth0"], ownLinks: ["eth0"], docker: new Error("not asked") })).toBeUndefined();
    expect(needsDockerLook(["lo", "eth0"])).toBe(false);
    expect(needsDockerLook(["lo"])).toBe(true);
  });

  it("takes the hand-out when Docker could not answer, and decides by the namespace alone with no Docker to ask", () => {
    expect(mixedReason({ ...base, docker: new Error("timeout") })).toContain("timeout");
    expect(mixedReason({ ...base })).toBeUndefined();
    expect(foreignLinks(["lo", "eth0", "eth1"], ["eth1"])).toEqual(["eth0"]);
  });
});
