// The MAC an endpoint asks the chain for at CreateEndpoint (pure).
import type { CniArg } from "../cni/args.js";
import * as api from "../libnetwork/schemas.js";
import { canonicalIP } from "../util/ip.js";

/** The MAC Docker's bridge driver gave up to 26 (02:42 and the IPv4 address), or none for no IPv4 address. */
export function macOfIPv4(address: string | undefined): string | undefined {
  const v4 = address ? canonicalIP(address) : undefined;
  if (!v4 || !/^\d+\.\d+\.\d+\.\d+$/.test(v4)) return undefined;
  return ["02", "42", ...v4.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":");
}

/** A user-set MAC (--mac-address) arrives in the interface and, base64, in the options. */
export function requestedMac(req: api.CreateEndpointRequest): string | undefined {
  if (req.Interface?.MacAddress) return req.Interface.MacAddress.toLowerCase();
  const b64 = req.Options[api.OPT.macAddress];
  if (typeof b64 === "string" && b64) {
    const bytes = Buffer.from(b64, "base64");
    if (bytes.length === 6) return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");
  }
  return undefined;
}

/**
 * The MAC an endpoint gets: the user's (--mac-address), else one made of its IPv4 address the
 * way Docker's bridge driver made them up to Docker 26 (02:42 and the address's four bytes).
 * The same address then always has the same MAC, so after a container restart its peers'
 * neighbour entries stay right; with the chain's random MAC they pointed at the old one until
 * they aged out (tens of seconds without a ping reply; Docker 28 announces a moved interface
 * with gratuitous ARP, Docker <= 27 does not). No IPv4 address: the chain's own.
 */
export function endpointMac(req: api.CreateEndpointRequest): string | undefined {
  return requestedMac(req) ?? macOfIPv4(req.Interface?.Address || undefined);
}

/**
 * CNI_ARGS that also ask for the MAC (`MAC=`, in place of one there), for a chain without a plugin
 * that takes the `mac` capability: of the reference plugins, bridge (1.1.1 on: its veth is made
 * with it) and tuning (sets it, also when it is in the chain for sysctls only) read it; the
 * others ignore it (IgnoreUnknown), and the in-sandbox Join sets it itself where none did.
 */
export function withMacArg(args: CniArg[], mac: string): CniArg[] {
  return [...args.filter(([k]) => k !== "MAC"), ["MAC", mac]];
}
