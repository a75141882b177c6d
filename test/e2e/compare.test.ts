// `cni-shim compare` end to end: the built CLI against the real dockerd and CNI plugins, on the
// embedded default (compare serves the driver itself, no conf dir) and on a named conflist with
// a running cni-shim; the HTML report in headless Chromium; Ctrl-C in the middle of a run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Report, type ColumnFacts } from "../../src/compare/model.js";
import { subnetOf } from "../../src/util/ip.js";
import { CLI, ENGINE, IMAGE, docker, pluginCall, rand, requirePrerequisites, sh, startPlugin, type PluginHandle, cleanup } from "../helpers/e2e.js";

/**
 * The embedded default on Docker 28+ (--attach auto): the chain's interface is handed to Docker
 * from the container's namespace, and Docker disables IPv6 on it on a network without IPv6, which
 * the kubelet way leaves on: the one known parity break of that path (as in parity-matrix.test.ts).
 * The named lists below keep parity on 28 too (measured).
 */
const KNOWN_BREAKS = Number(ENGINE) >= 28 ? ["inside.sysctl.net.ipv6.conf.eth0.disable_ipv6"] : [];
const EXIT = KNOWN_BREAKS.length ? 1 : 0;
import { freeOctet, scopedLeftovers, type Scope } from "../helpers/scoped-leaks.js";
import { podNetworkList } from "../helpers/conflists.js";

const LABEL = "io.cni-shim.compare";
const inSubnet = (cidr: string, subnet: string) => subnetOf(`${cidr.split("/")[0]}/${subnet.split("/")[1]}`) === subnetOf(subnet);
const eth0 = (f: ColumnFacts) => f.inside.links.find((l) => l.name === "eth0")!.addrs.find((a) => a.family === "inet")!.cidr;
/** The run id in the names of a text report's containers (cs-cmp-<run id>-...). */
const runIdOfText = (text: string) => {
  const m = /cs-cmp-([0-9a-f]+)-/.exec(text);
  if (!m) throw new Error(`no compare container name in the report:\n${text.slice(0, 500)}`);
  return m[1]!;
};
const runIdOf = (r: Report) => /^cs-cmp-([0-9a-f]+)-/.exec(r.columns[0].facts.container.name)![1]!;

async function requireChromium(): Promise<void> {
  const res = await sh("chromium", ["--version"], { reject: false });
  if (res.failed) throw new Error(`chromium is missing (${res.stderr || res.stdout}): apt-get install -y chromium (make deps / scripts/install-deps.sh installs it)`);
}

