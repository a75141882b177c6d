import { writeFile } from "node:fs/promises";
import { settingsHelp } from "../../settings.js";
import { parsePublish } from "../../attach/publish.js";
import type { PortMapping } from "../../cni/schemas.js";
import { Cleanup } from "../../compare/cleanup.js";
import { DEFAULT_IMAGE, runCompare } from "../../compare/run.js";
import { LABEL } from "../../compare/session.js";
import { renderHtml, renderMarkdown, renderText } from "../../compare/render.js";
import type { Report } from "../../compare/model.js";
import { parseCommandLine, type CommandLine } from "../argv.js";
import { UsageError, type Command } from "../command.js";

function parsePublishOption(spec: string | undefined): { hostPort?: number; containerPort: number; protocol: PortMapping["protocol"]; hostIP?: string } {
  if (!spec) return { containerPort: 80, protocol: "tcp" };
  const only = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(spec);
  if (only) {
    const containerPort = Number(only[1]);
    if (!containerPort || containerPort > 65535) throw new UsageError(`--publish ${spec}: not a port`);
    return { containerPort, protocol: (only[2] as PortMapping["protocol"]) ?? "tcp" };
  }
  try {
    const m = parsePublish(spec);
    if (m.hostPort > 65533) throw new Error("the host port must leave room for the two next ones");
    return m;
  } catch (err) {
    throw new UsageError(`--publish ${spec}: ${(err as Error).message}`);
  }
}

const COMPARE_OPTIONS = {
  conflist: { type: "string" },
  "ipam-driver": { type: "string" },
  image: { type: "string" },
  publish: { type: "string", short: "p" },
  json: { type: "boolean" },
  markdown: { type: "string" },
  html: { type: "string" },
  width: { type: "string" },
} as const;

type CompareValues = CommandLine<typeof COMPARE_OPTIONS>["values"];

/** compare's own options, checked before anything runs. */
function checkedOptions(values: CompareValues, positionals: string[]) {
  if (positionals.length) throw new UsageError(`compare takes no arguments (got ${positionals.join(" ")})`);
  const publish = parsePublishOption(values.publish);
  const ipamDriver = values["ipam-driver"];
  if (ipamDriver !== undefined && ipamDriver !== "null" && ipamDriver !== "default") throw new UsageError(`--ipam-driver ${ipamDriver}: compare knows "null" (the list's IPAM picks) and "default" (Docker's)`);
  if (ipamDriver === "null" && !values.conflist) throw new UsageError("--ipam-driver null needs --conflist NAME: the embedded default takes its subnet from Docker's IPAM");
  const width = values.width !== undefined ? Number(values.width) : process.stdout.isTTY ? process.stdout.columns : 0;
  if (!Number.isInteger(width) || width < 0) throw new UsageError(`--width ${values.width}: not a number of columns`);
  return { publish, nullIpam: ipamDriver === "null", width };
}

interface Finished {
  report?: Report;
  failure?: Error;
  /** What could not be removed. */
  leftovers: string[];
  aborted: boolean;
}

/**
 * Runs compare and removes what it created: at the end, also on failure and on SIGINT/SIGTERM,
 * which stop it after the current step (a second signal cleans up at once and exits 130).
 */
async function runCleaningUp(start: (cleanup: Cleanup, signal: AbortSignal) => Promise<Report>, progress: (msg: string) => void): Promise<Finished> {
  const cleanup = new Cleanup();
  const ac = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!ac.signal.aborted) {
      process.stderr.write(`cni-shim compare: ${signal}: stopping after the current step and cleaning up (${signal === "SIGINT" ? "Ctrl-C" : signal} again to clean up now)\n`);
      ac.abort(new Error(`interrupted by ${signal}`));
      return;
    }
    void cleanup.run().then((errors) => {
      for (const e of errors) process.stderr.write(`cni-shim compare: could not remove ${e}\n`);
      process.exit(130);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let report: Report | undefined;
  let failure: Error | undefined;
  try {
    report = await start(cleanup, ac.signal);
  } catch (err) {
    failure = err as Error;
  }
  progress(`removing what compare created (${cleanup.pending} items)`);
  const leftovers = await cleanup.run();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  for (const e of leftovers) process.stderr.write(`cni-shim compare: could not remove ${e}\n`);
  return { report, failure, leftovers, aborted: ac.signal.aborted };
}

/** The report on stdout (text or JSON) and in the files asked for. */
async function writeReport(report: Report, values: CompareValues, width: number): Promise<void> {
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + "\n");
  else process.stdout.write(renderText(report, { width }));
  if (values.markdown) {
    await writeFile(values.markdown, renderMarkdown(report));
    process.stderr.write(`wrote ${values.markdown}\n`);
  }
  if (values.html) {
    await writeFile(values.html, renderHtml(report));
    process.stderr.write(`wrote ${values.html}\n`);
  }
}

