export interface Command {
  name: string;
  summary: string;
  /** Full help text printed by `cni-shim help NAME` and `cni-shim NAME --help`. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** A user mistake on the command line: printed without a stack, exit code 2. */
export class UsageError extends Error {}
