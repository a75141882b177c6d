// Which link of a bound namespace has a MAC address: Docker renames the interface it moves into
// a container (eth<N>), so the MAC is what finds it again.
import { run } from "../util/command.js";
import { parseToolJson } from "../util/zod.js";
import { IpLinks } from "./ip-json.js";

/** The name of the link with `mac` in the namespace file; undefined when none has it or the namespace is gone. */
export async function linkNameByMac(nsFile: string, mac: string): Promise<string | undefined> {
  let out: string;
  try {
    out = await run("nsenter", [`--net=${nsFile}`, "ip", "-j", "link", "show"]);
  } catch {
    return undefined;
  }
  return parseToolJson("ip -j link show", IpLinks, out).find((l) => l.address?.toLowerCase() === mac.toLowerCase())?.ifname;
}
