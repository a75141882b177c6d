// The cluster-node style network lists the tests write into their own conf dirs:
// bridge (gateway, masquerade, hairpin, MTU) + host-local + portmap + firewall.

export interface BridgePluginOptions {
  bridge: string;
  subnet: string;
  gateway?: string;
  mtu?: number;
  /** host-local's store (default: its own, /var/lib/cni/networks). */
  dataDir?: string;
  /** Another IPAM plugin (a missing one, to see a chain fail). */
  ipamType?: string;
  /** The bridge plugin takes requested addresses as the `ips` capability. */
  ipsCapability?: boolean;
}

/** A bridge plugin as on a cluster node: gateway, masquerade, hairpin, host-local with a default route. */
export function bridgePlugin(o: BridgePluginOptions) {
  return {
    type: "bridge",
    bridge: o.bridge,
    isGateway: true,
    ipMasq: true,
    hairpinMode: true,
    ...(o.mtu ? { mtu: o.mtu } : {}),
    ...(o.ipsCapability ? { capabilities: { ips: true } } : {}),
    ipam: {
      type: o.ipamType ?? "host-local",
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      ranges: [[{ subnet: o.subnet, ...(o.gateway ? { gateway: o.gateway } : {}) }]],
      routes: [{ dst: "0.0.0.0/0" }],
    },
  };
}

export function podNetworkList(opts: { name: string; bridge: string; subnet: string; mtu?: number; extraPlugins?: unknown[] }): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: opts.name,
    plugins: [
      bridgePlugin({ bridge: opts.bridge, subnet: opts.subnet, mtu: opts.mtu ?? 1400 }),
      { type: "portmap", snat: true, capabilities: { portMappings: true } },
      { type: "firewall" },
      ...(opts.extraPlugins ?? []),
    ],
  });
}
