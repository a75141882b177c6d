// The remote driver HTTP API on a unix socket. Only transport and validation live here; the
// NetworkDriver implementation behind it does the work.
import express, { type NextFunction, type Request, type Response } from "express";
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Server, Socket } from "node:net";
import { socketAnswers } from "../util/http.js";
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

class BadRequestError extends Error {}

/** Docker's requests are a few KB (a long published port range is the largest). */
export const BODY_LIMIT_BYTES = 1024 * 1024;
const BODY_LIMIT_TEXT = "1 MiB";
/** Docker writes each request at once; these only bound clients that stall (slowloris). */
export interface StallLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}
const STALL_LIMITS: StallLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 };
/** Validation names this many bad fields; a hostile body can have hundreds of thousands. */
const MAX_ISSUES = 10;
/** Err texts and logged values are cut here, so a reply or log line never grows with the input. */
const MAX_TEXT = 16 * 1024;

const clip = (text: string, max = MAX_TEXT): string => (text.length > max ? `${text.slice(0, max)}... (${text.length} characters, cut)` : text);

function issuesText(error: z.ZodError): string {
  const more = error.issues.length - MAX_ISSUES;
  const text = describeIssues(more > 0 ? ({ issues: error.issues.slice(0, MAX_ISSUES) } as z.ZodError) : error);
  return clip(text, 2_000) + (more > 0 ? `; and ${more} more` : "");
}

/**
 * Docker's requests nest four levels at most. JSON.parse of 100,000 levels works, but its
 * native stacks grow the malloc heap for good: count brackets (outside strings) first.
 */
const MAX_DEPTH = 64;

function nestsTooDeep(body: Buffer): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_DEPTH) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function parseBody<S extends z.ZodType>(schema: S, req: Request, call: string): z.infer<S> {
  if (Buffer.isBuffer(req.body) && nestsTooDeep(req.body)) {
    throw new BadRequestError(`${call}: request body nests more than ${MAX_DEPTH} levels deep: not a libnetwork request`);
  }
  const raw = Buffer.isBuffer(req.body) ? req.body.toString("utf8").trim() : "";
  let json: unknown = {};
  if (raw) {
    try {
      json = JSON.parse(raw);
    } catch (err) {
      throw new BadRequestError(`${call}: request body is not valid JSON (${clip((err as Error).message, 300)})`);
    }
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new BadRequestError(`${call}: malformed request: ${issuesText(parsed.error)}`);
  return parsed.data;
}

function reply(res: Response, status: number, body: unknown): void {
  res.status(status).type(api.PLUGIN_CONTENT_TYPE).send(JSON.stringify(body));
}

const tooLarge = (bytes?: number) =>
  `request body${bytes ? ` of ${bytes} bytes` : ""} is over the ${BODY_LIMIT_TEXT} limit: libnetwork requests are small JSON documents, this one is not from Docker`;

/** An error reply that also ends the connection: what is left of the request is never read. */
function refuse(req: Request, res: Response, status: number, message: string): void {
  if (res.headersSent || req.socket.destroyed) {
    req.socket.destroy(); // already refused (or the peer left): nothing more to say
    return;
  }
  log.warn("request refused", { method: req.method, path: clip(req.path, 200), status, error: message });
  res.setHeader("Connection", "close");
  reply(res, status, { Err: message });
}

interface BodyError {
  type?: string;
  message?: string;
  length?: number;
  received?: number;
  expected?: number;
  encoding?: string;
}

/** body-parser's errors (and anything else thrown outside a route) as a status and a message for Docker. */
function requestError(err: unknown, req: Request): { status: number; message: string } {
  const e = (err ?? {}) as BodyError;
  switch (e.type) {
    case "entity.too.large":
      return { status: 413, message: tooLarge(e.length ?? e.received) };
    case "request.aborted":
      return { status: 400, message: "the request body ended before its Content-Length was reached: the client went away" };
    case "request.size.invalid":
      return { status: 400, message: `the request body has ${e.received} bytes but its Content-Length says ${e.expected}` };
    case "encoding.unsupported":
    case "charset.unsupported":
      return { status: 415, message: `request bodies are read as plain JSON: send them without Content-Encoding (got ${clip(String(e.encoding ?? e.message), 100)})` };
  }
  return { status: 500, message: `cni-shim failed to read ${req.method} ${clip(req.path, 200)}: ${clip(e.message ?? String(err), 1_000)}` };
}

/**
 * A body declared too large is refused before a byte of it is read; body-parser would read
 * (and discard) all of it first.
 */
function limitBodySize(req: Request, res: Response, next: NextFunction): void {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > BODY_LIMIT_BYTES) return refuse(req, res, 413, tooLarge(declared));
  next();
  // A chunked body declares no size: body-parser keeps no more than the limit but would read
  // the rest, however long, in 64 KiB buffers. Hang up at the limit instead. (next() has just
  // attached body-parser's own reader; counting alongside it takes nothing from it.)
  if (req.headers["content-length"] === undefined && req.listenerCount("data") > 0) {
    let received = 0;
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received <= BODY_LIMIT_BYTES) return;
      req.off("data", count);
      refuse(req, res, 413, tooLarge());
    };
    req.on("data", count);
  }
}

