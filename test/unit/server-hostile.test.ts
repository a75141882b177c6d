// Hostile and broken requests on the plugin socket (issue 8): whatever arrives, the reply is the
// plugin's JSON {"Err": ...} with its content type, never Express's HTML page or a stack trace,
// and the driver never sees the request.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BODY_LIMIT_BYTES, createApp, listenUnix } from "../../src/libnetwork/server.js";
import { PLUGIN_CONTENT_TYPE } from "../../src/libnetwork/schemas.js";
import { setLogLevel } from "../../src/util/log.js";
import { callPlugin, closeServer, fixtureWireBody } from "../helpers/protocol-client.js";
import { createFakeDriver, type FakeDriver } from "../helpers/protocol-fake-driver.js";

const NET_ID = "81a8d9bec29ac03a2312528635b8dd0415c3aa252fa7bbb4b6384aac5c0f64fb";

interface RawReply {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** Write bytes as they are, read until the server closes; undefined when it closed without a reply. */
function rawExchange(socketPath: string, parts: Array<string | Buffer>, opts: { end?: boolean; timeoutMs?: number } = {}): Promise<RawReply | undefined> {
  return new Promise((resolve, reject) => {
    const c = createConnection(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`no close within ${opts.timeoutMs ?? 10_000} ms; got ${Buffer.concat(chunks).toString()}`));
    }, opts.timeoutMs ?? 10_000);
    const done = () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks).toString("utf8");
      if (!data) return resolve(undefined);
      const head = data.indexOf("\r\n\r\n");
      const lines = data.slice(0, head).split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(":")).toLowerCase()] = l.slice(l.indexOf(":") + 1).trim();
      resolve({ status: Number(lines[0]!.split(" ")[1]), headers, text: data.slice(head + 4) });
    };
    c.on("data", (d: Buffer) => chunks.push(d));
    c.on("close", done);
    // The server may hang up while we still write (that is the point of some cases).
    c.on("error", () => undefined);
    const send = async () => {
      for (const p of parts) {
        if (c.destroyed) return;
        await new Promise<void>((r) => (c.write(p) ? r() : c.once("drain", () => r())));
      }
      if (opts.end) c.end();
    };
    c.on("connect", () => {
      send().catch(reject);
    });
  });
}

