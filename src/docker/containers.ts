// The second question the plugin asks Docker, inside a Join (driver/mixed.ts): which networks its
// containers are configured with, and the names of its networks (a container not started yet has
// no NetworkIDs). Both lists are read without the container's lock (an inspect would wait on the
// start that waits on this Join).
import { z } from "zod";
import type { DockerView } from "../driver/mixed.js";
import type { DockerContainers } from "../driver/seams.js";
import { unixRequest } from "../util/http.js";

const ContainerList = z.array(
  z
    .object({
      Id: z.string(),
      State: z.string(),
      NetworkSettings: z.object({ Networks: z.record(z.string(), z.object({ NetworkID: z.string().nullish() }).passthrough()).nullish() }).passthrough().nullish(),
    })
    .passthrough(),
);
const NetworkList = z.array(z.object({ Id: z.string(), Name: z.string() }).passthrough());

async function getJson<T>(socketPath: string, path: string, schema: z.ZodType<T>, timeoutMs: number): Promise<T> {
  const res = await unixRequest(socketPath, "GET", path, timeoutMs);
  if (res.status !== 200) throw new Error(`Docker answered ${res.status} to ${path}: ${res.body.slice(0, 200)}`);
  const parsed = schema.safeParse(JSON.parse(res.body));
  if (!parsed.success) throw new Error(`Docker's reply to ${path} is not what cni-shim expects`);
  return parsed.data;
}

/** Only the containers that may be starting (mixed.ts's notStarted): less for Docker to list and send on every first Join. */
const NOT_RUNNING = `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ status: ["created", "exited", "restarting"] }))}`;

export function dockerContainersOverSocket(socketPath: string, timeoutMs = 3_000): DockerContainers {
  return {
    async view(): Promise<DockerView> {
      const [containers, networks] = await Promise.all([getJson(socketPath, NOT_RUNNING, ContainerList, timeoutMs), getJson(socketPath, "/networks", NetworkList, timeoutMs)]);
      return {
        containers: containers.map((c) => ({ id: c.Id, state: c.State, networks: Object.entries(c.NetworkSettings?.Networks ?? {}).map(([key, n]) => ({ key, networkId: n.NetworkID ?? "" })) })),
        networks: networks.map((n) => ({ id: n.Id, name: n.Name })),
      };
    },
  };
}
