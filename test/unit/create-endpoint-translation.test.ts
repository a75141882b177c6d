// CreateEndpoint's translation (port-requests.ts, endpoint-mac.ts, attachment-plan.ts,
// verify-result.ts), fed with the request bodies a real Docker 20.10 sent.
import { describe, expect, it } from "vitest";
import { normaliseCniArgs } from "../../src/cni/args.js";
import type { Result } from "../../src/cni/schemas.js";
import * as api from "../../src/libnetwork/schemas.js";
import { TranslationError } from "../../src/driver/translation-error.js";
import { portRequests } from "../../src/driver/port-requests.js";
import { endpointMac, requestedMac } from "../../src/driver/endpoint-mac.js";
import { planAttachment } from "../../src/driver/attachment-plan.js";
import { verifyResult } from "../../src/driver/verify-result.js";
import { endpointFixture, fixtureJson } from "../helpers/protocol-client.js";
import { translationError } from "../helpers/translation.js";

const EP_ID = "fe6a48ea14a4f8fb944114527c28971beb6915d70a049879eb8bb0f2e8553f8a";

const epReq = (file: string) => api.CreateEndpointRequest.parse(fixtureJson(file));

describe("portRequests", () => {
  const pm = (bindings: unknown[]) => ({ "com.docker.network.portmap": bindings });
  const b = (over: Record<string, unknown>) => ({ Proto: 6, IP: "", Port: 80, HostIP: "", HostPort: 8080, HostPortEnd: 8080, ...over });

  it("reads the publish fixture", () => {
    expect(portRequests(epReq("02-CreateEndpoint-publish.json").Options)).toEqual([
      { protocol: "tcp", containerPort: 80, hostIP: undefined, hostPortStart: 8081, hostPortEnd: 8081 },
    ]);
  });

  it("maps Proto 6/17/132 to tcp/udp/sctp", () => {
    const out = portRequests(pm([b({ Proto: 6, Port: 1 }), b({ Proto: 17, Port: 2 }), b({ Proto: 132, Port: 3 })]));
    expect(out.map((r) => [r.protocol, r.containerPort])).toEqual([
      ["tcp", 1],
      ["udp", 2],
      ["sctp", 3],
    ]);
  });

  it("keeps HostPort 0 (any port) and ranges as start/end", () => {
    const out = portRequests(pm([b({ HostPort: 0, HostPortEnd: 0 }), b({ Port: 53, Proto: 17, HostPort: 8000, HostPortEnd: 8010 }), b({ HostPort: 9000, HostPortEnd: undefined })]));
    expect(out[0]).toMatchObject({ hostPortStart: 0, hostPortEnd: 0 });
    expect(out[1]).toMatchObject({ protocol: "udp", containerPort: 53, hostPortStart: 8000, hostPortEnd: 8010 });
    expect(out[2]).toMatchObject({ hostPortStart: 9000, hostPortEnd: 9000 });
  });

  it("drops the wildcard HostIP and keeps a specific one", () => {
    const out = portRequests(pm([b({ HostIP: "0.0.0.0" }), b({ HostIP: "" }), b({ HostIP: "127.0.0.1" }), b({ HostIP: "::" })]));
    expect(out[0]!.hostIP).toBeUndefined();
    expect(out[1]!.hostIP).toBeUndefined();
    expect(out[2]!.hostIP).toBe("127.0.0.1");
    expect(out[3]!.hostIP).toBeUndefined();
  });

  it("rejects other IP protocols", () => {
    const err = translationError(() => portRequests(pm([b({ Proto: 1, Port: 0 })])));
    expect(err.message).toMatch(/tcp, udp and sctp/);
  });

  it("no portmap, null or empty: nothing to publish; garbage: an error", () => {
    expect(portRequests({})).toEqual([]);
    expect(portRequests(pm([]))).toEqual([]);
    expect(portRequests({ "com.docker.network.portmap": null })).toEqual([]);
    expect(() => portRequests({ "com.docker.network.portmap": "80:80" })).toThrow(TranslationError);
  });
});