// A stack frame ("    at fn (/path/file.js:1:2)"), a source path, or an HTML page.
const LEAKS = [/\bat \S+ \(/, /\n\s+at /, /node_modules/, /\/[\w.-]+\/[\w.-]+\.(?:js|ts|mjs):\d+/, /<html|<pre>|<!DOCTYPE/i];

function expectJsonErr(r: { status: number; text: string; headers: Record<string, string | string[] | undefined> } | undefined, status: number): string {
  expect(r, "the server closed the connection without a reply").toBeDefined();
  expect(r!.status, `status, body: ${r!.text}`).toBe(status);
  expect(String(r!.headers["content-type"]).split(";")[0]!.trim()).toBe(PLUGIN_CONTENT_TYPE);
  let json: unknown;
  expect(() => {
    json = JSON.parse(r!.text);
  }, `reply must be JSON, got: ${r!.text.slice(0, 300)}`).not.toThrow();
  const err = (json as { Err?: unknown }).Err;
  expect(err, `reply ${r!.text} has no "Err" string`).toBeTypeOf("string");
  for (const leak of LEAKS) expect(r!.text, "no stack trace, source path or HTML in a reply").not.toMatch(leak);
  return err as string;
}

let dir: string;
let socketPath: string;
let driver: FakeDriver;
let server: NetServer | undefined;

beforeAll(async () => {
  setLogLevel("error");
  dir = await mkdtemp(join(tmpdir(), "cnishim-hostile-"));
  socketPath = join(dir, "cni-shim.sock");
  driver = createFakeDriver();
  server = await listenUnix(createApp(driver), socketPath);
});
afterAll(async () => {
  await closeServer(server);
  await rm(dir, { recursive: true, force: true });
  setLogLevel("info");
});
beforeEach(() => driver.reset());

describe("oversized bodies", () => {
  it("a declared 20 MB body gets 413 JSON naming the limit, before the body is sent", async () => {
    const head = `POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nHost: \r\nContent-Length: ${20 * 1024 * 1024}\r\n\r\n`;
    // Only the headers are written: the reply must not wait for 20 MB that never come.
    const r = await rawExchange(socketPath, [head], { timeoutMs: 5_000 });
    const err = expectJsonErr(r, 413);
    expect(err).toMatch(/1 MiB limit/);
    expect(err).toContain(String(20 * 1024 * 1024));
    expect(r!.headers.connection).toBe("close");
    expect(driver.calls).toEqual([]);
  });

  it("a body just over the limit sent in full gets 413 JSON (node client)", async () => {
    const r = await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", Buffer.alloc(BODY_LIMIT_BYTES + 1, "a"));
    expectJsonErr(r, 413);
    expect(driver.calls).toEqual([]);
  });

  it("a chunked body over the limit gets 413 JSON and the connection ends there", async () => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
    // 4 MiB offered and never terminated: the server must answer without waiting for the end.
    const parts = [`POST /NetworkDriver.Join HTTP/1.1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n`, ...new Array<Buffer>(64).fill(framed)];
    const r = await rawExchange(socketPath, parts, { timeoutMs: 5_000 });
    expectJsonErr(r, 413);
    expect(driver.calls).toEqual([]);
  });

  it("a small chunked body is still read and passed on", async () => {
    const body = fixtureWireBody("09-DeleteNetwork.json");
    const r = await rawExchange(socketPath, [
      `POST /NetworkDriver.DeleteNetwork HTTP/1.1\r\nHost: \r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    ]);
    expect(r?.status).toBe(200);
    expect(driver.callsOf("deleteNetwork")).toEqual([NET_ID]);
  });
});

describe("bodies that are not libnetwork requests", () => {
  it("invalid JSON gets 500 JSON with Err", async () => {
    expect(expectJsonErr(await callPlugin(socketPath, "/NetworkDriver.Leave", '{"NetworkID": "81a8'), 500)).toMatch(/not valid JSON/);
    expect(driver.calls).toEqual([]);
  });

  it("random bytes get 500 JSON with Err", async () => {
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    expectJsonErr(await callPlugin(socketPath, "/NetworkDriver.CreateEndpoint", bytes), 500);
    expect(driver.calls).toEqual([]);
  });

  it("deep nesting is refused before parsing", async () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(expectJsonErr(await callPlugin(socketPath, "/NetworkDriver.Join", deep), 500)).toMatch(/nests more than \d+ levels/);
    // Brackets inside strings do not count.
    const inString = JSON.stringify({ NetworkID: NET_ID, Options: { x: "[".repeat(10_000) } });
    expect(expectJsonErr(await callPlugin(socketPath, "/NetworkDriver.Join", inString), 500)).toMatch(/EndpointID/);
    expect(driver.calls).toEqual([]);
  });

  it("thousands of invalid fields give a short Err naming the first ones", async () => {
    const body = `{"NetworkID":"${NET_ID}","IPv4Data":[${Array(50_000).fill('{"Pool":"x"}').join(",")}]}`;
    const err = expectJsonErr(await callPlugin(socketPath, "/NetworkDriver.CreateNetwork", body), 500);
    expect(err).toMatch(/IPv4Data\.0\.Pool/);
    expect(err).toMatch(/and 49990 more/);
    expect(err.length).toBeLessThan(5_000);
  });

  it("a compressed body gets 415 JSON: Docker never compresses", async () => {
    const r = await callPlugin(socketPath, "/NetworkDriver.DeleteNetwork", fixtureWireBody("09-DeleteNetwork.json"), { headers: { "Content-Encoding": "gzip" } });
    expect(expectJsonErr(r, 415)).toMatch(/Content-Encoding/);
    expect(driver.calls).toEqual([]);
  });

  it("an Expect header Node cannot meet gets 417 JSON", async () => {
    const r = await callPlugin(socketPath, "/Plugin.Activate", "", { headers: { Expect: "nope" } });
    expectJsonErr(r, 417);
  });
});

describe("malformed HTTP never gets HTML or an empty reply", () => {
  it.each([
    ["a garbage request line", "GARBAGE\r\n\r\n"],
    ["an unknown method", "FOO /Plugin.Activate HTTP/1.1\r\nHost: \r\n\r\n"],
    ["an invalid Content-Length", "POST /Plugin.Activate HTTP/1.1\r\nHost: \r\nContent-Length: abc\r\n\r\n{}"],
    ["Content-Length with Transfer-Encoding", "POST /Plugin.Activate HTTP/1.1\r\nHost: \r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"],
    ["a bad chunk size", "POST /Plugin.Activate HTTP/1.1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"],
    ["a TLS hello", "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000"],
  ])("%s gets 400 JSON", async (_name, text) => {
    const err = expectJsonErr(await rawExchange(socketPath, [Buffer.from(text, "latin1")], { end: true }), 400);
    expect(err).toMatch(/malformed HTTP request/);
  });

  it("a request cut off inside its headers gets 400 JSON when the client hangs up", async () => {
    expectJsonErr(await rawExchange(socketPath, ["POST /Plugin.Activate HTTP/1.1\r\nHost"], { end: true }), 400);
  });

  it("oversized headers get 431 JSON", async () => {
    const r = await rawExchange(socketPath, [`POST /Plugin.Activate HTTP/1.1\r\nHost: \r\nX-Big: ${"h".repeat(40_000)}\r\nContent-Length: 0\r\n\r\n`]);
    expectJsonErr(r, 431);
  });

  it("the server keeps answering afterwards", async () => {
    const r = await callPlugin(socketPath, "/Plugin.Activate");
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ Implements: ["NetworkDriver"] });
  });
});

describe("unknown calls", () => {
  it.each([
    ["POST", "/NetworkDriver.Nope"],
    ["POST", "/IpamDriver.RequestPool"],
    ["POST", "/"],
    ["GET", "/Plugin.Activate"],
    ["PUT", "/NetworkDriver.CreateNetwork"],
    ["DELETE", "/NetworkDriver.DeleteNetwork"],
  ])("%s %s gets 404 JSON", async (method, path) => {
    const r = await callPlugin(socketPath, path, method === "GET" ? undefined : "{}", { method });
    expect(expectJsonErr(r, 404)).toContain("does not implement");
    expect(driver.calls).toEqual([]);
  });

  it("a very long unknown path is not echoed in full", async () => {
    const r = await callPlugin(socketPath, "/" + "x".repeat(8_000), "{}");
    expect(expectJsonErr(r, 404).length).toBeLessThan(1_000);
  });
});

describe("stalled clients (slowloris)", () => {
  let slowDir: string;
  let slowSocket: string;
  let slowServer: NetServer | undefined;
  beforeAll(async () => {
    slowDir = await mkdtemp(join(tmpdir(), "cnishim-slow-"));
    slowSocket = join(slowDir, "cni-shim.sock");
    slowServer = await listenUnix(createApp(createFakeDriver()), slowSocket, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
  });
  afterAll(async () => {
    await closeServer(slowServer);
    await rm(slowDir, { recursive: true, force: true });
  });

  it("headers that never finish get 408 JSON", async () => {
    const r = await rawExchange(slowSocket, ["POST /Plugin.Activate HTTP/1.1\r\nHost: \r\n"], { timeoutMs: 5_000 });
    expect(expectJsonErr(r, 408)).toMatch(/did not arrive completely/);
  });

  it("a body that never finishes gets 408 JSON", async () => {
    const r = await rawExchange(slowSocket, ["POST /NetworkDriver.Leave HTTP/1.1\r\nHost: \r\nContent-Length: 100\r\n\r\n{"], { timeoutMs: 5_000 });
    expectJsonErr(r, 408);
  });
});
