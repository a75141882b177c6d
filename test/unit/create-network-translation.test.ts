// CreateNetwork's translation (network-options.ts, default-conflist.ts, pools-match.ts,
// namespace-wide-settings.ts), fed with the request bodies a real Docker 20.10 sent and the
// embedded default conflist.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EMBEDDED_CONF_DIR, parseConfFile, confListFromObject } from "../../src/cni/config.js";
import type { ConfList, PluginConf } from "../../src/cni/schemas.js";
import * as api from "../../src/libnetwork/schemas.js";
import { TranslationError } from "../../src/driver/translation-error.js";
import { networkOptions } from "../../src/driver/network-options.js";
import { instantiateDefault } from "../../src/driver/default-conflist.js";
import { checkPoolsMatch } from "../../src/driver/pools-match.js";
import { namespaceWideSettings } from "../../src/driver/namespace-wide-settings.js";
import { fixtureJson, networkFixture } from "../helpers/protocol-client.js";
import { translationError } from "../helpers/translation.js";

const NET_ID = "81a8d9bec29ac03a2312528635b8dd0415c3aa252fa7bbb4b6384aac5c0f64fb";
const OTHER_NET_ID = "0123456789ab" + "c".repeat(52);

const netReq = (file: string) => api.CreateNetworkRequest.parse(fixtureJson(file));
const netOpts = () => netReq("01-CreateNetwork-opts.json");
const netV6Internal = () => netReq("01-CreateNetwork-ipv6-internal-aux.json");

/** A CreateNetwork request with the given `-o` options. */
function withGeneric(generic: Record<string, unknown>): api.CreateNetworkRequest {
  const body = networkFixture("01-CreateNetwork-opts.json");
  body.Options["com.docker.network.generic"] = generic;
  return api.CreateNetworkRequest.parse(body);
}


const TEMPLATE_FILE = join(EMBEDDED_CONF_DIR, "cni-shim-default.conflist");
const loadTemplate = (): ConfList => parseConfFile(readFileSync(TEMPLATE_FILE, "utf8"), TEMPLATE_FILE).conflist;

/** The bridge plugin of the embedded template, as far as these tests read it. */
interface BridgeConf extends PluginConf {
  bridge: string;
  ipMasq?: boolean;
  mtu?: number;
  ipam: { type: string; ranges?: unknown[]; routes?: Array<{ dst: string }> };
}

const bridgeOf = (list: ConfList) => list.plugins.find((p) => p.type === "bridge") as BridgeConf;

