import { describe, expect, it } from "vitest";
import { canonicalIP, firstHost, isRealSubnet, parseCidr, sameIP, subnetOf } from "../../src/util/ip.js";

describe("address helpers", () => {
  it("tells a real subnet from a null-IPAM pool (a whole family), an empty one or junk", () => {
    for (const real of ["10.244.0.0/24", "10.0.0.5/32", "fd00::/64", "10.0.0.0/8"]) expect(isRealSubnet(real)).toBe(true);
    for (const none of ["0.0.0.0/0", "::/0", "", undefined, "default", "not-a-cidr"]) expect(isRealSubnet(none)).toBe(false);
  });

  it("normalises subnets of both families", () => {
    expect(subnetOf("10.1.2.5/24")).toBe("10.1.2.0/24");
    expect(subnetOf("172.18.0.0/16")).toBe("172.18.0.0/16");
    expect(subnetOf("fd00:99::5/64")).toBe("fd00:99::/64");
    expect(subnetOf("2001:db8:1:2:3:4:5:6/128")).toBe("2001:db8:1:2:3:4:5:6/128");
    expect(subnetOf("10.1.2.5/33")).toBeUndefined();
    expect(subnetOf("nonsense")).toBeUndefined();
  });
  it("compares addresses in canonical form", () => {
    expect(canonicalIP("fd00:0099:0:0::1/64")).toBe("fd00:99::1");
    expect(sameIP("10.0.0.1/24", "10.0.0.1")).toBe(true);
    expect(sameIP("10.0.0.1", "10.0.0.2")).toBe(false);
    expect(parseCidr("::ffff:1.2.3.4/128")?.address).toBe("::ffff:102:304");
  });
  it("finds host-local's default gateway", () => {
    expect(firstHost("10.244.1.0/24")).toBe("10.244.1.1");
    expect(firstHost("fd00:99::/64")).toBe("fd00:99::1");
  });
});
