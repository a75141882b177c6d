// The question reconciliation asks Docker (which endpoints does a network still
// have?), as a plain bounded GET on the Engine API socket.
import type { DockerNetworks } from "../driver/seams.js";
import { unixRequest } from "../util/http.js";
import { checked } from "../util/zod.js";
import { NetworkInspect } from "./inspect.js";
import { isSwarmNetworkId } from "../libnetwork/schemas.js";

/** Only the endpoints: the rest of the reply is no concern of reconciliation. */
const Endpoints = NetworkInspect.pick({ Containers: true });

export function dockerNetworksOverSocket(socketPath: string, timeoutMs = 10_000): DockerNetworks {
  return {
    async inspect(networkId) {
      const res = await unixRequest(socketPath, "GET", `/networks/${encodeURIComponent(networkId)}`, timeoutMs);
      if (res.status === 404) throw Object.assign(new Error(`network ${networkId.slice(0, 12)} not found`), { statusCode: 404 });
      if (res.status !== 200) throw Object.assign(new Error(`Docker answered ${res.status}: ${res.body.slice(0, 200)}`), { statusCode: res.status });
      const info = checked(`Docker's network inspect of ${networkId.slice(0, 12)}`, Endpoints, JSON.parse(res.body));
      // A swarm network this node has no instance of: a manager answers with the cluster's view
      // (no Containers; Docker 28.5), a worker with 404. The node's own network is gone either
      // way (an instance, even an empty one, lists its Containers as a map).
      if (isSwarmNetworkId(networkId) && !info.Containers) throw Object.assign(new Error(`swarm network ${networkId.slice(0, 12)} has no instance on this node`), { statusCode: 404 });
      // The endpoint ids only, as the seam promises (the reply's entries carry more).
      return { Containers: info.Containers ? Object.fromEntries(Object.entries(info.Containers).map(([id, c]) => [id, { EndpointID: c.EndpointID }])) : undefined };
    },
  };
}