describe("networkOptions", () => {
  it("accepts -o cni.network=NAME", () => {
    expect(networkOptions(withGeneric({ "cni.network": "k8s-pod-network" })).cniNetwork).toBe("k8s-pod-network");
    expect(networkOptions(withGeneric({ "cni.network": "my_net.v2" })).cniNetwork).toBe("my_net.v2");
  });

  it.each(["../x", "a/b", "..", "/etc/cni/net.d/10-x.conflist", "-x"])("rejects cni.network=%s as not a CNI network name", (name) => {
    const err = translationError(() => networkOptions(withGeneric({ "cni.network": name })));
    expect(err.message).toContain("is not a CNI network name");
    expect(err.message).toContain(name);
  });

  it.each([
    ["cni.network", ""],
    ["cni.network", "  "],
    ["cni.bridge", ""],
    ["cni.mtu", ""],
  ])("refuses %s given as an empty string (%j) and says to give a value or leave it out", (key, value) => {
    const err = translationError(() => networkOptions(withGeneric({ [key]: value })));
    expect(err.message).toContain(`-o ${key}=`);
    expect(err.message).toMatch(/give it a value/);
    expect(err.message).toMatch(/leave the option out/);
  });

  it("refuses an empty cni.network even next to valid options", () => {
    expect(translationError(() => networkOptions(withGeneric({ "com.example.x": "1", "cni.network": "" }))).message).toContain("cni.network");
  });

  it("still treats options Docker did not send (absent or null) as not given", () => {
    expect(networkOptions(withGeneric({ "cni.network": null })).cniNetwork).toBeUndefined();
    expect(networkOptions(withGeneric({})).cniNetwork).toBeUndefined();
  });

  it.each([["x"], [1], [["cni.network", ""]], [true]])("refuses com.docker.network.generic that is not an object (%j)", (generic) => {
    const body = networkFixture("01-CreateNetwork-opts.json");
    body.Options["com.docker.network.generic"] = generic;
    const err = translationError(() => networkOptions(api.CreateNetworkRequest.parse(body)));
    expect(err.message).toContain("com.docker.network.generic");
  });

  it("rejects an unknown cni.* option and lists the known ones", () => {
    const err = translationError(() => networkOptions(withGeneric({ "cni.foo": "1" })));
    expect(err.message).toContain("cni.foo");
    for (const known of ["cni.network", "cni.bridge", "cni.mtu"]) expect(err.message).toContain(known);
  });

  it("ignores options that are not cni-shim's (like the fixture's foo=bar)", () => {
    const o = networkOptions(netOpts());
    expect(o).toMatchObject({ internal: false, enableIPv6: false });
    expect(o.cniNetwork).toBeUndefined();
    expect(o.bridge).toBeUndefined();
    expect(o.mtu).toBeUndefined();
  });

  it("parses cni.mtu", () => {
    expect(networkOptions(withGeneric({ "cni.mtu": "1450" })).mtu).toBe(1450);
    expect(networkOptions(withGeneric({ "cni.mtu": "9000" })).mtu).toBe(9000);
  });

  it.each(["abc", "1450.5", "100", "575", "65536", "-1", "1450mb"])("rejects cni.mtu=%s", (mtu) => {
    const err = translationError(() => networkOptions(withGeneric({ "cni.mtu": mtu })));
    expect(err.message).toContain("cni.mtu");
  });

  it("takes a valid cni.bridge and rejects a too long or odd one", () => {
    expect(networkOptions(withGeneric({ "cni.bridge": "br-test0" })).bridge).toBe("br-test0");
    expect(translationError(() => networkOptions(withGeneric({ "cni.bridge": "a-sixteen-chars0" }))).message).toContain("cni.bridge");
    expect(translationError(() => networkOptions(withGeneric({ "cni.bridge": "br/0" }))).message).toContain("cni.bridge");
  });

  it("refuses cni.bridge / cni.mtu together with cni.network", () => {
    expect(() => networkOptions(withGeneric({ "cni.network": "k8s", "cni.mtu": "1400" }))).toThrow(TranslationError);
    expect(() => networkOptions(withGeneric({ "cni.network": "k8s", "cni.bridge": "br0" }))).toThrow(TranslationError);
  });

  it("reads --internal and --ipv6 from the real fixture", () => {
    const o = networkOptions(netV6Internal());
    expect(o.internal).toBe(true);
    expect(o.enableIPv6).toBe(true);
  });
});

