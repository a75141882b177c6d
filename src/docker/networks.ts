// The question reconciliation asks Docker (which endpoints does a network still
// have?), as a plain bounded GET on the Engine API socket.
import { z } from "zod";
import type { DockerNetworks } from "../driver/seams.js";
import { unixRequest } from "../util/http.js";

const NetworkInspect = z.object({ Containers: z.record(z.string(), z.object({ EndpointID: z.string() })).nullish() }).passthrough();

export function dockerNetworksOverSocket(socketPath: string, timeoutMs = 10_000): DockerNetworks {
  return {
    async inspect(networkId) {
      const res = await unixRequest(socketPath, "GET", `/networks/${encodeURIComponent(networkId)}`, timeoutMs);
      if (res.status === 404) throw Object.assign(new Error(`network ${networkId.slice(0, 12)} not found`), { statusCode: 404 });
      if (res.status !== 200) throw Object.assign(new Error(`Docker answered ${res.status}: ${res.body.slice(0, 200)}`), { statusCode: res.status });
      const parsed = NetworkInspect.safeParse(JSON.parse(res.body));
      if (!parsed.success) throw new Error("Docker's network inspect reply is not what cni-shim expects");
      return { Containers: parsed.data.Containers ?? undefined };
    },
  };
}