/** The DOM Chromium builds from a file, headless, with nothing reaching out to the network. */
async function chromiumDom(file: string): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), "cs-chromium-"));
  try {
    const res = await sh(
      "chromium",
      ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--user-data-dir=${profile}`, "--dump-dom", `file://${file}`],
      { timeoutMs: 90_000 },
    );
    return res.stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** What a finished run must have removed: its containers, networks, addresses, rules, files. */
async function runLeftovers(report: Report, extra: Scope = {}): Promise<Record<string, string[]>> {
  const cols = report.columns.map((c) => c.facts) as [ColumnFacts, ColumnFacts, ColumnFacts];
  const runId = runIdOf(report);
  const tmpDirs = (await readdir(tmpdir())).filter((n) => n.startsWith(`cni-shim-compare-${runId}-`)).map((n) => join(tmpdir(), n));
  return scopedLeftovers({
    ...extra,
    networks: [report.conflist.name],
    bridges: [report.conflist.bridge!, cols[0].network.bridge!],
    addressPrefixes: [report.conflist.subnet.replace(/0\/24$/, ""), `${eth0(cols[0]).split("/")[0]}/`, cols[0].network.subnet],
    ids: cols.flatMap((c) => [c.container.id, c.peer.id, ...(c.cniContainerId ? [c.cniContainerId] : [])]),
    hostPorts: cols.map((c) => c.publish.hostPort),
    dockerLabel: `${LABEL}=${runId}`,
    paths: [`/run/docker/plugins/${report.driver.name}.sock`, ...tmpDirs],
  });
}

function expectThreeRealColumns(report: Report): void {
  expect(report.columns.map((c) => c.id)).toEqual(["bridge", "cnishim", "attach"]);
  const [bridge, shim, attach] = report.columns.map((c) => c.facts) as [ColumnFacts, ColumnFacts, ColumnFacts];
  // Docker's bridge column lives in the pool Docker's IPAM chose, the CNI columns in the list's.
  expect(inSubnet(eth0(bridge), bridge.network.subnet)).toBe(true);
  expect(inSubnet(eth0(bridge), report.conflist.subnet)).toBe(false);
  expect(bridge.docker.ip).toBe(eth0(bridge).split("/")[0]);
  for (const f of [shim, attach]) {
    expect(inSubnet(eth0(f), report.conflist.subnet), eth0(f)).toBe(true);
    expect(eth0(f).split("/")[1]).toBe(report.conflist.subnet.split("/")[1]);
    expect(f.host.veth?.master).toBe(report.conflist.bridge);
  }
  expect(eth0(shim)).not.toBe(eth0(attach));
  expect(shim.docker.ip).toBe(eth0(shim).split("/")[0]);
  expect(attach.docker.ip).toBeUndefined();
  expect(bridge.host.veth?.master).toBe(bridge.network.bridge);
  for (const f of [bridge, shim, attach]) {
    for (const [check, r] of Object.entries(f.reach)) expect(r.ok, `${f.column} ${check}: ${r.detail}`).toBe(true);
  }
}

function expectMarkedDifferences(report: Report): void {
  const row = (key: string) => report.rows.find((r) => r.key === key)!;
  for (const key of ["inside.eth0.addrs", "docker.ports", "host.served", "host.hairpin", "docker.ip", "host.nat.masquerade"]) expect(row(key).differs, key).toBe(true);
  expect(row("inside.eth0.flags").differs).toBe(false);
  expect(row("docker.ports").values[0]).toContain(`:${report.columns[0].facts.publish.hostPort}`);
  expect(row("docker.ports").values.slice(1)).toEqual(["(none)", "(none)"]);
  expect(row("host.served").values[0]).toMatch(/docker-proxy/);
  expect(row("host.served").values[1]).toBe("DNAT (CNI-DN-<hash>), no proxy process");
  expect(report.notes.find((n) => n.startsWith("Ports (docker port):"))).toMatch(/docker port/);
  expect(report.notes.find((n) => n.startsWith("published port served by:"))).toMatch(/docker-proxy/);
  const parityRows = report.rows.filter((r) => r.parity);
  expect(parityRows.length).toBeGreaterThan(15);
  for (const r of parityRows) if (!KNOWN_BREAKS.includes(r.key)) expect(r.values[1], `${r.key}: ${r.values[1]} vs ${r.values[2]}`).toBe(r.values[2]);
  expect(report.parity.failures.map((f) => f.key)).toEqual(KNOWN_BREAKS);
  expect(report.parity).toMatchObject({ ok: KNOWN_BREAKS.length === 0, checked: parityRows.length });
}

describe("cni-shim compare on the embedded default, serving the driver itself", () => {
  let base: string;
  let res: Awaited<ReturnType<typeof sh>>;
  let report: Report;
  const first = 21000 + (parseInt(rand(2), 16) % 3000) * 3;

  beforeAll(async () => {
    await requirePrerequisites();
    await requireChromium();
    base = await mkdtemp(join(tmpdir(), "cs-cmp-e2e-"));
    res = await sh(
      "node",
      [CLI, "compare", "--json", "--image", IMAGE, "--publish", `${first}:80`, "--html", join(base, "report.html"),
        // No cni-shim answers on this socket and the conf dir does not exist: embedded default.
        "--socket", `/run/docker/plugins/cs-cmp-absent-${rand()}.sock`, "--conf-dir", join(base, "no-conf-dir"), "--state-dir", join(base, "state"), "--cache-dir", join(base, "cache")],
      { reject: false, timeoutMs: 180_000 },
    );
  }, 200_000);

  afterAll(async () => {
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("exits 0 and prints only the JSON report on stdout", () => {
    expect(res.exitCode, res.stderr).toBe(EXIT);
    expect(res.stderr).not.toContain("could not remove");
    report = Report.parse(JSON.parse(res.stdout));
    expect(report.conflist.mode).toBe("embedded-default");
    expect(report.driver.inProcess).toBe(true);
    expect(inSubnet(report.conflist.subnet, "10.233.0.0/16")).toBe(true);
    expect(report.conflist.bridge).toMatch(/^cs-[0-9a-f]{12}$/);
  });

  it("holds three columns with real values", () => {
    expectThreeRealColumns(report);
    expect(report.columns.map((c) => c.facts.publish.hostPort)).toEqual([first, first + 1, first + 2]);
  });

  it("marks and explains the differences; cni-shim and attach agree on every parity row", () => {
    expectMarkedDifferences(report);
    const cni = report.rows.find((r) => r.key === "host.cni")!;
    expect(cni.values[1]).toMatch(new RegExp(`^${report.conflist.name} \\(sha256 [0-9a-f]{12}\\)$`));
  });

  it("left nothing behind", async () => {
    expect(await runLeftovers(report, { cacheDir: join(base, "cache"), stateDir: join(base, "state") })).toEqual({});
  });

  it("writes an HTML report that Chromium renders with the table", async () => {
    const dom = await chromiumDom(join(base, "report.html"));
    expect(dom).toContain('<table id="compare">');
    expect(dom).toContain("<tbody>");
    expect((dom.match(/<tr class="row/g) ?? []).length).toBe(report.rows.length);
    expect(dom).toMatch(/<th scope="row">eth0 MTU<\/th>/);
    expect(dom).toContain(KNOWN_BREAKS.length ? "PARITY FAILED" : "Parity: OK");
  });
});

// Docker's IPAM (the list's subnet given as --subnet), and null IPAM (the list's IPAM picks).
describe.each([["Docker's IPAM", []], ["--ipam-driver null", ["--ipam-driver", "null"]]] as const)("cni-shim compare on a named conflist, with a cni-shim running, %s", (_title, ipamArgs) => {
  const id = rand();
  const listName = `e2e-cmp-${id}`;
  const bridge = `csc${id}`;
  let octet = 0;
  let base: string;
  let plugin: PluginHandle;
  let res: Awaited<ReturnType<typeof sh>>;

  beforeAll(async () => {
    await requirePrerequisites();
    octet = await freeOctet("10.249", parseInt(id.slice(0, 2), 16) + (ipamArgs.length ? 100 : 0));
    base = await mkdtemp(join(tmpdir(), "cs-cmp-named-"));
    const confDir = join(base, "net.d");
    await sh("mkdir", ["-p", confDir]);
    await writeFile(
      join(confDir, "10-cluster.conflist"),
      podNetworkList({ name: listName, bridge, subnet: `10.249.${octet}.0/24`, extraPlugins: [{ type: "tuning", capabilities: { mac: true } }] }),
    );
    plugin = await startPlugin({ confDir });
    res = await sh(
      "node",
      [CLI, "compare", "--conflist", listName, ...ipamArgs, "--image", IMAGE, "--markdown", join(base, "report.md"), "--width", "0",
        "--socket", plugin.socket, "--conf-dir", confDir, "--cache-dir", plugin.cacheDir, "--state-dir", join(base, "state")],
      { reject: false, timeoutMs: 180_000 },
    );
  }, 200_000);

  afterAll(async () => {
    await cleanup([], [], plugin);
    await sh("ip", ["link", "del", bridge], { reject: false });
    await rm(`/var/lib/cni/networks/${listName}`, { recursive: true, force: true });
    if (base) await rm(base, { recursive: true, force: true });
  });

  it("uses the running plugin and the named list for both CNI columns; parity holds", () => {
    expect(res.exitCode, res.stderr).toBe(0);
    const text = res.stdout;
    expect(text).toContain(`CNI network list: ${listName} (named, from ${join(base, "net.d", "10-cluster.conflist")}), 10.249.${octet}.0/24 gateway 10.249.${octet}.1, bridge ${bridge}`);
    expect(text).toContain(`cni-shim driver: ${plugin.driver}\n`);
    expect(text).toMatch(/^P\* eth0 MTU +\| 1500 +\| 1400 +\| 1400$/m);
    expect(text).toMatch(new RegExp(`^P\\* eth0 IPv4 subnet +\\| \\S+ +\\| 10\\.249\\.${octet}\\.0/24 +\\| 10\\.249\\.${octet}\\.0/24$`, "m"));
    expect(text).toMatch(/^ \* Ports \(docker port\) +\| 80\/tcp -> 0\.0\.0\.0:\d+ +\| \(none\) +\| \(none\)$/m);
    expect(text).toMatch(/^Parity: OK, cni-shim and attach agree on all \d+ parity rows\.$/m);
    expect(text).toContain("Why they differ:");
  });

  it("writes the same table as markdown", async () => {
    const md = await readFile(join(base, "report.md"), "utf8");
    const rows = md.split("\n").filter((l) => l.startsWith("|"));
    expect(rows[0]).toBe("| | Row | Docker bridge (CNM) | cni-shim (CNI via Docker) | attach (kubelet way) |");
    for (const l of rows) expect(l.replace(/\\\|/g, "").split("|").length, l).toBe(7);
    expect(md).toContain("| P ≠ | eth0 MTU | 1500 | 1400 | 1400 |");
    expect(md).toMatch(/Parity: OK/);
  });

  it("left nothing behind, in the plugin's state too", async () => {
    expect((await pluginCall(plugin.socket, "/CniShim.Settle", "{}")).status).toBe(200);
    const left = await scopedLeftovers({
      networks: [listName],
      bridges: [bridge],
      addressPrefixes: [`10.249.${octet}.`],
      cacheDir: plugin.cacheDir,
      stateDir: join(base, "state"),
      // This run's containers and networks only: a user's own compare may run beside the tests.
      dockerLabel: `${LABEL}=${runIdOfText(res.stdout)}`,
    });
    const pluginState = await scopedLeftovers({ stateDir: plugin.stateDir });
    expect({ ...left, ...Object.fromEntries(Object.entries(pluginState).map(([k, v]) => [`plugin ${k}`, v])) }).toEqual({});
  });
});

describe("cni-shim compare interrupted by Ctrl-C", () => {
  it("stops, removes everything it created and exits 130", async () => {
    await requirePrerequisites();
    const base = await mkdtemp(join(tmpdir(), "cs-cmp-int-"));
    const child = execa("node", [CLI, "compare", "--json", "--image", IMAGE, "--socket", `/run/docker/plugins/cs-cmp-absent-${rand()}.sock`, "--conf-dir", join(base, "none"), "--state-dir", join(base, "state"), "--cache-dir", join(base, "cache")], {
      reject: false,
      timeout: 180_000,
    });
    try {
      // Interrupt once the cni-shim column is up: its network, plugin and containers exist.
      let runId = "";
      let netId = "";
      let subnet = "";
      for (let i = 0; i < 600 && !netId; i++) {
        const names = (await docker(["ps", "--filter", `label=${LABEL}`, "--format", "{{.Names}}"])).stdout.split("\n");
        const probe = names.find((n) => /^cs-cmp-[0-9a-f]+-cni-probe$/.test(n));
        if (probe) {
          runId = /^cs-cmp-([0-9a-f]+)-/.exec(probe)![1]!;
          [netId = "", subnet = ""] = (await docker(["network", "inspect", "--format", "{{.Id}} {{(index .IPAM.Config 0).Subnet}}", `cs-cmp-${runId}-cni`])).stdout.split(" ");
        } else await new Promise((r) => setTimeout(r, 50));
      }
      expect(netId, "compare never started its cni-shim column").not.toBe("");
      child.kill("SIGINT");
      const done = await child;
      expect(done.exitCode, String(done.stderr)).toBe(130);
      expect(String(done.stdout)).toBe("");
      expect(String(done.stderr)).toContain("interrupted");
      const tmpDirs = (await readdir(tmpdir())).filter((n) => n.startsWith(`cni-shim-compare-${runId}-`));
      expect(tmpDirs).toEqual([]);
      expect(
        await scopedLeftovers({
          networks: [`cni-shim-${netId.slice(0, 12)}`],
          bridges: [`cs-${netId.slice(0, 12)}`],
          ids: [netId],
          addressPrefixes: [subnet.replace(/0\/24$/, "")],
          cacheDir: join(base, "cache"),
          stateDir: join(base, "state"),
          dockerLabel: `${LABEL}=${runId}`,
          paths: [`/run/docker/plugins/cni-shim-compare-${runId}.sock`],
        }),
      ).toEqual({});
    } finally {
      child.kill("SIGKILL");
      await rm(base, { recursive: true, force: true });
    }
  }, 200_000);
});
