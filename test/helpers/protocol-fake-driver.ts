// A NetworkDriver that records every call and answers what the test configured, so protocol
// tests can check exactly what the HTTP layer handed to the driver.
import type { NetworkDriver } from "../../src/libnetwork/server.js";
import type * as api from "../../src/libnetwork/schemas.js";

export type DriverMethod = Exclude<keyof NetworkDriver, "activated" | "reconcile"> | "activated" | "reconcile";
/** What the driver's `method` is called with (the request as the server parsed it). */
type DriverArg<M extends DriverMethod> = Parameters<NonNullable<NetworkDriver[M]>>[0];

interface RecordedCall {
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
  callsOf<M extends DriverMethod>(method: M): Array<DriverArg<M>>;
}

export function createFakeDriver(): FakeDriver {
  const calls: RecordedCall[] = [];
  const replies: Partial<Record<DriverMethod, unknown>> = {};
  const failures: Partial<Record<DriverMethod, Error>> = {};

  /** The reply the test configured is taken as the method's answer (T): the test decides its shape. */
  const handle = <T>(method: DriverMethod, arg: unknown): Promise<T> => {
    // A deep copy: what was received, not something the server could mutate afterwards.
    calls.push({ method, arg: arg === undefined ? undefined : structuredClone(arg) });
    const failure = failures[method];
    if (failure) return Promise.reject(failure);
    const reply = replies[method];
    // Called inside the executor: a reply function that throws rejects, as an async driver's would.
    return new Promise<T>((resolve) => resolve((typeof reply === "function" ? (reply as (a: unknown) => unknown)(arg) : reply) as T));
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
    callsOf: <M extends DriverMethod>(method: M) => calls.filter((c) => c.method === method).map((c) => c.arg as DriverArg<M>),
    createNetwork: (req: api.CreateNetworkRequest) => handle<void>("createNetwork", req),
    deleteNetwork: (networkId: string) => handle<void>("deleteNetwork", networkId),
    createEndpoint: async (req: api.CreateEndpointRequest) => (await handle<api.CreateEndpointResponse | undefined>("createEndpoint", req)) ?? {},
    endpointOperInfo: async (req: api.EndpointRequest) => (await handle<Record<string, unknown> | undefined>("endpointOperInfo", req)) ?? {},
    deleteEndpoint: (req: api.EndpointRequest) => handle<void>("deleteEndpoint", req),
    join: async (req: api.JoinRequest) => (await handle<api.JoinResponse | undefined>("join", req)) ?? {},
    leave: (req: api.EndpointRequest) => handle<void>("leave", req),
    programExternalConnectivity: (req) => handle<void>("programExternalConnectivity", req),
    revokeExternalConnectivity: (req: api.EndpointRequest) => handle<void>("revokeExternalConnectivity", req),
    activated: () => {
      calls.push({ method: "activated", arg: undefined });
    },
    reconcile: () => handle<unknown>("reconcile", undefined),
  };
  return driver;
}
