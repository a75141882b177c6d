// Talk to the plugin's unix socket the way Docker's pkg/plugins client does: POST /Iface.Method,
// Accept: application/vnd.docker.plugins.v1.2+json, NO Content-Type, body = compact JSON + "\n"
// (or nothing at all for Plugin.Activate / GetCapabilities).
import { request, type Server as HttpServer } from "node:http";
import type { Server as NetServer } from "node:net";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const DOCKER_ACCEPT = "application/vnd.docker.plugins.v1.2+json";
// The team's captured request bodies live in ../shared, beside the repository checkout (CI clones
// main with shared/ next to it); fail loudly when they are not there.
const FIXTURE_DIR = (() => {
  const dir = fileURLToPath(new URL("../../../shared/fixtures/libnetwork-20.10", import.meta.url));
  if (!existsSync(dir)) throw new Error(`libnetwork fixtures not found in ${dir}: the shared/ folder must sit beside the repository`);
  return dir;
})();

export interface PluginReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export function callPlugin(
  socketPath: string,
  path: string,
  body?: string | Buffer,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<PluginReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Accept: DOCKER_ACCEPT, Host: "", ...opts.headers };
    if (body !== undefined) headers["Content-Length"] = Buffer.byteLength(body);
    else if ((opts.method ?? "POST") === "POST") headers["Content-Length"] = 0;
    const req = request({ socketPath, path, method: opts.method ?? "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${path} timed out`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A fixture exactly as Docker puts it on the wire: the compact JSON plus "\n". */
export function fixtureWireBody(file: string): string {
  return readFileSync(join(FIXTURE_DIR, file), "utf8").trimEnd() + "\n";
}

/** A fixture's request body (every fixture is a JSON object). */
export function fixtureJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, file), "utf8")) as Record<string, unknown>;
}

/** A CreateNetwork fixture as Docker sent it (every one carries these fields); tests edit it before sending. */
interface NetworkFixture {
  NetworkID: string;
  Options: Record<string, unknown>;
  IPv4Data: Array<Record<string, unknown>>;
  IPv6Data: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

/** A CreateEndpoint fixture as Docker sent it (every one carries these fields). */
interface EndpointFixture {
  NetworkID: string;
  EndpointID: string;
  Interface: Record<string, unknown>;
  Options: Record<string, unknown>;
  [key: string]: unknown;
}

export const networkFixture = (file: string) => fixtureJson(file) as NetworkFixture;
export const endpointFixture = (file: string) => fixtureJson(file) as EndpointFixture;

/** "01-CreateNetwork-opts.json" -> "/NetworkDriver.CreateNetwork". */
export function fixturePath(file: string): string {
  const m = /^\d+-([A-Za-z]+)(?:-.*)?\.json$/.exec(file);
  if (!m) throw new Error(`fixture ${file} does not follow <order>-<Method>[-<case>].json`);
  return `/NetworkDriver.${m[1]}`;
}

/** The NetworkDriver fixtures (01..09), not the ipam-* ones. */
export function networkDriverFixtures(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => /^\d+-.*\.json$/.test(f))
    .sort();
}

/** Close a server the test listened with, its open connections (keep-alive) included. */
export async function closeServer(server: NetServer | undefined): Promise<void> {
  if (!server) return;
  (server as unknown as HttpServer).closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
