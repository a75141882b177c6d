// The routes a chain left in the staging namespace, as Docker's Join installs them: routes in
// `ip -j route` form as the real plugins leave them (ptp, bridge, sbr), in, Join fields out.
import { describe, expect, it } from "vitest";
import { joinRoutes } from "../../src/driver/routes.js";
import { joinResponse } from "../../src/driver/join-response.js";
import { routesOf, type KernelRoute } from "../../src/host/routes.js";
import * as api from "../../src/libnetwork/schemas.js";

const kernel = (dst: string, extra: Partial<KernelRoute> = {}): KernelRoute => ({ dst, dev: "eth0", protocol: "kernel", scope: "link", ...extra });
const via = (dst: string, gateway: string, extra: Partial<KernelRoute> = {}): KernelRoute => ({ dst, gateway, dev: "eth0", ...extra });

describe("joinRoutes", () => {
  it("bridge chain: the default route becomes Gateway; the connected subnet is Docker's to add", () => {
    const r = joinRoutes([via("0.0.0.0/0", "10.88.0.1"), kernel("10.88.0.0/24", { prefsrc: "10.88.0.5" })], ["10.88.0.5/24"]);
    expect(r).toEqual({ gateway: "10.88.0.1", staticRoutes: [] });
  });

  it("ptp (kindnet): the subnet via the gateway wins over Docker's connected route by two halves; the gateway on-link", () => {
    // Exactly what `ptp` 1.1.1 leaves in the namespace (read with ip -j route).
    const routes = [via("0.0.0.0/0", "10.244.7.1"), via("10.244.7.0/24", "10.244.7.1", { prefsrc: "10.244.7.5" }), { dst: "10.244.7.1", dev: "eth0", scope: "link", prefsrc: "10.244.7.5" }];
    const r = joinRoutes(routes, ["10.244.7.5/24"]);
    expect(r.gateway).toBe("10.244.7.1");
    expect(r.staticRoutes).toEqual([
      { Destination: "10.244.7.1/32", RouteType: 1 },
      { Destination: "10.244.7.0/25", RouteType: 0, NextHop: "10.244.7.1" },
      { Destination: "10.244.7.128/25", RouteType: 0, NextHop: "10.244.7.1" },
    ]);
  });

  it("a chain that removed the connected route without one of its own: the subnet follows the best shorter route", () => {
    const r = joinRoutes([via("0.0.0.0/0", "10.1.0.1"), { dst: "10.1.0.1", dev: "eth0", scope: "link" }], ["10.1.0.9/16"]);
    expect(r.staticRoutes).toEqual([
      { Destination: "10.1.0.1/32", RouteType: 1 },
      { Destination: "10.1.0.0/17", RouteType: 0, NextHop: "10.1.0.1" },
      { Destination: "10.1.128.0/17", RouteType: 0, NextHop: "10.1.0.1" },
    ]);
  });

  it("no halves when the subnet has no shorter route with a gateway (it stays on-link, as Docker makes it)", () => {
    expect(joinRoutes([{ dst: "192.168.9.0/24", dev: "eth0", gateway: "10.1.0.1" }], ["10.1.0.9/16"]).staticRoutes).toEqual([{ Destination: "192.168.9.0/24", RouteType: 0, NextHop: "10.1.0.1" }]);
  });

  it("a host address (/32) with an on-link gateway outside any subnet, as Calico does it", () => {
    const r = joinRoutes([via("0.0.0.0/0", "169.254.1.1"), { dst: "169.254.1.1", dev: "eth0", scope: "link" }], ["10.5.0.7/32"]);
    expect(r).toEqual({ gateway: "169.254.1.1", staticRoutes: [{ Destination: "169.254.1.1/32", RouteType: 1 }] });
  });

  it("an explicit route of the chain wins over a computed half with the same destination", () => {
    const r = joinRoutes([via("10.244.7.0/24", "10.244.7.1"), via("10.244.7.128/25", "10.244.7.254")], ["10.244.7.5/24"]);
    expect(r.staticRoutes).toEqual([
      { Destination: "10.244.7.128/25", RouteType: 0, NextHop: "10.244.7.254" },
      { Destination: "10.244.7.0/25", RouteType: 0, NextHop: "10.244.7.1" },
    ]);
  });

  it("dual stack: ::/0 becomes GatewayIPv6; link-local and the connected /64 are the kernel's", () => {
    const r = joinRoutes(
      [via("0.0.0.0/0", "10.9.0.1"), kernel("10.9.0.0/24"), kernel("fd00:9::/64", { metric: 256 }), kernel("fe80::/64", { metric: 256 }), via("::/0", "fd00:9::1", { metric: 1024 })],
      ["10.9.0.3/24", "fd00:9::3/64"],
    );
    expect(r).toEqual({ gateway: "10.9.0.1", gatewayIPv6: "fd00:9::1", staticRoutes: [] });
  });

  it("sbr: routes moved to a table of their own still reach Docker (its only table is main); main wins a tie", () => {
    const r = joinRoutes([via("0.0.0.0/0", "10.3.0.1", { table: "100" }), kernel("10.3.0.0/24", { table: "100" }), via("10.50.0.0/16", "10.3.0.254", { table: "100" }), via("10.50.0.0/16", "10.3.0.253")], ["10.3.0.4/24"]);
    expect(r).toEqual({ gateway: "10.3.0.1", staticRoutes: [{ Destination: "10.50.0.0/16", RouteType: 0, NextHop: "10.3.0.253" }] });
  });

  it("routes of a family Docker gave no address for are dropped (Docker disables IPv6 on that interface)", () => {
    expect(joinRoutes([via("0.0.0.0/0", "10.9.0.1"), kernel("10.9.0.0/24"), via("::/0", "fd00:9::1"), via("fd00:50::/64", "fd00:9::1")], ["10.9.0.3/24"])).toEqual({ gateway: "10.9.0.1", staticRoutes: [] });
  });

  it("a default route without a gateway is a connected route", () => {
    expect(joinRoutes([{ dst: "0.0.0.0/0", dev: "eth0", scope: "link" }], ["10.3.0.4/24"]).staticRoutes).toEqual([{ Destination: "0.0.0.0/0", RouteType: 1 }]);
  });
});

