// Small HTTP helpers, each bounded in time: over unix sockets (the plugin's, Docker's) and a
// plain GET of a TCP port (published ports).
import { request } from "node:http";
import { createConnection } from "node:net";

/** Does something accept connections on this unix socket? */
export function socketAnswers(path: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection(path);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
    setTimeout(() => done(false), timeoutMs).unref();
  });
}

/** One request; rejects on connection errors and when no answer comes within timeoutMs. */
export function unixRequest(socketPath: string, method: "GET" | "POST", path: string, timeoutMs: number, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = method === "POST" ? { Accept: "application/vnd.docker.plugins.v1.2+json" } : undefined;
    const req = request({ socketPath, path, method, headers, timeout: timeoutMs }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** GET http://host:port/ on a fresh connection; rejects when no answer comes within timeoutMs. */
export function httpGet(host: string, port: number, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: "/", timeout: timeoutMs, agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}
