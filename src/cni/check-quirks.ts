// CHECK complaints of the reference plugins that are their own bugs, not drift (pure).

/**
 * portmap 1.1.1 checks IPv6 DNAT rules for a container without an IPv6 address, and fails on
 * the chain it never made (containernetworking/plugins#819): not drift when the result has no
 * IPv6 address. Returns why the complaint is dismissed, or undefined when it stands.
 */
export function knownFalseComplaint(pluginType: string, message: string, prevResult: Record<string, unknown>): string | undefined {
  const ips = (prevResult.ips as Array<{ address?: string }> | undefined) ?? [];
  if (pluginType === "portmap" && /could not check ipv6 dnat/.test(message) && !ips.some((ip) => ip.address?.includes(":"))) {
    return "portmap checked IPv6 rules of a container without IPv6 (containernetworking/plugins#819)";
  }
  return undefined;
}