describe("requestedMac", () => {
  it("takes the interface MAC", () => {
    expect(requestedMac(epReq("02-CreateEndpoint-mac.json"))).toBe("02:00:00:00:00:0a");
  });

  it("decodes the base64 option when the interface has none (AgAAAAAK = 02:00:00:00:00:0a)", () => {
    const body = endpointFixture("02-CreateEndpoint-mac.json");
    body.Interface.MacAddress = "";
    expect(requestedMac(api.CreateEndpointRequest.parse(body))).toBe("02:00:00:00:00:0a");
  });

  it("lower-cases and returns nothing when unset", () => {
    const body = endpointFixture("02-CreateEndpoint-publish.json");
    expect(requestedMac(api.CreateEndpointRequest.parse(body))).toBeUndefined();
    body.Interface.MacAddress = "02:AB:CD:EF:00:01";
    expect(requestedMac(api.CreateEndpointRequest.parse(body))).toBe("02:ab:cd:ef:00:01");
  });

  it("ignores a base64 option that is not 6 bytes", () => {
    const body = endpointFixture("02-CreateEndpoint-publish.json");
    body.Options["com.docker.network.endpoint.macaddress"] = Buffer.from([1, 2, 3]).toString("base64");
    expect(requestedMac(api.CreateEndpointRequest.parse(body))).toBeUndefined();
  });
});

describe("planAttachment", () => {
  const ports = [{ hostPort: 8081, containerPort: 80, protocol: "tcp" as const }];

  it("plans CNI args, capability args and names from the publish fixture", () => {
    const req = epReq("02-CreateEndpoint-publish.json");
    const plan = planAttachment(req, ports);
    expect(plan.cniArgs[0]).toEqual(["IP", "172.18.0.2"]);
    const args = new Map(plan.cniArgs);
    expect(args.get("K8S_POD_NAMESPACE")).toBeTruthy();
    expect(args.get("K8S_POD_NAME")).toBeTruthy();
    expect(args.get("K8S_POD_INFRA_CONTAINER_ID")).toBe(EP_ID);
    // Every arg can be carried in CNI_ARGS.
    expect(() => normaliseCniArgs(plan.cniArgs)).not.toThrow();
    expect(plan.capabilityArgs.ips).toEqual(["172.18.0.2/16"]);
    expect(plan.capabilityArgs.portMappings).toEqual(ports);
    // No --mac-address: the MAC made of the IPv4 address, as Docker's bridge driver did (<= 26).
    expect(plan.capabilityArgs.mac).toBe("02:42:ac:12:00:02");
    expect(plan.cniContainerId).toBe(EP_ID);
    expect(plan.ifName).toBe("eth0");
  });

  it("uses the given pod name", () => {
    const plan = planAttachment(epReq("02-CreateEndpoint-publish.json"), [], { podName: "web-1" });
    expect(new Map(plan.cniArgs).get("K8S_POD_NAME")).toBe("web-1");
    expect(plan.capabilityArgs.portMappings).toBeUndefined();
  });

  it("gives an endpoint without IPv4 address and without --mac-address no MAC (the chain's own)", () => {
    const req = epReq("02-CreateEndpoint-publish.json");
    expect(endpointMac({ ...req, Interface: { AddressIPv6: "fd00::5/64" } })).toBeUndefined();
    expect(endpointMac({ ...req, Interface: { Address: "10.1.255.7/24" } })).toBe("02:42:0a:01:ff:07");
  });

  it("passes a requested MAC as the mac capability", () => {
    const plan = planAttachment(epReq("02-CreateEndpoint-mac.json"), []);
    expect(plan.capabilityArgs.mac).toBe("02:00:00:00:00:0a");
    expect(plan.cniArgs[0]).toEqual(["IP", "172.20.0.2"]);
  });

  it("includes the IPv6 address in ips", () => {
    const body = endpointFixture("02-CreateEndpoint-publish.json");
    body.Interface.AddressIPv6 = "fd00:99::2/64";
    const plan = planAttachment(api.CreateEndpointRequest.parse(body), []);
    expect(plan.capabilityArgs.ips).toEqual(["172.18.0.2/16", "fd00:99::2/64"]);
  });

  it("a chain that takes the ips capability gets the address there only (static IPAM refuses a bare IP=)", () => {
    const plan = planAttachment(epReq("02-CreateEndpoint-publish.json"), [], { ipsCapability: true });
    expect(plan.cniArgs.some(([k]) => k === "IP")).toBe(false);
    expect(plan.capabilityArgs.ips).toEqual(["172.18.0.2/16"]);
  });

  it("no address: no IP= arg and no ips", () => {
    const body = endpointFixture("02-CreateEndpoint-publish.json");
    body.Interface.Address = "";
    const plan = planAttachment(api.CreateEndpointRequest.parse(body), []);
    expect(plan.cniArgs.some(([k]) => k === "IP")).toBe(false);
    expect(plan.capabilityArgs.ips).toBeUndefined();
  });

  it("tmpName and staging netns: short, unique per endpoint id prefix, deterministic", () => {
    const ids = [EP_ID, "0123456789ab" + "d".repeat(52), "0123456789ac" + "d".repeat(52), "f".repeat(64)];
    const plans = ids.map((id) => {
      const body = endpointFixture("02-CreateEndpoint-publish.json");
      body.EndpointID = id;
      return planAttachment(api.CreateEndpointRequest.parse(body), []);
    });
    for (const p of plans) {
      expect(p.tmpName.length).toBeLessThanOrEqual(15);
      expect(p.tmpName).toMatch(/^[a-zA-Z0-9_.-]+$/);
      expect(p.tmpName).not.toMatch(/^eth/); // never collide with Docker's DstPrefix names
      expect(p.stagingNetns).toMatch(/^[a-zA-Z0-9_.-]+$/);
    }
    expect(new Set(plans.map((p) => p.tmpName)).size).toBe(ids.length);
    expect(new Set(plans.map((p) => p.stagingNetns)).size).toBe(ids.length);
    expect(plans[0]!.tmpName).toContain(EP_ID.slice(0, 12));
    expect(plans[0]!.stagingNetns).toContain(EP_ID.slice(0, 12));
    // Same endpoint, same names: a restarted plugin finds them again.
    expect(planAttachment(epReq("02-CreateEndpoint-publish.json"), []).tmpName).toBe(plans[0]!.tmpName);
    expect(planAttachment(epReq("02-CreateEndpoint-publish.json"), []).stagingNetns).toBe(plans[0]!.stagingNetns);
  });
});

