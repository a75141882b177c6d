// Which host-local reservations a runtime may release as forgotten: only those of attachments it
// ran ADD for itself (cache.ts's marks). Another runtime's reservation in a store of the same
// network name (another serve with its own cache dir, a kubelet) is never its to release.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fakeEnv, netList, type FakeEnv } from "../helpers/cni-setup.js";
import { tempDir } from "../helpers/fake-plugin.js";

let env: FakeEnv;
let dataDir: string;
beforeEach(async () => {
  env = await fakeEnv();
  dataDir = await tempDir("cnishim-hl-");
  await env.fp.add("pa", { replies: { ADD: { stdout: { cniVersion: "1.0.0", ips: [{ address: "10.9.0.2/24" }] } } } });
});
afterEach(async () => {
  await env.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

const list = () => netList({ cniVersion: "1.0.0", name: "sharednet", plugins: [{ type: "pa", ipam: { type: "host-local", dataDir: "DATA", ranges: [[{ subnet: "10.9.0.0/24" }]] } }] });
const withData = () => {
  const l = list();
  (l.conflist.plugins[0]!.ipam as Record<string, unknown>).dataDir = dataDir;
  return l;
};

/** A reservation file as host-local writes it, older than any grace. */
async function reserve(ip: string, containerId: string, ifName = "eth0") {
  await mkdir(join(dataDir, "sharednet"), { recursive: true });
  const file = join(dataDir, "sharednet", ip);
  await writeFile(file, `${containerId}\n${ifName}`);
  await utimes(file, new Date(0), new Date(0));
}

describe("unheldReservations", () => {
  it("leaves another runtime's reservation alone, and names one of an ADD of its own that nothing holds", async () => {
    const net = withData();
    await env.rt.add(net, { containerId: "ours", netns: "/var/run/netns/x", ifName: "eth0" });
    await env.rt.cache.remove("sharednet", "ours", "eth0"); // forgotten: no cached result, no record
    await reserve("10.9.0.2", "ours");
    await reserve("10.9.0.3", "theirs");
    const unheld = await env.rt.unheldReservations(net.conflist, [], 0);
    expect(unheld.map((r) => `${r.containerId} ${r.address}`)).toEqual(["ours 10.9.0.2/24"]);
  });

  it("forgets its mark once a DEL succeeded, and after an ADD that failed and was undone", async () => {
    const net = withData();
    await env.rt.add(net, { containerId: "ours", netns: "/var/run/netns/x", ifName: "eth0" });
    await env.rt.del(net, { containerId: "ours", netns: "/var/run/netns/x", ifName: "eth0" });
    await env.fp.add("pa", { replies: { ADD: { exit: 1, stdout: { code: 11, msg: "no" } } } });
    await expect(env.rt.add(net, { containerId: "failed", netns: "/var/run/netns/x", ifName: "eth0" })).rejects.toThrow();
    await reserve("10.9.0.2", "ours");
    await reserve("10.9.0.4", "failed");
    expect(await env.rt.unheldReservations(net.conflist, [], 0)).toEqual([]);
  });
});