describe("instantiateDefault", () => {
  it("makes the embedded template concrete for the opts fixture", () => {
    const template = loadTemplate();
    const req = netOpts();
    const list = instantiateDefault(template, req, networkOptions(req));
    expect(list.name).toBe("cni-shim-81a8d9bec29a");
    const bridge = bridgeOf(list);
    expect(bridge.bridge).toBe("cs-81a8d9bec29a");
    expect(bridge.bridge.length).toBeLessThanOrEqual(15);
    expect(bridge.ipMasq).toBe(true);
    expect(bridge.ipam.type).toBe("host-local");
    expect(bridge.ipam.ranges).toEqual([[{ subnet: "172.18.0.0/16", gateway: "172.18.0.1" }]]);
    expect(bridge.ipam.routes).toEqual([{ dst: "0.0.0.0/0" }]);
    // The rest of the chain is kept, in order.
    expect(list.plugins.map((p) => p.type)).toEqual(template.plugins.map((p) => p.type));
    expect(list.cniVersion).toBe(template.cniVersion);
    // And the result is still a valid conflist.
    expect(() => confListFromObject(list, "instantiated")).not.toThrow();
  });

  it("IPv6 + internal fixture: both families as ranges, no default routes, no masquerade", () => {
    const req = netV6Internal();
    const list = instantiateDefault(loadTemplate(), req, networkOptions(req));
    const bridge = bridgeOf(list);
    expect(bridge.ipam.ranges).toEqual([[{ subnet: "10.98.0.0/24", gateway: "10.98.0.254" }], [{ subnet: "fd00:99::/64", gateway: "fd00:99::1" }]]);
    const dsts = (bridge.ipam.routes ?? []).map((r) => r.dst);
    expect(dsts).not.toContain("0.0.0.0/0");
    expect(dsts).not.toContain("::/0");
    expect(bridge.ipMasq).toBe(false);
  });

  it("IPv6, not internal: default routes for both families", () => {
    const body = networkFixture("01-CreateNetwork-ipv6-internal-aux.json");
    delete body.Options["com.docker.network.internal"];
    const req = api.CreateNetworkRequest.parse(body);
    const opts = networkOptions(req);
    expect(opts.internal).toBe(false);
    const bridge = bridgeOf(instantiateDefault(loadTemplate(), req, opts));
    const dsts = (bridge.ipam.routes ?? []).map((r) => r.dst).sort();
    expect(dsts).toEqual(["0.0.0.0/0", "::/0"]);
    expect(bridge.ipMasq).toBe(true);
    expect(bridge.ipam.ranges).toHaveLength(2);
  });

  it("does not mutate the template", () => {
    const template = loadTemplate();
    const before = structuredClone(template);
    const req = netV6Internal();
    instantiateDefault(template, req, { ...networkOptions(req), bridge: "br-x", mtu: 1400 });
    expect(template).toEqual(before);
    expect(bridgeOf(template).ipam.ranges).toEqual([[{ subnet: "10.88.0.0/16" }]]);
  });

  it("gives two networks different names and bridges", () => {
    const a = netOpts();
    const b = api.CreateNetworkRequest.parse({ ...fixtureJson("01-CreateNetwork-opts.json"), NetworkID: OTHER_NET_ID });
    const la = instantiateDefault(loadTemplate(), a, networkOptions(a));
    const lb = instantiateDefault(loadTemplate(), b, networkOptions(b));
    expect(bridgeOf(la).bridge).not.toBe(bridgeOf(lb).bridge);
    expect(la.name).not.toBe(lb.name);
    expect(bridgeOf(lb).bridge).toBe("cs-0123456789ab");
  });

  it("applies -o cni.bridge and -o cni.mtu", () => {
    const req = withGeneric({ "cni.bridge": "br-mine", "cni.mtu": "1450" });
    const bridge = bridgeOf(instantiateDefault(loadTemplate(), req, networkOptions(req)));
    expect(bridge.bridge).toBe("br-mine");
    expect(bridge.mtu).toBe(1450);
  });

  it("refuses a request without any pool", () => {
    const req = api.CreateNetworkRequest.parse({ NetworkID: NET_ID, Options: {}, IPv4Data: [], IPv6Data: [] });
    expect(() => instantiateDefault(loadTemplate(), req, networkOptions(req))).toThrow(TranslationError);
  });
});

const hostLocalList = (ipam: Record<string, unknown>, name = "k8s-pod-network"): ConfList =>
  confListFromObject({ cniVersion: "1.0.0", name, plugins: [{ type: "bridge", bridge: "cni0", ipam }, { type: "portmap" }] }, "test").conflist;

const poolReq = (v4?: { Pool: string; Gateway?: string }, v6?: { Pool: string; Gateway?: string }) =>
  api.CreateNetworkRequest.parse({ NetworkID: NET_ID, Options: {}, IPv4Data: v4 ? [v4] : [], IPv6Data: v6 ? [v6] : [] });

