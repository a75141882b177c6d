// Whether an in-sandbox Join on --attach sandbox (where the interface stays where the chain made
// it; on auto it goes on to Docker anyway) must take the hand-out instead, because its container
// has (or is starting with) a network cni-shim does not drive. Pure: the look inside the
// namespace and what Docker says of its containers come in; a reason (or none) goes out.
//
// Why (docs/design.md#docker-managed-networks-beside-cni-shims): Docker 28.5 names and routes only the interfaces it
// moved in itself. Its next name is the lowest eth<N> none of ITS interfaces has
// (osl.generateIfaceName), a remote driver cannot tell it of another (the Join reply's DstName is
// dropped, createdInContainer is for built-in drivers), and its default route is a plain add
// (RouteAdd: "file exists" beside the chain's). So a container with a Docker-managed network gets
// every cni-shim interface through the hand-out, where Docker numbers and routes them all.

/** A container as Docker's container list shows it (no lock on the container: usable inside a Join). */
interface ContainerNetworks {
  id: string;
  /** Docker's State: created, running, exited, restarting, paused, removing, dead. */
  state: string;
  /**
   * The networks it is configured with: the key of its Networks map (the name, or what the user
   * typed) and the NetworkID, which Docker leaves empty until the container first starts.
   */
  networks: Array<{ key: string; networkId: string }>;
}

/** What Docker's lists say: its containers and its networks (to name the networks of a container not started yet). */
export interface DockerView {
  containers: ContainerNetworks[];
  networks: Array<{ id: string; name: string }>;
}

/** The id of a container's network: its NetworkID, else the network its key names (name, id or id prefix); else the key itself. */
export function networkIdOf(net: { key: string; networkId: string }, networks: DockerView["networks"]): string {
  if (net.networkId) return net.networkId;
  const hit = networks.find((n) => n.name === net.key) ?? networks.find((n) => n.id === net.key || (net.key.length >= 3 && n.id.startsWith(net.key)));
  return hit?.id ?? net.key;
}

export interface MixedInput {
  /** The links of the container's namespace at Join. */
  links: string[];
  /** Those of them cni-shim made there itself (in-sandbox endpoints joined to this namespace). */
  ownLinks: string[];
  /** The network of the endpoint joining. */
  networkId: string;
  /** The Docker networks cni-shim drives (its records). */
  cniShimNetworks: ReadonlySet<string>;
  /**
   * Docker's containers (asked only when the namespace is fresh); an Error when Docker could not
   * answer; undefined when there is no Docker to ask (then the namespace alone decides).
   */
  docker?: DockerView | Error;
}

/** Links Docker made: everything but loopback and cni-shim's own. */
export function foreignLinks(links: string[], ownLinks: string[]): string[] {
  return links.filter((l) => l !== "lo" && !ownLinks.includes(l));
}

/** The namespace has only loopback: the first network of a start; Docker must be asked. */
export function needsDockerLook(links: string[]): boolean {
  return foreignLinks(links, []).length === 0;
}

const notStarted = new Set(["created", "exited", "restarting"]);

/**
 * Why this Join takes the hand-out, or undefined to stay in the sandbox.
 *   - Docker's interfaces are in the namespace already (a running container, or a network that
 *     came first in this start): mixed.
 *   - Only cni-shim's own in-sandbox interfaces: the container's path was chosen at its first
 *     Join and stays (a later Docker network would have been seen then, or came to a running
 *     container, which nothing here can see coming).
 *   - Only loopback (the first network of a start, in Docker's random order): a container not
 *     running yet that is configured with this network and with another one cni-shim does not
 *     drive. Docker's list cannot say which of them is starting (a sandbox id is not in it, and
 *     inspecting the container waits on the start that waits on this Join), so any such one
 *     counts: the hand-out works for every container, in-sandbox only for these.
 */
export function mixedReason(input: MixedInput): string | undefined {
  const foreign = foreignLinks(input.links, input.ownLinks);
  if (foreign.length) return `the container has interfaces Docker made (${foreign.join(", ")})`;
  if (input.ownLinks.some((l) => input.links.includes(l))) return undefined;
  const { docker } = input;
  if (docker === undefined) return undefined;
  if (docker instanceof Error) return `Docker did not say which networks the container has (${docker.message})`;
  for (const c of docker.containers) {
    if (!notStarted.has(c.state)) continue;
    const ids = c.networks.map((n) => networkIdOf(n, docker.networks));
    if (!ids.includes(input.networkId)) continue;
    const other = c.networks.filter((_, i) => !input.cniShimNetworks.has(ids[i]!)).map((n) => n.key);
    if (other.length) return `container ${c.id.slice(0, 12)} (not running yet, on this network) also has ${other.length === 1 ? "a network" : "networks"} cni-shim does not drive (${other.join(", ")})`;
  }
  return undefined;
}