describe("joinResponse", () => {
  it("replays them (and not the CNI result's routes)", () => {
    const reply = joinResponse({
      tmpName: "cs0123456789ab",
      ifName: "eth0",
      address: "10.244.7.5/24",
      routes: [via("0.0.0.0/0", "10.244.7.1"), via("10.244.7.0/24", "10.244.7.1"), { dst: "10.244.7.1", dev: "eth0", scope: "link" }],
      result: { cniVersion: "1.0.0", ips: [{ address: "10.244.7.5/24", gateway: "10.244.7.1" }], routes: [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.0/16" }] },
    });
    expect(reply).toEqual({
      InterfaceName: { SrcName: "cs0123456789ab", DstPrefix: "eth" },
      Gateway: "10.244.7.1",
      StaticRoutes: [
        { Destination: "10.244.7.1/32", RouteType: 1 },
        { Destination: "10.244.7.0/25", RouteType: 0, NextHop: "10.244.7.1" },
        { Destination: "10.244.7.128/25", RouteType: 0, NextHop: "10.244.7.1" },
      ],
      DisableGatewayService: true,
    });
    expect(() => api.JoinResponse.parse(reply)).not.toThrow();
  });

  it("a record without the routes (its ADD never finished): only the interface and DisableGatewayService", () => {
    const TMP = "csfe6a48ea14a4";
    const result = { cniVersion: "1.0.0", interfaces: [{ name: "eth0", sandbox: "/var/run/netns/cni-shim-fe6a48ea14a4" }], ips: [{ address: "172.18.0.2/16", gateway: "172.18.0.1", interface: 0 }], routes: [{ dst: "0.0.0.0/0" }] };
    expect(joinResponse({ tmpName: TMP, ifName: "eth0", result })).toEqual({ InterfaceName: { SrcName: TMP, DstPrefix: "eth" }, DisableGatewayService: true });
  });
});

describe("routesOf", () => {
  // `ip -j -n <staging> route show table all` after a dual-stack bridge ADD (iproute2 6.1).
  const listing = JSON.stringify([
    { dst: "default", gateway: "10.9.9.1", dev: "eth0", flags: [] },
    { dst: "10.9.9.0/24", dev: "eth0", protocol: "kernel", scope: "link", prefsrc: "10.9.9.2", flags: [] },
    { type: "local", dst: "10.9.9.2", dev: "eth0", table: "local", protocol: "kernel", scope: "host", prefsrc: "10.9.9.2", flags: [] },
    { type: "broadcast", dst: "10.9.9.255", dev: "eth0", table: "local", protocol: "kernel", scope: "link", prefsrc: "10.9.9.2", flags: [] },
    { dst: "fd00:99::/64", dev: "eth0", protocol: "kernel", metric: 256, flags: [], pref: "medium" },
    { dst: "default", dev: "eth0", metric: 1024, flags: [], pref: "medium" },
    { dst: "fe80::/64", dev: "lo", protocol: "kernel", metric: 256, flags: [], pref: "medium" },
    { dst: "10.3.0.0/24", dev: "eth0", table: "100", scope: "link", flags: [] },
    { type: "multicast", dst: "ff00::/8", dev: "eth0", table: "local", protocol: "kernel", metric: 256, flags: [], pref: "medium" },
  ]);

  it("keeps the interface's unicast routes of every table but local, and tells the families' defaults apart", () => {
    expect(routesOf(listing, "eth0").map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ""}${r.table ? ` table ${r.table}` : ""}`)).toEqual([
      "0.0.0.0/0 via 10.9.9.1",
      "10.9.9.0/24",
      "fd00:99::/64",
      "::/0",
      "10.3.0.0/24 table 100",
    ]);
  });

  it("refuses output it does not understand", () => {
    expect(() => routesOf(JSON.stringify([{ gateway: 1 }]), "eth0")).toThrow(/^ip -j route show table all \(the routes of eth0\): unexpected output: 0\.dst: .*expected string/);
  });
});
