// Our names made of Docker's ids: the default config's network and bridge, an endpoint's staging
// namespace and host-side interface. Deterministic, so a restarted plugin finds them again.

export const shortId = (id: string) => id.slice(0, 12);

export const defaultNetworkName = (networkId: string) => `cni-shim-${shortId(networkId)}`;

export const defaultBridgeName = (networkId: string) => `cs-${shortId(networkId)}`;

/** Our names for an endpoint's namespace and host-side interface, from its (CNI container) id. */
export const endpointNames = (endpointId: string) => ({ stagingNetns: `cni-shim-${shortId(endpointId)}`, tmpName: `cs${shortId(endpointId)}` });
