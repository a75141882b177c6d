// The chain's ADD result checked against the addresses Docker assigned (pure).
import type { Result } from "../cni/schemas.js";
import { containerInterface } from "../cni/result.js";
import { parseCidr, sameIP } from "../util/ip.js";
import { TranslationError } from "./translation-error.js";

/** The container-side MAC, after checking the chain gave the container Docker's addresses. */
export function verifyResult(result: Result, ifName: string, wanted: Array<string | undefined>, networkName: string): { mac?: string } {
  const iface = containerInterface(result, ifName);
  const index = iface ? result.interfaces!.indexOf(iface) : -1;
  const ips = (result.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === index);
  for (const want of wanted) {
    if (!want) continue;
    const got = ips.find((ip) => sameIP(ip.address, want));
    if (!got) {
      const had = ips.map((ip) => ip.address).join(", ") || "no address";
      throw new TranslationError(
        `CNI network "${networkName}" gave the container ${had}, but Docker assigned ${want}: the conflist's IPAM must honour the requested address (host-local does, via the "ips" capability and IP= in CNI_ARGS) and use the same subnet as the Docker network`,
      );
    }
    if (parseCidr(got.address)?.prefix !== parseCidr(want)?.prefix) {
      throw new TranslationError(`CNI network "${networkName}" gave the container ${got.address}, but Docker assigned ${want}: the prefix lengths differ; create the Docker network with the conflist's subnet`);
    }
  }
  return { mac: iface?.mac?.toLowerCase() };
}
