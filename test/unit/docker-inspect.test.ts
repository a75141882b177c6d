// Docker's inspect replies as attach, compare and the endpoints command read them
// (src/docker/inspect.ts), through a stand-in for dockerode's objects: real-looking replies pass,
// replies of another shape are errors naming the call and the field, Docker's own errors pass.
import { describe, expect, it } from "vitest";
import type Docker from "dockerode";
import { readFileSync, readdirSync } from "node:fs";
import { ContainerInspect, ContainerList, ContainerRestartView, execExitCode, inspectContainer, inspectNetwork, NetworkList } from "../../src/docker/inspect.js";
import { checked } from "../../src/util/zod.js";

const FIXTURES = new URL("../fixtures/docker-inspect/", import.meta.url);

// GET /containers/web/json from Docker 20.10, cut down to a few of the fields beyond those read.
const CONTAINER = {
  Id: "e18b4a35aed168d993936be091f6eca4c5164cc8e3b9039ed86f986d48650ca8",
  Created: "2026-12-06T14:48:49.5Z",
  Name: "/web",
  State: { Status: "running", Running: true, Paused: false, Restarting: false, Pid: 13583, ExitCode: 0, Error: "" },
  HostConfig: { NetworkMode: "demo", RestartPolicy: { Name: "no", MaximumRetryCount: 0 } },
  Config: { Hostname: "e18b4a35aed1", Labels: {}, Image: "cni-shim-busybox" },
  NetworkSettings: {
    Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }], "443/tcp": null },
    Networks: {
      demo: {
        IPAMConfig: null,
        Aliases: ["e18b4a35aed1"],
        NetworkID: "1bd0be74426910339855a73df0dd1aa0f6f02aaf68bcbdb13405a8b42d041de1",
        EndpointID: "c3f5822525733146b21b3eb5118e5f1fcd788ce41bc73b5696215287858a8db4",
        Gateway: "172.18.0.1",
        IPAddress: "172.18.0.2",
        IPPrefixLen: 16,
        MacAddress: "02:42:ac:12:00:02",
      },
    },
  },
};

// GET /networks/demo from Docker 20.10, cut down likewise.
const NETWORK = {
  Name: "demo",
  Id: "1bd0be74426910339855a73df0dd1aa0f6f02aaf68bcbdb13405a8b42d041de1",
  Driver: "bridge",
  IPAM: { Driver: "default", Options: null, Config: [{ Subnet: "172.18.0.0/16", Gateway: "172.18.0.1" }] },
  Containers: { e18b4a35aed1: { Name: "web", EndpointID: "c3f58225257331", MacAddress: "02:42:ac:12:00:02", IPv4Address: "172.18.0.2/16", IPv6Address: "" } },
  Options: {},
  Labels: { "io.cni-shim.compare": "b74e69" },
};

/** A dockerode stand-in whose inspect() answers `reply` (or rejects with it when it is an Error). */
function dockerAnswering(reply: unknown): Docker {
  const inspect = () => (reply instanceof Error ? Promise.reject(reply) : Promise.resolve(structuredClone(reply)));
  return { getContainer: () => ({ inspect }), getNetwork: () => ({ inspect }) } as unknown as Docker;
}

