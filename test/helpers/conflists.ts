// The cluster-node style network list the e2e tests write into their own conf dirs:
// bridge (gateway, masquerade, hairpin, MTU) + host-local + portmap + firewall.
export function podNetworkList(opts: { name: string; bridge: string; subnet: string; mtu?: number; extraPlugins?: unknown[] }): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: opts.name,
    plugins: [
      { type: "bridge", bridge: opts.bridge, isGateway: true, ipMasq: true, hairpinMode: true, mtu: opts.mtu ?? 1400, ipam: { type: "host-local", ranges: [[{ subnet: opts.subnet }]], routes: [{ dst: "0.0.0.0/0" }] } },
      { type: "portmap", snat: true, capabilities: { portMappings: true } },
      { type: "firewall" },
      ...(opts.extraPlugins ?? []),
    ],
  });
}