export const compare: Command = {
  name: "compare",
  summary: "start one image on Docker's bridge, on cni-shim and with attach, and compare the three side by side",
  help: `Usage: cni-shim compare [--conflist NAME [--ipam-driver null]] [--image IMAGE] [--publish [IP:]HOST:CTR] [--json | --markdown FILE | --html FILE]

Starts the probe image three ways and shows what an engineer would look at, side by side:
  1. Docker bridge (CNM)   a new user-defined network of Docker's own bridge driver
  2. cni-shim              a cni-shim network (the CNI chain run through Docker)
  3. attach                --network none + cni-shim attach (CNI the Docker-era kubelet way)
Each column runs a probe (httpd on the container port, published) and a peer container.
Rows: interfaces, addresses, routes, resolv.conf, hosts and sysctls inside; the host veth, its
bridge and hairpin, the NAT/filter rules of the container and how the published port is served;
docker inspect and whether it matches the namespace; container to container and host to
published port reachability. Differing rows are marked and explained.

Columns 2 and 3 run the same CNI network list: --conflist NAME from the conf dir (the cni-shim
network gets the list's host-local subnet and gateway), or else the embedded default as cni-shim
instantiates it, on a free /24 of 10.233.0.0/16, which attach then applies as is. On "parity"
rows (P) they must agree: when they do not, compare says so and exits 1 (a CI parity check).

Column 2 uses the cni-shim plugin answering on --socket (driver name = the socket's file name)
and reads the list it ran from the CNI cache in --cache-dir (give that plugin's --cache-dir);
when none answers, compare serves a temporary driver from its own process. Everything compare
creates (containers and networks labelled ${LABEL}, attachments, temporary conf dir, plugin
socket, bridge and host-local store it brought into being) is removed at the end, also on
failure and on Ctrl-C (press it twice to stop waiting for the current step). Images are never
pulled. Needs root (namespaces, iptables-save).

Options:
  --conflist NAME        CNI network list (its "name") in the conf dir; default: embedded default
  --ipam-driver null     with --conflist: the cni-shim network gets Docker's null IPAM, so the
                         list's own IPAM picks its addresses (as for attach); default: Docker's
  --image IMAGE          probe image with sh, httpd, ping and wget (default ${DEFAULT_IMAGE})
  --publish SPEC         [hostIP:]HOST:CTR[/proto]: the columns publish CTR on HOST, HOST+1 and
                         HOST+2; CTR alone (default 80) picks free host ports
  --json                 print the report as JSON on stdout (nothing else on stdout)
  --markdown FILE        also write the report as a markdown table
  --html FILE            also write the report as a standalone HTML page
  --width N              wrap the text table to N columns (default: the terminal's width)
${settingsHelp()}

Exit status: 0 parity holds, 1 parity broken or compare failed, 2 usage, 130 interrupted.`,
  async run(argv) {
    // The in-process plugin and attach log per call at info: keep a terminal readable.
    const { settings, values, positionals } = parseCommandLine(argv, COMPARE_OPTIONS, { positionals: true, defaults: { "--log-level": "warn" } });
    const { publish, nullIpam, width } = checkedOptions(values, positionals);
    if (process.getuid?.() !== 0) throw new Error("compare needs root: it enters network namespaces and reads iptables");

    const started = Date.now();
    const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1)}s]`;
    const progress = process.stderr.isTTY ? (msg: string) => void process.stderr.write(`${stamp()} ${msg}...\n`) : () => undefined;
    const { report, failure, leftovers, aborted } = await runCleaningUp(
      (cleanup, signal) => runCompare({ settings, image: values.image ?? DEFAULT_IMAGE, conflist: values.conflist, nullIpam, ...publish, cleanup, progress, signal }),
      progress,
    );
    if (aborted) {
      process.stderr.write("cni-shim compare: interrupted\n");
      return 130;
    }
    if (failure || !report) throw failure ?? new Error("compare produced no report");

    await writeReport(report, values, width);
    if (process.stderr.isTTY) process.stderr.write(`${stamp()} done\n`);
    if (!report.parity.ok) {
      process.stderr.write(`cni-shim compare: parity broken: cni-shim and attach differ on ${report.parity.failures.map((f) => f.label).join(", ")}\n`);
      return 1;
    }
    return leftovers.length ? 1 : 0;
  },
};
