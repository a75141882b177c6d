// The leak checks' view of what live endpoints hold (scripts/soak/live-owners.ts, used by the soak
// and test/helpers/host-snapshot.ts): a leftover of a test is never excused because a user's
// container happens to exist, and what a live endpoint holds is never a leak.
import { describe, expect, it } from "vitest";
import { parseReservation } from "../../src/cni/host-local.js";
import { chainsWithOwners, liveOwners, netnsOfLive, ruleOfLive } from "../../scripts/soak/live-owners.js";
import { leaked, type HostSnapshot } from "../helpers/host-snapshot.js";

const LIVE = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const GONE = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

// iptables-save lines as the bridge (ipMasq) and portmap plugins write them.
const SAVE = [
  "*nat",
  ":CNI-0a1b2c3d4e5f60718293a4b5 - [0:0]",
  ":CNI-DN-0a1b2c3d4e5f60718293a - [0:0]",
  ":CNI-ffee00112233445566778899 - [0:0]",
  ":CNI-HOSTPORT-DNAT - [0:0]",
  `-A POSTROUTING -s 10.244.1.2/32 -m comment --comment "name: \\"k8s-pod-network\\" id: \\"${LIVE}\\"" -j CNI-0a1b2c3d4e5f60718293a4b5`,
  `-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"k8s-pod-network\\" id: \\"${LIVE}\\"" -m multiport --dports 8080 -j CNI-DN-0a1b2c3d4e5f60718293a`,
  `-A POSTROUTING -s 10.244.1.3/32 -m comment --comment "name: \\"k8s-pod-network\\" id: \\"${GONE}\\"" -j CNI-ffee00112233445566778899`,
  "COMMIT",
].join("\n");

const snap = (over: Partial<HostSnapshot>): HostSnapshot => ({ ipReservations: [], veths: [], netns: [], perContainerChains: [], cacheFiles: [], liveOwned: [], ...over });

describe("leak checks beside the user's own containers", () => {
  it("finds the per-attachment chains and the endpoint ids their rules name", () => {
    const chains = chainsWithOwners(SAVE);
    expect([...chains.keys()].sort()).toEqual(["CNI-0a1b2c3d4e5f60718293a4b5", "CNI-DN-0a1b2c3d4e5f60718293a", "CNI-ffee00112233445566778899"]);
    expect(chains.get("CNI-DN-0a1b2c3d4e5f60718293a")).toEqual([LIVE]);
    expect(chains.get("CNI-ffee00112233445566778899")).toEqual([GONE]);
  });

  it("reads a reservation's owner and matches namespaces by a live endpoint's short id", () => {
    expect(parseReservation(`${LIVE}\neth0`)).toEqual({ containerId: LIVE, ifName: "eth0" });
    const live = { endpointIds: new Set([LIVE]), vethPeers: new Set<number>(), addresses: new Set<string>() };
    expect(netnsOfLive(`cni-shim-${LIVE.slice(0, 12)}`, live)).toBe(true);
    expect(netnsOfLive(`cni-shim-${GONE.slice(0, 12)}`, live)).toBe(false);
  });

  it("asks Docker for endpoints and the running containers' veth peers", async () => {
    const calls: string[] = [];
    const answer = (file: string, args: string[]): string => {
      calls.push([file, ...args].join(" "));
      if (args[0] === "network" && args[1] === "ls") return "n1\nn2";
      if (args[0] === "network") return `${LIVE} 10.244.1.2/24 \n`;
      if (args[0] === "ps") return "c1";
      if (args[0] === "inspect") return "4242";
      if (file === "nsenter") return JSON.stringify([{ ifindex: 1, ifname: "lo" }, { ifindex: 2, ifname: "eth0", link_index: 17 }]);
      return "";
    };
    const owners = await liveOwners((file, args) => Promise.resolve(answer(file, args)), "/usr/bin/docker");
    expect(owners.endpointIds).toEqual(new Set([LIVE]));
    expect(owners.vethPeers).toEqual(new Set([17]));
    expect(owners.addresses).toEqual(new Set(["10.244.1.2"]));
    expect(calls).toContain("nsenter -t 4242 -n ip -j link show");
  });

  it("tells the rules of live endpoints (by id comment, or the firewall plugin's /32) from others", () => {
    const live = { endpointIds: new Set([LIVE]), vethPeers: new Set<number>(), addresses: new Set(["10.244.1.2"]) };
    const lines = SAVE.split("\n").filter((l) => l.startsWith("-A"));
    expect(lines.map((l) => ruleOfLive(l, live))).toEqual([true, true, false]);
    expect(ruleOfLive("-A CNI-FORWARD -d 10.244.1.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", live)).toBe(true);
    expect(ruleOfLive("-A CNI-FORWARD -s 10.244.1.3/32 -j ACCEPT", live)).toBe(false);
  });

  it("counts what is new and held by nothing live, and only that", () => {
    const before = snap({ veths: ["vethold"], ipReservations: ["net/10.0.0.2"] });
    const after = snap({
      veths: ["vethold", "vethuser", "vethtest"],
      ipReservations: ["net/10.0.0.2", "net/10.0.0.3", "net/10.0.0.4"],
      perContainerChains: ["CNI-0a1b2c3d4e5f60718293a4b5", "CNI-ffee00112233445566778899"],
      liveOwned: ["veths:vethuser", "ipReservations:net/10.0.0.3", "perContainerChains:CNI-0a1b2c3d4e5f60718293a4b5"],
    });
    expect(leaked(before, after)).toEqual({ veths: ["vethtest"], ipReservations: ["net/10.0.0.4"], perContainerChains: ["CNI-ffee00112233445566778899"] });
  });
});