/** Shaped like the reference bridge plugin's ADD result (interfaces: bridge, host veth, eth0). */
function bridgeResult(extra: Partial<Result> = {}): Result {
  return {
    cniVersion: "1.0.0",
    interfaces: [
      { name: "cs-81a8d9bec29a", mac: "ee:11:22:33:44:01" },
      { name: "veth3a9b1c2d", mac: "ee:11:22:33:44:02" },
      { name: "eth0", mac: "5a:7f:00:12:34:56", sandbox: "/var/run/netns/cni-shim-fe6a48ea14a4" },
    ],
    ips: [{ address: "172.18.0.2/16", gateway: "172.18.0.1", interface: 2 }],
    routes: [{ dst: "0.0.0.0/0" }],
    dns: {},
    ...extra,
  };
}

describe("verifyResult", () => {
  it("accepts a result with Docker's address and returns the container MAC", () => {
    const out = verifyResult(bridgeResult(), "eth0", ["172.18.0.2/16", undefined], "cni-shim-81a8d9bec29a");
    expect(out.mac).toBe("5a:7f:00:12:34:56");
  });

  it("rejects a different address, naming both", () => {
    const err = translationError(() => verifyResult(bridgeResult(), "eth0", ["172.18.0.3/16"], "k8s"));
    expect(err.message).toContain("172.18.0.2/16");
    expect(err.message).toContain("172.18.0.3/16");
    expect(err.message).toContain("k8s");
  });

  it("rejects the same address with a different prefix, naming both", () => {
    const err = translationError(() => verifyResult(bridgeResult(), "eth0", ["172.18.0.2/24"], "k8s"));
    expect(err.message).toContain("172.18.0.2/16");
    expect(err.message).toContain("172.18.0.2/24");
    expect(err.message).toMatch(/prefix/);
  });

  it("does not count an address that is on a host-side interface", () => {
    const result = bridgeResult({
      ips: [
        { address: "172.18.0.5/16", interface: 0 },
        { address: "172.18.0.2/16", gateway: "172.18.0.1", interface: 2 },
      ],
    });
    expect(() => verifyResult(result, "eth0", ["172.18.0.2/16"], "n")).not.toThrow();
    expect(() => verifyResult(result, "eth0", ["172.18.0.5/16"], "n")).toThrow(TranslationError);
  });

  it("checks the IPv6 address too, in any spelling", () => {
    const result = bridgeResult({
      ips: [
        { address: "172.18.0.2/16", gateway: "172.18.0.1", interface: 2 },
        { address: "fd00:99:0:0::2/64", gateway: "fd00:99::1", interface: 2 },
      ],
    });
    expect(() => verifyResult(result, "eth0", ["172.18.0.2/16", "fd00:99::2/64"], "n")).not.toThrow();
    expect(() => verifyResult(result, "eth0", ["172.18.0.2/16", "fd00:99::3/64"], "n")).toThrow(TranslationError);
  });

  it("lower-cases the MAC", () => {
    const result = bridgeResult();
    result.interfaces![2]!.mac = "5A:7F:00:12:34:56";
    expect(verifyResult(result, "eth0", ["172.18.0.2/16"], "n").mac).toBe("5a:7f:00:12:34:56");
  });
});
