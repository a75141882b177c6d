// Docker Engine API inspect replies as zod schemas: the fields cni-shim reads (attach, compare,
// the endpoints command, the plugin's reconciliation), checked; the rest is dropped, not refused
// (and a field not listed here does not type-check). A reply of another shape is an error
// naming the call and the field, not a TypeError further on.
// dockerode is a type here only: the plugin imports the schemas without loading it.
import type Docker from "dockerode";
import { z } from "zod";
import { checked } from "../util/zod.js";

const Labels = z.record(z.string(), z.string()).nullish();

/** A container's entry in NetworkSettings.Networks (Docker sends "" and 0 for what is unset). */
const EndpointSettings = z.object({
  EndpointID: z.string().optional(),
  IPAddress: z.string().optional(),
  IPPrefixLen: z.number().optional(),
  MacAddress: z.string().optional(),
  Gateway: z.string().optional(),
});

/** GET /containers/{id}/json. */
export const ContainerInspect = z.object({
  Id: z.string(),
  /** With Docker's leading "/". */
  Name: z.string(),
  Config: z.object({ Labels }),
  /** Pid is 0 when the container is not running. */
  State: z.object({ Pid: z.number(), Running: z.boolean() }),
  HostConfig: z.object({ NetworkMode: z.string() }),
  NetworkSettings: z.object({
    /** Published ports, "80/tcp" -> bindings (null: exposed, not published). */
    Ports: z.record(z.string(), z.array(z.object({ HostIp: z.string(), HostPort: z.string() })).nullable()).nullish(),
    Networks: z.record(z.string(), EndpointSettings).nullish(),
  }),
});
export type ContainerInspect = z.infer<typeof ContainerInspect>;

/** GET /networks/{id}. */
export const NetworkInspect = z.object({
  Id: z.string(),
  Name: z.string(),
  Labels,
  IPAM: z.object({ Config: z.array(z.object({ Subnet: z.string().optional(), Gateway: z.string().optional() })).nullish() }),
  /** The endpoints by container id. */
  Containers: z.record(z.string(), z.object({ EndpointID: z.string(), Name: z.string() })).nullish(),
});
export type NetworkInspect = z.infer<typeof NetworkInspect>;

// What restart recovery (the plugin itself, without dockerode) reads: every field optional but
// the id, as the decision (restart-candidates.ts) takes none for granted.
const NetworkRef = z.object({ NetworkID: z.string().optional() }).nullable();
const ListedNetworks = z.object({ Networks: z.record(z.string(), NetworkRef).nullish() });

/** GET /networks?filters=...: the networks of one driver. */
export const NetworkList = z.array(z.object({ Id: z.string(), Name: z.string(), Driver: z.string().optional() }));

/** GET /containers/json?all=1&filters=...: each container's networks, no State yet. */
export const ContainerList = z.array(z.object({ Id: z.string(), HostConfig: z.object({ NetworkMode: z.string().optional() }).optional(), NetworkSettings: ListedNetworks.optional() }));

/** GET /containers/{id}/json, the part restart recovery decides by. */
export const ContainerRestartView = z.object({
  Id: z.string(),
  Name: z.string().optional(),
  State: z.object({ Status: z.string().optional(), Running: z.boolean().optional(), Paused: z.boolean().optional(), Restarting: z.boolean().optional(), Error: z.string().optional(), ExitCode: z.number().optional() }).optional(),
  HostConfig: z.object({ NetworkMode: z.string().optional(), RestartPolicy: z.object({ Name: z.string().optional(), MaximumRetryCount: z.number().optional() }).optional() }).optional(),
  NetworkSettings: ListedNetworks.optional(),
});

/** GET /exec/{id}/json: ExitCode is null while the command runs. */
const ExecInspect = z.object({ ExitCode: z.number().nullable() });

/** `docker container inspect`; Docker's errors (404 ...) come through as dockerode gives them. */
export async function inspectContainer(docker: Docker, ref: string): Promise<ContainerInspect> {
  return checked(`docker container inspect ${ref}`, ContainerInspect, await docker.getContainer(ref).inspect());
}

/** `docker network inspect`; Docker's errors (404 ...) come through as dockerode gives them. */
export async function inspectNetwork(docker: Docker, ref: string): Promise<NetworkInspect> {
  return checked(`docker network inspect ${ref}`, NetworkInspect, await docker.getNetwork(ref).inspect());
}

/** The exec's exit code, null while it runs. */
export async function execExitCode(exec: Docker.Exec): Promise<number | null> {
  return checked(`docker exec inspect ${exec.id}`, ExecInspect, await exec.inspect()).ExitCode;
}