const discovery = (b: z.infer<typeof api.DiscoveryNotification>) => ({ type: b.DiscoveryType, data: clip(JSON.stringify(b.DiscoveryData ?? null), 500) });

export function createApp(driver: NetworkDriver): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(limitBodySize);
  // Docker sends no Content-Type: take every body raw and parse it ourselves. Docker never
  // compresses a request; inflating would let a small body grow to the limit (and cost zlib memory).
  app.use(express.raw({ type: () => true, limit: BODY_LIMIT_BYTES, inflate: false }));

  const route = <S extends z.ZodType>(call: string, schema: S, handler: (body: z.infer<S>) => unknown) => {
    app.post(`/${call}`, async (req, res) => {
      const started = performance.now();
      const ids: Record<string, unknown> = {};
      try {
        const body = parseBody(schema, req, call);
        log.debug("libnetwork request", { call, body: clip(Buffer.isBuffer(req.body) ? req.body.toString("utf8").trim() : "", 4_000) });
        const b = body as { NetworkID?: string; EndpointID?: string };
        if (b.NetworkID) ids.network = b.NetworkID.slice(0, 12);
        if (b.EndpointID) ids.endpoint = b.EndpointID.slice(0, 12);
        const out = (await handler(body)) ?? {};
        reply(res, 200, out);
        log.info("libnetwork call", { call, ...ids, status: 200, ms: Math.round(performance.now() - started) });
      } catch (err) {
        const message = clip((err as Error).message || String(err));
        reply(res, 500, { Err: message });
        log.warn("libnetwork call failed", { call, ...ids, status: 500, ms: Math.round(performance.now() - started), error: message });
      }
    });
  };

  const Empty = api.NetworkRequest.partial();
  route("Plugin.Activate", Empty, () => {
    driver.activated?.();
    return { Implements: ["NetworkDriver"] };
  });
  // Scope "local": every network is the node's own (swarm networks come through --config-from).
  // ConnectivityScope "global": on a swarm network, Docker spreads the service's DNS records
  // (tasks.SVC) to the other nodes; a network that is not swarm-scoped is not affected.
  route("NetworkDriver.GetCapabilities", Empty, () => ({ Scope: "local", ConnectivityScope: "global" }));
  route("NetworkDriver.CreateNetwork", api.CreateNetworkRequest, async (b) => void (await driver.createNetwork(b)));
  route("NetworkDriver.DeleteNetwork", api.NetworkRequest, async (b) => void (await driver.deleteNetwork(b.NetworkID)));
  route("NetworkDriver.CreateEndpoint", api.CreateEndpointRequest, (b) => driver.createEndpoint(b));
  route("NetworkDriver.EndpointOperInfo", api.EndpointRequest, async (b) => ({ Value: await driver.endpointOperInfo(b) }));
  route("NetworkDriver.DeleteEndpoint", api.EndpointRequest, async (b) => void (await driver.deleteEndpoint(b)));
  route("NetworkDriver.Join", api.JoinRequest, (b) => driver.join(b));
  route("NetworkDriver.Leave", api.EndpointRequest, async (b) => void (await driver.leave(b)));
  route("NetworkDriver.ProgramExternalConnectivity", api.ProgramExternalConnectivityRequest, async (b) => void (await driver.programExternalConnectivity(b)));
  route("NetworkDriver.RevokeExternalConnectivity", api.EndpointRequest, async (b) => void (await driver.revokeExternalConnectivity(b)));
  // Swarm-only calls: every node runs its own chain, so a node coming or going changes nothing here.
  route("NetworkDriver.DiscoverNew", api.DiscoveryNotification, (b) => void log.debug("swarm node discovered", discovery(b)));
  route("NetworkDriver.DiscoverDelete", api.DiscoveryNotification, (b) => void log.debug("swarm node gone", discovery(b)));
  route("NetworkDriver.AllocateNetwork", Empty, () => ({ Options: {} }));
  route("NetworkDriver.FreeNetwork", Empty, () => ({}));
  route("CniShim.Reconcile", Empty, async () => ({ Result: (await driver.reconcile?.()) ?? null }));
  route("CniShim.Settle", Empty, async () => void (await driver.settle?.()));

  app.use((req, res) => {
    const path = clip(req.path, 200);
    log.warn("unknown plugin call", { method: req.method, path });
    reply(res, 404, { Err: `cni-shim does not implement ${req.method} ${path}` });
  });
  // Last: Express's own handler would answer with an HTML page carrying the stack trace.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = requestError(err, req);
    refuse(req, res, status, message);
  });
  return app;
}

