// docs/doctor.md names every check doctor can report, by the id it prints (as cli-help.test.ts
// guards the README's settings table): a new check without a line there fails here.
import { describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { CNI_SHIM_CHECKS } from "../../src/doctor/cni-shim-checks.js";
import { NODE_CHECKS } from "../../src/doctor/node-checks.js";
import { KUBERNETES_PORT_CHECKS, evaluatePorts } from "../../src/doctor/kubernetes-ports.js";
import { ROLES } from "../../src/doctor/results.js";
import { NETWORK_STATUS_CHECKS } from "../../src/doctor/network-status.js";
import { SWARM_CHECKS } from "../../src/doctor/swarm.js";

const doc = () => readFile(new URL("../../docs/doctor.md", import.meta.url), "utf8");

/** Checks that report under ids of their own making, and how the doc writes those ids. */
const DYNAMIC: Record<string, string[]> = { conflist: ["conflist-NAME"], ports: ["port-N", "nodeport-range"] };

describe("docs/doctor.md", () => {
  it("names every check id", async () => {
    const text = await doc();
    const ids = [...CNI_SHIM_CHECKS, ...NETWORK_STATUS_CHECKS, ...SWARM_CHECKS, ...NODE_CHECKS, ...KUBERNETES_PORT_CHECKS].flatMap((c) => DYNAMIC[c.id] ?? [c.id]);
    expect(ids.length).toBeGreaterThan(15);
    for (const id of ids) expect(text, `docs/doctor.md names \`${id}\``).toContain(`\`${id}\``);
  });

  it("writes the port checks' ids as they are reported", () => {
    const reported = new Set(ROLES.flatMap((role) => evaluatePorts(role, []).map((r) => r.id)));
    expect(reported.size).toBeGreaterThan(2);
    for (const id of reported) expect(id).toMatch(/^port-\d+$|^nodeport-range$/);
  });
});
