// A NetworkDriver that records every call and answers what the test configured, so protocol
// tests can check exactly what the HTTP layer handed to the driver.
import type { NetworkDriver } from "../../src/libnetwork/server.js";
import type * as api from "../../src/libnetwork/schemas.js";

export type DriverMethod = Exclude<keyof NetworkDriver, "activated" | "reconcile"> | "activated" | "reconcile";

export interface RecordedCall {
  method: DriverMethod;
  arg: unknown;
}

export interface FakeDriver extends NetworkDriver {
  calls: RecordedCall[];
  /** Replies by method; a function is called with the request. */
  replies: Partial<Record<DriverMethod, unknown>>;
  /** Methods that throw this error. */
  failures: Partial<Record<DriverMethod, Error>>;
  reset(): void;
  callsOf(method: DriverMethod): unknown[];
}

export function createFakeDriver(): FakeDriver {
  const calls: RecordedCall[] = [];
  const replies: Partial<Record<DriverMethod, unknown>> = {};
  const failures: Partial<Record<DriverMethod, Error>> = {};

  const handle = async (method: DriverMethod, arg: unknown): Promise<any> => {
    // A deep copy: what was received, not something the server could mutate afterwards.
    calls.push({ method, arg: arg === undefined ? undefined : structuredClone(arg) });
    const failure = failures[method];
    if (failure) throw failure;
    const reply = replies[method];
    return typeof reply === "function" ? (reply as (a: unknown) => unknown)(arg) : reply;
  };

  const driver: FakeDriver = {
    calls,
    replies,
    failures,
    reset() {
      calls.length = 0;
      for (const k of Object.keys(replies)) delete replies[k as DriverMethod];
      for (const k of Object.keys(failures)) delete failures[k as DriverMethod];
    },
    callsOf: (method) => calls.filter((c) => c.method === method).map((c) => c.arg),
    createNetwork: (req: api.CreateNetworkRequest) => handle("createNetwork", req),
    deleteNetwork: (networkId: string) => handle("deleteNetwork", networkId),
    createEndpoint: async (req: api.CreateEndpointRequest) => (await handle("createEndpoint", req)) ?? {},
    endpointOperInfo: async (req: api.EndpointRequest) => (await handle("endpointOperInfo", req)) ?? {},
    deleteEndpoint: (req: api.EndpointRequest) => handle("deleteEndpoint", req),
    join: async (req: api.JoinRequest) => (await handle("join", req)) ?? {},
    leave: (req: api.EndpointRequest) => handle("leave", req),
    programExternalConnectivity: (req) => handle("programExternalConnectivity", req),
    revokeExternalConnectivity: (req: api.EndpointRequest) => handle("revokeExternalConnectivity", req),
    activated: () => {
      calls.push({ method: "activated", arg: undefined });
    },
    reconcile: (() => handle("reconcile", undefined)) as () => Promise<unknown>,
  };
  return driver;
}