/** Sockets already answered: llhttp reports the same parse error again for every later chunk. */
const refusedSockets = new WeakSet<Socket>();

/**
 * Malformed HTTP never reaches Express. Node's default reply is a bare 400 without a body,
 * which Docker cannot decode: answer in the plugin's JSON, or just close when a reply is
 * impossible (peer gone, or a response already on the wire).
 */
function answerClientError(limits: StallLimits, err: NodeJS.ErrnoException & { reason?: string }, socket: Socket): void {
  if (refusedSockets.has(socket)) return;
  refusedSockets.add(socket);
  socket.pause();
  const inFlight = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "request headers are too large: libnetwork requests have a handful of short headers"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, `the request did not arrive completely within ${limits.headersTimeoutMs / 1000} s (headers) / ${limits.requestTimeoutMs / 1000} s (body)`]
        : [400, `malformed HTTP request (${clip(err.reason ?? err.code ?? err.message, 200)}): cni-shim speaks Docker's plugin protocol, POST /<Call> with a JSON body`];
  const body = JSON.stringify({ Err: message });
  log.warn("malformed request refused", { status, error: message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${api.PLUGIN_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
  setTimeout(() => socket.destroy(), 1_000).unref(); // a peer that never reads does not keep it
}

/** Listen on `socketPath` with owner-only permissions, replacing a stale socket file. */
export async function listenUnix(app: express.Express, socketPath: string, stall: Partial<StallLimits> = {}): Promise<Server> {
  const limits = { ...STALL_LIMITS, ...stall };
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
    const checkMs = Math.min(1_000, limits.headersTimeoutMs);
    const server = createServer({ headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: checkMs }, app);
    server.on("clientError", (err, socket) => answerClientError(limits, err, socket as Socket));
    // Node answers an Expect header other than 100-continue itself, with an empty 417.
    server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
      const body = JSON.stringify({ Err: `cannot meet "Expect: ${clip(String(req.headers.expect), 100)}": send the request without it` });
      res.writeHead(417, { "Content-Type": api.PLUGIN_CONTENT_TYPE, "Content-Length": Buffer.byteLength(body), Connection: "close" }).end(body);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    await chmod(socketPath, 0o600);
    return server;
  } finally {
    process.umask(oldMask);
  }
}
