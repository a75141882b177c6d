// The soak's simulated reboot removes one network's iptables state and nothing else.
import { describe, expect, it } from "vitest";
import { rulesOfNetworkRemoval } from "../../scripts/soak/iptables-wipe.js";

const saved = [
  "*nat",
  ":POSTROUTING ACCEPT [0:0]",
  ":CNI-0123456789abcdef01234567 - [0:0]",
  '-A POSTROUTING -s 10.249.7.2/32 -m comment --comment "name: \\"soak-null-aaa\\" id: \\"x\\"" -j CNI-0123456789abcdef01234567',
  '-A POSTROUTING -s 10.249.8.2/32 -m comment --comment "name: \\"soak-null-bbb\\" id: \\"y\\"" -j CNI-fedcba9876543210fedcba98',
  "COMMIT",
  "*filter",
  ":FORWARD ACCEPT [0:0]",
  '-A FORWARD -m comment --comment "\\"soak-null-bbb\\"" -j ACCEPT',
  "COMMIT",
].join("\n");

describe("rulesOfNetworkRemoval", () => {
  it("deletes the network's rules and flushes and deletes the chains they jump to, per table", () => {
    expect(rulesOfNetworkRemoval(saved, "soak-null-aaa")).toBe(
      [
        "*nat",
        '-D POSTROUTING -s 10.249.7.2/32 -m comment --comment "name: \\"soak-null-aaa\\" id: \\"x\\"" -j CNI-0123456789abcdef01234567',
        "-F CNI-0123456789abcdef01234567",
        "-X CNI-0123456789abcdef01234567",
        "COMMIT",
        "",
      ].join("\n"),
    );
  });

  it("covers every table that names the network", () => {
    const script = rulesOfNetworkRemoval(saved, "soak-null-bbb");
    expect(script.split("\n").filter((l) => l.startsWith("*"))).toEqual(["*nat", "*filter"]);
    expect(script).toContain("-X CNI-fedcba9876543210fedcba98");
    expect(script).not.toContain("soak-null-aaa");
  });

  it("is empty when no rule names the network", () => {
    expect(rulesOfNetworkRemoval(saved, "soak-null-ccc")).toBe("");
  });
});