describe("inspectContainer / inspectNetwork", () => {
  it("reads the fields attach and compare use from real-looking replies", async () => {
    const c = await inspectContainer(dockerAnswering(CONTAINER), "web");
    expect(c).toMatchObject({ Id: CONTAINER.Id, Name: "/web", State: { Pid: 13583, Running: true }, HostConfig: { NetworkMode: "demo" }, Config: { Labels: {} } });
    expect(c.NetworkSettings.Ports).toEqual({ "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }], "443/tcp": null });
    expect(c.NetworkSettings.Networks?.demo).toEqual({ EndpointID: CONTAINER.NetworkSettings.Networks.demo.EndpointID, Gateway: "172.18.0.1", IPAddress: "172.18.0.2", IPPrefixLen: 16, MacAddress: "02:42:ac:12:00:02" });
    const n = await inspectNetwork(dockerAnswering(NETWORK), "demo");
    expect(n).toEqual({
      Id: NETWORK.Id,
      Name: "demo",
      Labels: { "io.cni-shim.compare": "b74e69" },
      IPAM: { Config: [{ Subnet: "172.18.0.0/16", Gateway: "172.18.0.1" }] },
      Containers: { e18b4a35aed1: { Name: "web", EndpointID: "c3f58225257331" } },
    });
    // Docker's "none" and "host" networks: no subnet, no endpoints listed, null labels.
    expect((await inspectNetwork(dockerAnswering({ ...NETWORK, IPAM: { Driver: "default", Config: [] }, Containers: null, Labels: null }), "none")).IPAM.Config).toEqual([]);
  });

  it("names the call and the field when a reply is not what cni-shim reads", async () => {
    const noPid = { ...CONTAINER, State: { Status: "created", Running: false } };
    await expect(inspectContainer(dockerAnswering(noPid), "web")).rejects.toThrow(/^docker container inspect web: unexpected output: State\.Pid: Invalid input: expected number, received undefined$/);
    const badPorts = { ...CONTAINER, NetworkSettings: { ...CONTAINER.NetworkSettings, Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: 8080 }] } } };
    await expect(inspectContainer(dockerAnswering(badPorts), "web")).rejects.toThrow(/^docker container inspect web: unexpected output: NetworkSettings\.Ports\.80\/tcp\.0\.HostPort: /);
    const badSubnet = { ...NETWORK, IPAM: { Config: [{ Subnet: 172 }] } };
    await expect(inspectNetwork(dockerAnswering(badSubnet), "demo")).rejects.toThrow(/^docker network inspect demo: unexpected output: IPAM\.Config\.0\.Subnet: /);
    const noName = { ...NETWORK, Containers: { abc: { EndpointID: "ep" } } };
    await expect(inspectNetwork(dockerAnswering(noName), "demo")).rejects.toThrow(/^docker network inspect demo: unexpected output: Containers\.abc\.Name: /);
  });

  it("passes Docker's errors through as dockerode gives them (a 404 stays a 404)", async () => {
    const notFound = Object.assign(new Error("(HTTP code 404) no such container - No such container: gone"), { statusCode: 404 });
    await expect(inspectContainer(dockerAnswering(notFound), "gone")).rejects.toBe(notFound);
    await expect(inspectNetwork(dockerAnswering(notFound), "gone")).rejects.toBe(notFound);
  });
});

describe("execExitCode", () => {
  const exec = (reply: unknown) => ({ id: "5e1f", inspect: () => Promise.resolve(reply) }) as unknown as Docker.Exec;

  it("is the exit code, null while the command runs", async () => {
    expect(await execExitCode(exec({ ID: "5e1f", Running: false, ExitCode: 1, Pid: 4242 }))).toBe(1);
    expect(await execExitCode(exec({ ID: "5e1f", Running: true, ExitCode: null }))).toBeNull();
  });

  it("names the call and the field otherwise", async () => {
    await expect(execExitCode(exec({ ID: "5e1f", Running: false }))).rejects.toThrow(/^docker exec inspect 5e1f: unexpected output: ExitCode: /);
  });
});

describe("the replies restart recovery reads", () => {
  it("whole replies of Docker 20.10 (test/fixtures/docker-inspect) pass both container schemas", () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const raw: unknown = JSON.parse(readFileSync(new URL(f, FIXTURES), "utf8"));
      expect(() => ContainerInspect.parse(raw), f).not.toThrow();
      const view = ContainerRestartView.parse(raw);
      expect(view.State?.Status, f).toBe("exited");
      expect(Object.keys(view.NetworkSettings?.Networks ?? {}).length, f).toBeGreaterThan(0);
    }
  });

  it("names the reply and the field when one is not what it reads", () => {
    expect(checked("Docker's network list", NetworkList, [{ Id: "9daa0fcc14e3", Name: "soak", Driver: "cni-shim" }])).toEqual([{ Id: "9daa0fcc14e3", Name: "soak", Driver: "cni-shim" }]);
    expect(() => checked("Docker's network list", NetworkList, { Id: "9daa0fcc14e3" })).toThrow(/^Docker's network list: unexpected output: \(top level\): /);
    expect(() => checked("Docker's container list", ContainerList, [{ Id: "c1", NetworkSettings: { Networks: { soak: { NetworkID: 9 } } } }])).toThrow(/^Docker's container list: unexpected output: 0\.NetworkSettings\.Networks\.soak\.NetworkID: /);
    // Null entries and a null map pass, as the decision (restart-candidates.ts) allows them.
    expect(checked("Docker's container list", ContainerList, [{ Id: "c1", NetworkSettings: { Networks: { soak: null } } }, { Id: "c2", NetworkSettings: { Networks: null } }])).toHaveLength(2);
    expect(() => checked("Docker's container inspect", ContainerRestartView, { Id: "c1", State: { Status: "exited", Error: { message: "x" } } })).toThrow(/^Docker's container inspect: unexpected output: State\.Error: .*expected string/);
  });
});
