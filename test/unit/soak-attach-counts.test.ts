// The soak's count of where Joins ran (scripts/soak/attach-counts.ts), from the plugin's log lines: in
// the container's namespace, there then handed to Docker (--attach auto on 28+), hand-outs.
import { describe, expect, it } from "vitest";
import { countAttach, noAttachCounts } from "../../scripts/soak/attach-counts.js";

const line = (msg: string, fields: Record<string, unknown> = {}) => JSON.stringify({ time: "2030-01-01T00:00:00.000Z", level: "info", msg, endpoint: "aaaaaaaaaaaa", ...fields });

describe("the soak's Join counts", () => {
  it("tells Joins in the container's namespace, Joins handed to Docker from there and hand-outs apart", () => {
    const c = noAttachCounts();
    const p = { count: (l: string) => countAttach(c, l) };
    p.count(line("endpoint joined in its sandbox", { ifName: "eth0" }));
    p.count(line("endpoint joined", { addedIn: "sandbox" }));
    p.count(line("endpoint joined", { addedIn: "sandbox" }));
    p.count(line("endpoint joined")); // the staging hand-out
    p.count(line("no container namespace at Join: this endpoint takes the staging hand-out"));
    p.count(line("a container with networks cni-shim does not drive: this endpoint takes the staging hand-out"));
    expect(c).toEqual({ inSandboxJoins: 1, handedJoins: 2, fallbacks: 1, mixedHandOuts: 1 });
  });
});
