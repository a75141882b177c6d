/** A plugin said no (or misbehaved). Keeps everything the plugin told us. */
export class CniPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly code: number | undefined,
    readonly msg: string,
    readonly details: string | undefined,
    readonly stderr: string,
  ) {
    const codeText = code === undefined ? "" : ` (code ${code})`;
    const detailText = details ? `: ${details}` : "";
    super(`CNI plugin "${plugin}" ${command} failed${codeText}: ${msg}${detailText}`);
    this.name = "CniPluginError";
  }
}

/**
 * Marks an ADD error whose own cleanup (the chain's DEL) failed too: what the chain made may
 * still be there, and the caller must tear the attachment down the convergent way.
 */
export const ADD_LEFT_STATE = Symbol("cni-shim.addLeftState");

export function addLeftState(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[ADD_LEFT_STATE] === true;
}

/** A conflist or conf file is unusable; names the file and the field. */
export class CniConfigError extends Error {
  constructor(message: string, readonly file?: string) {
    super(message);
    this.name = "CniConfigError";
  }
}

/** The runtime could not do what was asked (missing plugin, bad CNI_ARGS, version mismatch...). */
export class CniRuntimeError extends Error {
  /** The plugin binary could not be executed at all (missing, not executable). */
  readonly notExecuted: boolean;
  constructor(message: string, opts: { notExecuted?: boolean } = {}) {
    super(message);
    this.name = "CniRuntimeError";
    this.notExecuted = opts.notExecuted ?? false;
  }
}
