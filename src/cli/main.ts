#!/usr/bin/env node
// cni-shim: Docker networks on real CNI plugin chains.
import { serve } from "./commands/serve.js";
import { gc } from "./commands/gc.js";
import { attach, detach } from "./commands/attach.js";
import { doctor } from "./commands/doctor.js";
import { compare } from "./commands/compare.js";
import { endpoints } from "./commands/endpoints.js";
import { UsageError, type Command } from "./command.js";
import { VERSION } from "../version.js";

const commands: Command[] = [serve, gc, endpoints, attach, detach, compare, doctor];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: cni-shim COMMAND [options]

Docker network plugin that gives containers real CNI networking (bridge, host-local, portmap,
firewall, tuning ...), the way Kubernetes sets up a pod.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Run "cni-shim COMMAND --help" for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((target ? target.help : usage()) + "\n");
    return 0;
  }
  if (name === "--version" || name === "version") {
    process.stdout.write(`cni-shim ${VERSION}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command "${name}"\n\n${usage()}`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.help + "\n");
    return 0;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const usageProblem = err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith?.("ERR_PARSE_ARGS");
    process.stderr.write(`cni-shim: ${err.message}\n`);
    process.exit(usageProblem ? 2 : 1);
  },
);