describe("checkPoolsMatch", () => {
  const k8s = hostLocalList({ type: "host-local", ranges: [[{ subnet: "10.244.1.0/24", gateway: "10.244.1.1" }]] });

  it("passes when Docker's subnet and gateway are the conflist's", () => {
    expect(() => checkPoolsMatch(k8s, poolReq({ Pool: "10.244.1.0/24", Gateway: "10.244.1.1/24" }))).not.toThrow();
  });

  it("a different pool fails with the exact flags to pass", () => {
    const err = translationError(() => checkPoolsMatch(k8s, netOpts()));
    expect(err.message).toContain("--subnet 10.244.1.0/24 --gateway 10.244.1.1");
    expect(err.message).toContain("172.18.0.0/16");
  });

  it("a different gateway in the same subnet fails too", () => {
    const err = translationError(() => checkPoolsMatch(k8s, poolReq({ Pool: "10.244.1.0/24", Gateway: "10.244.1.254/24" })));
    expect(err.message).toContain("--subnet 10.244.1.0/24 --gateway 10.244.1.1");
  });

  it("understands the legacy ipam.subnet form (gateway defaults to the first host)", () => {
    const legacy = hostLocalList({ type: "host-local", subnet: "10.244.1.0/24" });
    expect(() => checkPoolsMatch(legacy, poolReq({ Pool: "10.244.1.0/24", Gateway: "10.244.1.1/24" }))).not.toThrow();
    const err = translationError(() => checkPoolsMatch(legacy, poolReq({ Pool: "10.9.0.0/16", Gateway: "10.9.0.1/16" })));
    expect(err.message).toContain("--subnet 10.244.1.0/24 --gateway 10.244.1.1");
  });

  it("does not check an IPAM other than host-local", () => {
    const dhcp = hostLocalList({ type: "dhcp" });
    expect(() => checkPoolsMatch(dhcp, netOpts())).not.toThrow();
    const whereabouts = hostLocalList({ type: "whereabouts", range: "10.244.1.0/24" });
    expect(() => checkPoolsMatch(whereabouts, netOpts())).not.toThrow();
  });

  it("checks IPv6 with --ipv6 in the advice", () => {
    const dual = hostLocalList({
      type: "host-local",
      ranges: [[{ subnet: "10.244.1.0/24", gateway: "10.244.1.1" }], [{ subnet: "fd00:10::/64", gateway: "fd00:10::1" }]],
    });
    expect(() => checkPoolsMatch(dual, poolReq({ Pool: "10.244.1.0/24", Gateway: "10.244.1.1/24" }, { Pool: "fd00:10::/64", Gateway: "fd00:10::1/64" }))).not.toThrow();
    const err = translationError(() =>
      checkPoolsMatch(dual, poolReq({ Pool: "10.244.1.0/24", Gateway: "10.244.1.1/24" }, { Pool: "fd00:99::/64", Gateway: "fd00:99::1/64" })),
    );
    expect(err.message).toContain("--ipv6 --subnet fd00:10::/64 --gateway fd00:10::1");
  });

  it("refuses an IPv6-only conflist for a Docker network with IPv4", () => {
    const v6only = hostLocalList({ type: "host-local", ranges: [[{ subnet: "fd00:10::/64" }]] });
    expect(() => checkPoolsMatch(v6only, netOpts())).toThrow(/IPv4/);
  });
});

describe("namespaceWideSettings", () => {
  it("finds tuning sysctls", () => {
    const list = confListFromObject(
      {
        cniVersion: "1.0.0",
        name: "t",
        plugins: [
          { type: "bridge", ipam: { type: "host-local", subnet: "10.1.0.0/24" } },
          { type: "tuning", sysctl: { "net.core.somaxconn": "500", "net.ipv4.conf.eth0.arp_filter": "1" } },
        ],
      },
      "t",
    ).conflist;
    const found = namespaceWideSettings(list);
    expect(found).toHaveLength(2);
    expect(found.join("\n")).toContain("net.core.somaxconn");
    expect(found.join("\n")).toContain("net.ipv4.conf.eth0.arp_filter");
    expect(found.every((s) => s.includes("tuning"))).toBe(true);
  });

  it("finds nothing in the embedded default", () => {
    expect(namespaceWideSettings(loadTemplate())).toEqual([]);
  });
});
