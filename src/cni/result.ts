import { Result } from "./schemas.js";
import { CniPluginError } from "./errors.js";
import { describeIssues } from "../util/zod.js";

/** Validate a plugin's final ADD output as a CNI result. */
export function parseResult(raw: unknown, plugin: string): Result {
  const parsed = Result.safeParse(raw);
  if (!parsed.success) throw new CniPluginError(plugin, "ADD", undefined, `returned a malformed result: ${describeIssues(parsed.error)}`, undefined, "");
  return parsed.data;
}

/** The container-side interface a result describes for ifName (has a sandbox). */
export function containerInterface(result: Result, ifName: string) {
  return result.interfaces?.find((i) => i.name === ifName && i.sandbox) ?? result.interfaces?.find((i) => i.sandbox);
}

/** The addresses (CIDR) a result puts on the container interface ifName. */
export function containerAddresses(result: Result, ifName: string): string[] {
  const iface = containerInterface(result, ifName);
  const index = iface ? result.interfaces!.indexOf(iface) : -1;
  return (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === index).map((ip) => ip.address);
}
