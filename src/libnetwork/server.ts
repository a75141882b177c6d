// The remote driver HTTP API on a unix socket. Only transport and validation live here; the
// NetworkDriver implementation behind it does the work.
import express, { type Request, type Response } from "express";
import type { Server } from "node:net";
import { socketAnswers } from "../util/unix-http.js";
import { chmod, lstat, unlink, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { z } from "zod";
import * as api from "./schemas.js";
import { describeIssues } from "../util/zod.js";
import { log } from "../util/log.js";

export interface NetworkDriver {
  createNetwork(req: api.CreateNetworkRequest): Promise<void>;
  deleteNetwork(networkId: string): Promise<void>;
  createEndpoint(req: api.CreateEndpointRequest): Promise<api.CreateEndpointResponse>;
  endpointOperInfo(req: api.EndpointRequest): Promise<Record<string, unknown>>;
  deleteEndpoint(req: api.EndpointRequest): Promise<void>;
  join(req: api.JoinRequest): Promise<api.JoinResponse>;
  leave(req: api.EndpointRequest): Promise<void>;
  programExternalConnectivity(req: api.EndpointRequest & { Options: Record<string, unknown> }): Promise<void>;
  revokeExternalConnectivity(req: api.EndpointRequest): Promise<void>;
  /** Docker (re)activated the plugin: typically a daemon restart. */
  activated?(): void;
  /** cni-shim's own extension: reconcile with Docker now. */
  reconcile?(): Promise<unknown>;
  /** cni-shim's own extension: wait until background teardowns have finished. */
  settle?(): Promise<void>;
}

export class BadRequestError extends Error {}

function parseBody<S extends z.ZodType>(schema: S, req: Request, call: string): z.infer<S> {
  const raw = Buffer.isBuffer(req.body) ? req.body.toString("utf8").trim() : "";
  let json: unknown = {};
  if (raw) {
    try {
      json = JSON.parse(raw);
    } catch (err) {
      throw new BadRequestError(`${call}: request body is not valid JSON (${(err as Error).message})`);
    }
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new BadRequestError(`${call}: malformed request: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

function reply(res: Response, status: number, body: unknown): void {
  res.status(status).type(api.PLUGIN_CONTENT_TYPE).send(JSON.stringify(body));
}

export function createApp(driver: NetworkDriver): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // Docker sends no Content-Type: take every body raw and parse it ourselves.
  app.use(express.raw({ type: () => true, limit: "1mb" }));

  const route = <S extends z.ZodType>(call: string, schema: S, handler: (body: z.infer<S>) => Promise<unknown>) => {
    app.post(`/${call}`, async (req, res) => {
      const started = performance.now();
      const ids: Record<string, unknown> = {};
      try {
        const body = parseBody(schema, req, call);
        const b = body as { NetworkID?: string; EndpointID?: string };
        if (b.NetworkID) ids.network = b.NetworkID.slice(0, 12);
        if (b.EndpointID) ids.endpoint = b.EndpointID.slice(0, 12);
        const out = (await handler(body)) ?? {};
        reply(res, 200, out);
        log.info("libnetwork call", { call, ...ids, status: 200, ms: Math.round(performance.now() - started) });
      } catch (err) {
        const message = (err as Error).message || String(err);
        reply(res, 500, { Err: message });
        log.warn("libnetwork call failed", { call, ...ids, status: 500, ms: Math.round(performance.now() - started), error: message });
      }
    });
  };

  const Empty = api.NetworkRequest.partial();
  route("Plugin.Activate", Empty, async () => {
    driver.activated?.();
    return { Implements: ["NetworkDriver"] };
  });
  route("NetworkDriver.GetCapabilities", Empty, async () => ({ Scope: "local", ConnectivityScope: "local" }));
  route("NetworkDriver.CreateNetwork", api.CreateNetworkRequest, async (b) => void (await driver.createNetwork(b)));
  route("NetworkDriver.DeleteNetwork", api.NetworkRequest, async (b) => void (await driver.deleteNetwork(b.NetworkID)));
  route("NetworkDriver.CreateEndpoint", api.CreateEndpointRequest, (b) => driver.createEndpoint(b));
  route("NetworkDriver.EndpointOperInfo", api.EndpointRequest, async (b) => ({ Value: await driver.endpointOperInfo(b) }));
  route("NetworkDriver.DeleteEndpoint", api.EndpointRequest, async (b) => void (await driver.deleteEndpoint(b)));
  route("NetworkDriver.Join", api.JoinRequest, (b) => driver.join(b));
  route("NetworkDriver.Leave", api.EndpointRequest, async (b) => void (await driver.leave(b)));
  route("NetworkDriver.ProgramExternalConnectivity", api.ProgramExternalConnectivityRequest, async (b) => void (await driver.programExternalConnectivity(b)));
  route("NetworkDriver.RevokeExternalConnectivity", api.EndpointRequest, async (b) => void (await driver.revokeExternalConnectivity(b)));
  // Swarm-only calls: a local-scope driver has nothing to do, but must not fail them.
  route("NetworkDriver.DiscoverNew", Empty, async () => ({}));
  route("NetworkDriver.DiscoverDelete", Empty, async () => ({}));
  route("NetworkDriver.AllocateNetwork", Empty, async () => ({ Options: {} }));
  route("NetworkDriver.FreeNetwork", Empty, async () => ({}));
  route("CniShim.Reconcile", Empty, async () => ({ Result: (await driver.reconcile?.()) ?? null }));
  route("CniShim.Settle", Empty, async () => void (await driver.settle?.()));

  app.use((req, res) => {
    log.warn("unknown plugin call", { method: req.method, path: req.path });
    reply(res, 404, { Err: `cni-shim does not implement ${req.method} ${req.path}` });
  });
  return app;
}

/** Listen on `socketPath` with owner-only permissions, replacing a stale socket file. */
export async function listenUnix(app: express.Express, socketPath: string): Promise<Server> {
  await mkdir(dirname(socketPath), { recursive: true });
  try {
    const st = await lstat(socketPath);
    if (!st.isSocket()) throw new Error(`${socketPath} exists and is not a socket: remove it or choose another --socket`);
    if (await socketAnswers(socketPath)) throw new Error(`another process is already serving ${socketPath}: stop it first (is cni-shim already running?)`);
    await unlink(socketPath);
    log.info("replaced stale socket", { socket: socketPath });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const oldMask = process.umask(0o177); // the socket is created 0600, no window with wider modes
  try {
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(socketPath, () => resolve(s as unknown as Server));
      (s as unknown as Server).once("error", reject);
    });
    await chmod(socketPath, 0o600);
    return server;
  } finally {
    process.umask(oldMask);
  }
}
