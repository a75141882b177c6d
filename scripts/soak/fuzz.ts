#!/usr/bin/env node
// Hostile-request soak (issue 8): floods a real `cni-shim serve` on a temp socket with garbage,
// broken and oversized requests, then checks that every reply was JSON {"Err": ...}, that the
// process survived and that its memory came back down.
//
//   node dist/scripts/soak/fuzz.js [--requests N] [--concurrency C] [--max-rss-mb M] [--timeout-s S]
//                                 [--seed N] [--idle-s S] [--log-level L] [--only CASE,...]
//
// Needs a build (make build: scripts/soak/fuzz.ts is built to dist/scripts/). No root, no Docker: the server gets its own temp
// state/cache/conf dirs, an EMPTY --cni-path (no plugin can ever run) and a --docker-socket that
// does not exist. No request can create anything: CreateEndpoint only names networks that do
// not exist (none is ever created) and every CreateNetwork carries a bad option or no pool.
//
// Prints a table and one line `FUZZ_RESULT {json}`. Exit 1 when the server died or stopped
// answering, any reply was not JSON (or had another content type, a stack trace, or no Err with
// a non-200 status), the flood left state records, RSS after the flood (and --idle-s of quiet)
// is over --max-rss-mb, or --timeout-s ran out; exit 2 on bad arguments. The server is always
// stopped and the temp dir removed.
import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { existsSync, openSync, closeSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { ChildProcess } from "node:child_process";
import { mulberry32 } from "./random.js";

// dist/scripts/soak/fuzz.js: the repository is three levels up.
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const MAIN_JS = join(REPO, "dist/cli/main.js");
const TEMPLATE = join(REPO, "plugin-config/net.d/cni-shim-default.conflist");
const FIXTURE_DIRS = [join(REPO, "../shared/fixtures/libnetwork-20.10")];
const CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";
const MB = 1024 * 1024;

// ---- options ------------------------------------------------------------------------------

function options() {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "16" },
      "max-rss-mb": { type: "string", default: "120" },
      "timeout-s": { type: "string", default: "300" },
      "idle-s": { type: "string", default: "3" },
      seed: { type: "string", default: "1" },
      "log-level": { type: "string", default: "info" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    const lines = readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1);
    const header = lines.slice(0, lines.findIndex((l) => !l.startsWith("//")));
    process.stdout.write(header.map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
    process.exit(0);
  }
  const num = (name: "requests" | "concurrency" | "max-rss-mb" | "timeout-s" | "idle-s" | "seed", min: number) => {
    const n = Number(values[name]);
    if (!Number.isFinite(n) || n < min) usage(`--${name} must be a number >= ${min}, got "${values[name]}"`);
    return n;
  };
  return {
    requests: Math.floor(num("requests", 1)),
    concurrency: Math.floor(num("concurrency", 1)),
    maxRssMb: num("max-rss-mb", 1),
    timeoutS: num("timeout-s", 10),
    idleS: num("idle-s", 0),
    seed: Math.floor(num("seed", 0)),
    logLevel: values["log-level"],
    only: values.only ? values.only.split(",").filter(Boolean) : undefined,
  };
}

function usage(msg: string): never {
  process.stderr.write(`fuzz: ${msg}\n`);
  process.exit(2);
}

// ---- randomness (seeded, so a failing run can be repeated) --------------------------------

let rand = mulberry32(1);
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
/** One element of a non-empty list. */
const pick = <T>(arr: readonly T[]): T => arr[Math.floor(rand() * arr.length)] as T;
const hex = (n: number) => Array.from({ length: n }, () => "0123456789abcdef"[int(0, 15)]).join("");
function randomBuffer(n: number) {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = int(0, 255);
  return b;
}

// ---- request bodies -----------------------------------------------------------------------

/** A request body: whatever JSON the fixtures hold, mutated at will. */
type Body = unknown;
type JsonObject = Record<string, unknown>;
/** Call path -> the bodies to mutate. */
type Bodies = Record<string, Body[]>;

const NET_ID = "81a8d9bec29ac03a2312528635b8dd0415c3aa252fa7bbb4b6384aac5c0f64fb";
const EP_ID = "fe6a48ea14a4f8fb944114527c28971beb6915d70a049879eb8bb0f2e8553f8a";
const EMPTY_CALLS = [
  "/Plugin.Activate",
  "/NetworkDriver.GetCapabilities",
  "/NetworkDriver.DiscoverNew",
  "/NetworkDriver.DiscoverDelete",
  "/NetworkDriver.AllocateNetwork",
  "/NetworkDriver.FreeNetwork",
  "/CniShim.Settle",
  "/CniShim.Reconcile",
];

// Used when ../shared/ is not beside the checkout: the same shapes Docker 20.10 sends.
const BUILTIN_BODIES: Bodies = {
  "/NetworkDriver.CreateNetwork": [
    {
      NetworkID: NET_ID,
      Options: { "com.docker.network.enable_ipv6": false, "com.docker.network.generic": { "com.example.x": "1" } },
      IPv4Data: [{ AddressSpace: "LocalDefault", Gateway: "172.18.0.1/16", Pool: "172.18.0.0/16" }],
      IPv6Data: [],
    },
  ],
  "/NetworkDriver.CreateEndpoint": [
    {
      NetworkID: NET_ID,
      EndpointID: EP_ID,
      Interface: { Address: "172.18.0.2/16", AddressIPv6: "", MacAddress: "" },
      Options: { "com.docker.network.endpoint.exposedports": [{ Proto: 6, Port: 80 }], "com.docker.network.portmap": [{ Proto: 6, IP: "", Port: 80, HostIP: "", HostPort: 8081, HostPortEnd: 8081 }] },
    },
  ],
  "/NetworkDriver.Join": [{ NetworkID: NET_ID, EndpointID: EP_ID, SandboxKey: "/var/run/docker/netns/d3f9693074e5", Options: {} }],
  "/NetworkDriver.ProgramExternalConnectivity": [{ NetworkID: NET_ID, EndpointID: EP_ID, Options: {} }],
  "/NetworkDriver.EndpointOperInfo": [{ NetworkID: NET_ID, EndpointID: EP_ID }],
  "/NetworkDriver.RevokeExternalConnectivity": [{ NetworkID: NET_ID, EndpointID: EP_ID }],
  "/NetworkDriver.Leave": [{ NetworkID: NET_ID, EndpointID: EP_ID }],
  "/NetworkDriver.DeleteEndpoint": [{ NetworkID: NET_ID, EndpointID: EP_ID }],
  "/NetworkDriver.DeleteNetwork": [{ NetworkID: NET_ID }],
};

/** path -> request bodies to mutate: the captured fixtures, or the built-in copies. */
function loadBodies(): { bodies: Bodies; source: string } {
  const dir = FIXTURE_DIRS.find((d) => existsSync(d));
  const bodies: Bodies = {};
  if (dir) {
    for (const f of readdirSync(dir).sort()) {
      const m = /^\d+-([A-Za-z]+)(?:-.*)?\.json$/.exec(f);
      if (!m) continue;
      (bodies[`/NetworkDriver.${m[1]}`] ??= []).push(JSON.parse(readFileSync(join(dir, f), "utf8")) as Body);
    }
  }
  for (const [path, list] of Object.entries(BUILTIN_BODIES)) bodies[path] ??= list;
  for (const path of EMPTY_CALLS) bodies[path] = [{}];
  return { bodies, source: dir ?? "built-in copies" };
}

const WRONG_VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  1e308,
  true,
  "",
  "x",
  " ",
  "\u0000",
  "\ud800",
  "é".repeat(70),
  "a".repeat(64),
  NET_ID.toUpperCase(),
  "../../etc/passwd",
  [],
  [1, "2", null],
  {},
  { NetworkID: NET_ID },
  "A".repeat(4096),
];

/** Every path into a JSON value (objects and arrays), the root excluded. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  if (value && typeof value === "object") {
    for (const key of Object.keys(value)) {
      out.push([...prefix, key]);
      out.push(...paths((value as JsonObject)[key], [...prefix, key]));
    }
  }
  return out;
}

/** Sets (or, with undefined, deletes) the value at `path`; throws when a parent is not an object. */
function setPath(obj: JsonObject, path: string[], value: unknown) {
  let cur = obj;
  for (const key of path.slice(0, -1)) cur = cur[key] as JsonObject;
  const last = path.at(-1) ?? "";
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

const isPlainObject = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

// Options cni-shim must refuse; each on its own makes CreateNetwork fail before any CNI work.
const BAD_OPTIONS: JsonObject[] = [
  { "cni.network": "" },
  { "cni.network": " " },
  { "cni.network": "../x" },
  { "cni.network": "a/b" },
  { "cni.network": ".." },
  { "cni.network": "/etc/cni/net.d/10-x.conflist" },
  { "cni.network": "-x" },
  { "cni.network": "does-not-exist-fuzz" },
  { "cni.network": "n".repeat(5000) },
  { "cni.network": 123 },
  { "cni.network": true },
  { "cni.network": {} },
  { "cni.network": [] },
  { "cni.mtu": "" },
  { "cni.mtu": "abc" },
  { "cni.mtu": "575" },
  { "cni.mtu": "65536" },
  { "cni.mtu": "-1" },
  { "cni.mtu": "1450.5" },
  { "cni.mtu": "1e3" },
  { "cni.mtu": 1500 },
  { "cni.mtu": " 1500" },
  { "cni.bridge": "" },
  { "cni.bridge": "a-sixteen-chars0" },
  { "cni.bridge": "br/0" },
  { "cni.bridge": "br 0" },
  { "cni.bridge": 7 },
  { "cni.foo": "1" },
  { "cni.": "x" },
  { "cni.network": "k8s", "cni.mtu": "1400" },
  { "cni.network": "k8s", "cni.bridge": "br0" },
];

/**
 * Whatever a mutation did, a CreateNetwork body must fail before any CNI work: a bad cni.*
 * option when the generic options are an object, otherwise no address pool at all.
 */
function defangCreateNetwork(body: Body, badOptions = pick(BAD_OPTIONS)): Body {
  if (!isPlainObject(body)) return body;
  const generic = isPlainObject(body.Options) ? body.Options["com.docker.network.generic"] : undefined;
  if (isPlainObject(generic)) {
    if (!Object.keys(generic).some((k) => k.startsWith("cni."))) Object.assign(generic, badOptions);
    else generic["cni.mtu"] ??= "not-a-number";
  } else {
    body.IPv4Data = [];
    body.IPv6Data = [];
  }
  return body;
}

// ---- raw HTTP -----------------------------------------------------------------------------

interface RequestOptions {
  headers?: Record<string, string>;
  chunked?: boolean;
  version?: string;
}

function httpRequest(method: string, path: string, body: string | Buffer | undefined, { headers = {}, chunked = false, version = "1.1" }: RequestOptions = {}): Buffer {
  const lines = [`${method} ${path} HTTP/${version}`, "Host: ", "User-Agent: cni-shim-fuzz", `Accept: ${CONTENT_TYPE}`, "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const buf = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  if (chunked) {
    lines.push("Transfer-Encoding: chunked");
    const parts: Buffer[] = [];
    for (let i = 0; i < buf.length; ) {
      const n = Math.min(int(1, 4096), buf.length - i);
      parts.push(Buffer.from(`${n.toString(16)}\r\n`), buf.subarray(i, i + n), Buffer.from("\r\n"));
      i += n;
    }
    parts.push(Buffer.from("0\r\n\r\n"));
    return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), ...parts]);
  }
  if (!("Content-Length" in headers) && (body !== undefined || method === "POST")) lines.push(`Content-Length: ${buf.length}`);
  return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), buf]);
}

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}
interface Parsed {
  responses: Response[];
  partial: boolean;
  garbage?: string;
}

/** Complete responses at the start of `buf` (1xx interim ones skipped); `rest` when cut short. */
function parseResponses(buf: Buffer, { head = false, closed = false } = {}): Parsed {
  const out: Response[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf("\r\n\r\n", pos);
    if (end < 0) return { responses: out, partial: true };
    const lines = buf.subarray(pos, end).toString("latin1").split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
    if (!m) return { responses: out, partial: true, garbage: buf.subarray(pos, pos + 200).toString("latin1") };
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      pos = bodyStart;
      continue;
    }
    let body: Buffer;
    if (head || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      for (;;) {
        const eol = buf.indexOf("\r\n", p);
        if (eol < 0) return { responses: out, partial: true };
        const size = parseInt(buf.subarray(p, eol).toString("latin1"), 16);
        if (!Number.isFinite(size)) return { responses: out, partial: true, garbage: "bad chunk size" };
        if (buf.length < eol + 2 + size + 2) return { responses: out, partial: true };
        if (size === 0) {
          bodyStart = eol + 4;
          break;
        }
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        p = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
      out.push({ status, headers, body: body.toString("utf8") });
      pos = bodyStart;
      continue;
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (buf.length < bodyStart + n) return { responses: out, partial: true };
      body = buf.subarray(bodyStart, bodyStart + n);
      bodyStart += n;
    } else {
      if (!closed) return { responses: out, partial: true };
      body = buf.subarray(bodyStart);
      bodyStart = buf.length;
    }
    out.push({ status, headers, body: body.toString("utf8") });
    pos = bodyStart;
  }
  return { responses: out, partial: false };
}

/** What goes on the wire: bytes, a pause, or a big body streamed until the server answers. */
type Step = Buffer | { delayMs: number } | { stream: Buffer; chunked?: boolean };
/** One request of a case. */
interface Spec {
  steps: Step[];
  expect?: number;
  timeoutMs?: number;
  head?: boolean;
  endAfter?: boolean;
  slow?: boolean;
}
interface Exchange extends Parsed {
  how: "timeout" | "complete" | "closed";
  error: string | undefined;
  bytes: number;
  slow?: boolean;
}

/**
 * One connection: write `steps` (Buffers, or { delayMs }, or { stream: Buffer, chunkHeader }
 * for big bodies that stop as soon as an answer comes), read until `expect` responses or
 * close, give up after timeoutMs.
 */
function exchange(socketPath: string, { steps, expect = 1, timeoutMs = 15_000, head = false, endAfter = false }: Spec): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let error: string | undefined;
    let answered = false;
    const finish = (how: Exchange["how"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const buf = Buffer.concat(chunks, size);
      const parsed = parseResponses(buf, { head, closed: how !== "timeout" });
      sock.destroy();
      resolve({ how, error, bytes: size, ...parsed });
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    sock.on("data", (d: Buffer) => {
      if (size < 4 * MB) {
        chunks.push(d);
        size += d.length;
      }
      const p = parseResponses(Buffer.concat(chunks, size), { head });
      if (p.responses.length) answered = true;
      if (p.responses.length >= expect) finish("complete");
    });
    sock.on("end", () => finish("closed"));
    sock.on("close", () => finish("closed"));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
      // The server may answer early and close while we are still writing: read what came.
      setTimeout(() => finish("closed"), 50);
    });
    const write = (b: Buffer) => new Promise<void>((res) => (sock.write(b) ? res() : sock.once("drain", res)));
    const send = async () => {
      try {
        for (const step of steps) {
          if (done || sock.destroyed) return;
          if (Buffer.isBuffer(step)) await write(step);
          else if ("delayMs" in step) await new Promise((r) => setTimeout(r, step.delayMs));
          else {
            // Big body in 64 KiB pieces; stop when the server has answered or hung up.
            for (let i = 0; i < step.stream.length && !done && !answered && !sock.destroyed; i += 64 * 1024) {
              const piece = step.stream.subarray(i, i + 64 * 1024);
              await write(step.chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]) : piece);
            }
            if (step.chunked && !done && !answered && !sock.destroyed) await write(Buffer.from("0\r\n\r\n"));
          }
        }
        if (endAfter && !sock.destroyed) sock.end();
      } catch {
        /* reported through 'error' */
      }
    };
    sock.once("connect", () => void send());
  });
}

// ---- the cases ----------------------------------------------------------------------------

function buildCases(bodies: Bodies) {
  const calls = Object.keys(bodies);
  const bodiesOf = (path: string) => bodies[path] ?? [];
  const bodyFor = (path: string) => structuredClone(pick(bodiesOf(path)));
  /** A body of a call with a JSON object body (CreateNetwork's: always one). */
  const objectFor = (path: string): JsonObject => {
    const body = bodyFor(path);
    return isPlainObject(body) ? body : {};
  };
  const post = (path: string, body: string | Buffer | undefined, opts?: RequestOptions) => httpRequest("POST", path, body, opts);
  const json = (v: unknown) => JSON.stringify(v) + "\n";
  const safe = (path: string, body: Body) => (path === "/NetworkDriver.CreateNetwork" ? defangCreateNetwork(body) : body);

  // Every (call, field, wrong value) once before any repeats: wrong types for every field.
  const combos: { path: string; bi: number; p: string[]; v: unknown }[] = [];
  for (const path of calls) {
    for (const [bi, base] of bodiesOf(path).entries()) {
      for (const p of [...paths(base), ["NetworkID"], ["EndpointID"], ["Options"], ["Interface"], ["SandboxKey"]]) {
        for (const v of [...WRONG_VALUES, undefined]) combos.push({ path, bi, p, v });
      }
    }
  }
  let comboIndex = 0;
  const big = Buffer.alloc(20 * MB, "a");
  big.write('{"NetworkID":"');

  const cases: Record<string, () => Spec> = {
    // Every field of every call set to a wrong type (or removed), one combination at a time.
    wrongType: () => {
      const c = combos[comboIndex++ % combos.length];
      if (!c) return { steps: [post("/Plugin.Activate", undefined)] }; // no bodies at all (never: EMPTY_CALLS)
      const body = structuredClone(bodiesOf(c.path)[c.bi]);
      if (!isPlainObject(body)) return { steps: [post(c.path, json(body))] };
      try {
        setPath(body, c.p, c.v);
      } catch {
        body[c.p[0] ?? ""] = c.v; // the parent was not an object in this base body
      }
      return { steps: [post(c.path, json(safe(c.path, body)))] };
    },
    validShapeBadOptions: () => {
      const body = objectFor("/NetworkDriver.CreateNetwork");
      body.Options ??= {};
      (body.Options as JsonObject)["com.docker.network.generic"] = { ...pick(BAD_OPTIONS), "com.example.x": "1" };
      return { steps: [post("/NetworkDriver.CreateNetwork", json(body))] };
    },
    genericWrongType: () => {
      const body = objectFor("/NetworkDriver.CreateNetwork");
      body.Options = { ...(body.Options ?? {}), "com.docker.network.generic": pick<unknown>(["x", 1, [], null, true, [["cni.network", ""]]]) };
      return { steps: [post("/NetworkDriver.CreateNetwork", json(defangCreateNetwork(body)))] };
    },
    // Calls Docker makes for endpoints, on networks that do not exist: never reaches CNI.
    unknownIds: () => {
      const path = pick(calls.filter((c) => c.startsWith("/NetworkDriver.") && c !== "/NetworkDriver.CreateNetwork"));
      const body = bodyFor(path);
      if (isPlainObject(body)) {
        if ("NetworkID" in body) body.NetworkID = hex(64);
        if ("EndpointID" in body) body.EndpointID = hex(64);
      }
      return { steps: [post(path, json(body))] };
    },
    randomBody: () => ({ steps: [post(pick(calls), randomBuffer(int(1, 8192)))] }),
    randomConnection: () => ({ steps: [randomBuffer(int(1, 4096))], endAfter: true }),
    truncatedJson: () => {
      const path = pick(calls);
      const text = json(safe(path, bodyFor(path)));
      return { steps: [post(path, text.slice(0, int(0, Math.max(0, text.length - 2))))] };
    },
    deepNesting: () => {
      const depth = int(1_000, 300_000);
      const [open, close] = pick([["[", "]"], ['{"a":', "}"]] as const);
      const inner = open.repeat(depth) + "1" + close.repeat(rand() < 0.5 ? depth : int(0, depth));
      const path = pick(calls);
      // Nested where the schema does not look (Options) or at the top level.
      const text = rand() < 0.5 ? inner : `{"NetworkID":"${NET_ID}","EndpointID":"${hex(64)}","Options":{"com.docker.network.generic":{"cni.mtu":"x","deep":${inner}}}}`;
      return { steps: [post(path, text)] };
    },
    hugeString: () => {
      const path = pick(calls);
      const body = safe(path, bodyFor(path));
      const s = pick(["a", "é", "0", "\\u0000", "💥"]).repeat(int(10_000, 250_000));
      const field = pick(["NetworkID", "EndpointID", "SandboxKey", "Options", "x"]);
      const text = json(isPlainObject(body) ? { ...body, [field]: "S" } : body).replace('"S"', `"${s}"`);
      return { steps: [post(path, text)] };
    },
    hugeKey: () => {
      const path = pick(calls);
      const key = "k".repeat(int(10_000, 200_000));
      return { steps: [post(path, `{"NetworkID":"${NET_ID}","IPv4Data":[{"Pool":"10.0.0.0/8","AuxAddresses":{"${key}":"nope"}}],"Options":{"com.docker.network.generic":{"cni.mtu":"x"}}}`)] };
    },
    manyKeys: () => {
      const n = int(1_000, 60_000);
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(`"k${i}":${i}`);
      return { steps: [post(pick(calls), `{${parts.join(",")}}`)] };
    },
    // Thousands of invalid items: one validation issue each.
    manyIssues: () => {
      const n = int(1_000, 80_000);
      const item = pick(['{"Pool":"x"}', "{}", "1", '{"Pool":"10.0.0.0/8","Gateway":"y"}']);
      const field = pick(["IPv4Data", "IPv6Data"]);
      return { steps: [post("/NetworkDriver.CreateNetwork", `{"NetworkID":"${NET_ID}","${field}":[${Array(n).fill(item).join(",")}]}`)] };
    },
    wrongJsonType: () => ({ steps: [post(pick(calls), pick(["[]", "null", "1", '"x"', "true", "[{}]", '""', "{}{}", "\ufeff{}", "{} x", "NaN"]))] }),
    unknownPath: () => {
      const path = pick([
        "/",
        "/NetworkDriver.Nope",
        "/IpamDriver.RequestPool",
        "/IpamDriver.GetCapabilities",
        "/Plugin.Activate/extra",
        "/plugin.activate",
        "/../../etc/passwd",
        "/%00",
        "/%ZZ",
        "/NetworkDriver.CreateNetwork?x=1&x=2",
        "/" + "x".repeat(int(100, 8000)),
        "/é",
        "//NetworkDriver.Join",
        "*",
        "http://evil/NetworkDriver.Join",
        "/NetworkDriver.CreateNetwork#frag",
        "/__proto__",
        "/constructor",
      ]);
      return { steps: [post(path, "{}\n")] };
    },
    otherMethod: () => {
      const method = pick(["GET", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"]);
      return { steps: [httpRequest(method, pick(calls), method === "GET" || method === "HEAD" ? undefined : "{}\n")], head: method === "HEAD" };
    },
    badMethod: () => ({ steps: [Buffer.from(`${pick(["FOO", "get", "P0ST", "POST\u0000", "PRI"])} /Plugin.Activate HTTP/1.1\r\nHost: \r\nContent-Length: 0\r\n\r\n`)], endAfter: true }),
    garbageLine: () => ({ steps: [Buffer.from(pick(["GARBAGE\r\n\r\n", "\r\n\r\n\r\n", "POST\r\n\r\n", "POST /Plugin.Activate HTTP/9.9\r\n\r\n", "POST /Plugin.Activate\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000"]))], endAfter: true }),
    badHeaders: () => {
      const path = pick(calls);
      const variant = int(0, 11);
      const raw = [
        `POST ${path} HTTP/1.1\r\nHost: \r\nContent-Length: abc\r\n\r\n{}`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nContent-Length: -1\r\n\r\n{}`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nX-Big: ${"h".repeat(int(17_000, 70_000))}\r\nContent-Length: 0\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: y`).join("\r\n")}\r\nContent-Length: 0\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nBad Header: x\r\nContent-Length: 0\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nContent-Length: 99999999999999999999\r\n\r\n{}`,
        `POST ${path} HTTP/1.1\r\nHost: \r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{}`,
        `CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n`,
      ][variant] as string;
      return { steps: [Buffer.from(raw)], endAfter: true };
    },
    contentHeaders: () => {
      const path = pick(calls);
      const body = json(safe(path, bodyFor(path)));
      const headers = pick<Record<string, string>>([
        { "Content-Encoding": "gzip" },
        { "Content-Encoding": "deflate" },
        { "Content-Encoding": "br" },
        { "Content-Encoding": "bogus" },
        { "Content-Type": "application/json; charset=utf-16" },
        { "Content-Type": "text/html; charset=bogus" },
        { "Content-Type": "multipart/form-data; boundary=x" },
        { Expect: "100-continue" },
        { Expect: "nope" },
        { Accept: "text/html" },
      ]);
      return { steps: [post(path, body, { headers })] };
    },
    chunkedValid: () => {
      const path = pick(calls);
      return { steps: [post(path, json(safe(path, bodyFor(path))), { chunked: true })] };
    },
    pipelined: () => {
      const path = pick(calls);
      const one = (p: string) => Buffer.from(httpRequest("POST", p, json(safe(p, bodyFor(p)))).toString("latin1").replace("Connection: close\r\n", ""), "latin1");
      return { steps: [Buffer.concat([one(path), one(pick(calls)), httpRequest("POST", pick(calls), "{}\n")])], expect: 3 };
    },
    http10: () => ({ steps: [httpRequest("POST", pick(calls), "{}\n", { version: "1.0" })] }),
    bigDeclared: () => ({
      steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\nConnection: close\r\nContent-Length: ${pick([big.length, 1024 * MB, 1 * MB + 1])}\r\n\r\n`), { stream: big }],
      timeoutMs: 30_000,
    }),
    bigChunked: () => ({
      steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`), { stream: big, chunked: true }],
      timeoutMs: 30_000,
    }),
    // Slowloris: half a request, then silence until we give up.
    slowHeaders: () => ({ steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\n`), { delayMs: 500 }, Buffer.from("X-Slow: 1\r\n")], timeoutMs: 2_000, slow: true }),
    slowBody: () => ({ steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\nContent-Length: 1000\r\n\r\n{"Netw`)], timeoutMs: 2_000, slow: true }),
    slowChunked: () => ({ steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"Net\r\n`)], timeoutMs: 2_000, slow: true }),
    // Waits out the server's own headers timeout (10 s): its 408 must be JSON too.
    slowPatient: () => ({ steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\n`)], timeoutMs: 20_000, slow: true }),
    abortMidBody: () => ({ steps: [Buffer.from(`POST ${pick(calls)} HTTP/1.1\r\nHost: \r\nContent-Length: 5000\r\n\r\n{"NetworkID":`)], endAfter: true }),
    valid: () => ({ steps: [post(pick(EMPTY_CALLS.filter((c) => c !== "/CniShim.Reconcile")), rand() < 0.5 ? undefined : "\n")] }),
  };
  return { cases, combos: combos.length };
}

// Relative frequency of each case; the 20 MB ones are a handful per run (see schedule()).
const WEIGHTS: Record<string, number> = {
  wrongType: 30,
  validShapeBadOptions: 6,
  genericWrongType: 2,
  unknownIds: 6,
  randomBody: 5,
  randomConnection: 4,
  truncatedJson: 5,
  deepNesting: 3,
  hugeString: 3,
  hugeKey: 1,
  manyKeys: 2,
  manyIssues: 2,
  wrongJsonType: 3,
  unknownPath: 4,
  otherMethod: 4,
  badMethod: 2,
  garbageLine: 2,
  badHeaders: 3,
  contentHeaders: 3,
  chunkedValid: 3,
  pipelined: 2,
  http10: 1,
  abortMidBody: 1,
  valid: 3,
};
const SLOW_CASES = ["slowHeaders", "slowBody", "slowChunked"];

/** The case names in send order: weighted at random, plus a few big and slow ones spread in. */
function schedule(n: number): string[] {
  const names = Object.keys(WEIGHTS);
  const weight = (k: string) => WEIGHTS[k] ?? 0;
  const total = names.reduce((s, k) => s + weight(k), 0);
  const list: string[] = [];
  for (let i = 0; i < n; i++) {
    let r = rand() * total;
    list.push(names.find((k) => (r -= weight(k)) < 0) ?? names[0] ?? "valid");
  }
  const bigs = Math.min(Math.max(2, Math.round(n / 2000)), 10);
  const slows = Math.min(Math.max(3, Math.round(n / 200)), 60);
  const spread = (name: string, count: number) => {
    for (let i = 0; i < count && list.length; i++) list[Math.floor(((i + 0.5) / count) * list.length)] = name;
  };
  spread("bigDeclared", bigs);
  for (let i = 0; i < bigs; i++) list[Math.floor(((i + 0.75) / bigs) * list.length) % list.length] = "bigChunked";
  for (let i = 0; i < slows; i++) list[Math.floor(((i + 0.25) / slows) * list.length) % list.length] = SLOW_CASES[i % SLOW_CASES.length] as string;
  if (list.length >= 20) for (const at of [0.1, 0.6]) list[Math.floor(at * list.length) + 1] = "slowPatient";
  return list.slice(0, n);
}

// ---- checks on each response --------------------------------------------------------------

const STACK_RE = /(^|\n|\\n)\s*at \S[^\n]*:\d+:\d+|node:internal|<html|<pre>|<!DOCTYPE/i;

type Counter = "nonJson" | "wrongContentType" | "noErr" | "stackTraces";
interface CaseStats {
  sent: number;
  statuses: Record<number, number>;
  noResponse: number;
}
interface Stats extends Record<Counter, number> {
  sent: number;
  responses: number;
  statuses: Record<number, number>;
  nonJsonExamples: string[];
  noErrExamples: string[];
  wrongContentTypeExamples: string[];
  stackExamples: string[];
  closedWithoutResponse: number;
  connectionErrors: Record<string, number>;
  errorsAfterResponse: Record<string, number>;
  timeouts: number;
  slowTimeouts: number;
  largestReply: { bytes: number; case?: string; status?: number };
  byCase: Record<string, CaseStats>;
  logLines?: number;
  logNonJsonLines?: number;
  logStackLines?: number;
  logTail?: string[];
}

function judge(stats: Stats, caseName: string, res: Exchange, head: boolean) {
  const c = (stats.byCase[caseName] ??= { sent: 0, statuses: {}, noResponse: 0 });
  if (!res.responses.length) {
    c.noResponse++;
    if (res.how === "timeout") {
      if (res.slow) stats.slowTimeouts++;
      else stats.timeouts++;
    } else if (res.error) stats.connectionErrors[res.error] = (stats.connectionErrors[res.error] ?? 0) + 1;
    else stats.closedWithoutResponse++;
    if (res.garbage || res.bytes) note(stats.nonJsonExamples, stats, caseName, `unparseable reply: ${JSON.stringify(res.garbage ?? "")}`, "nonJson");
    return;
  }
  if (res.error) stats.errorsAfterResponse[res.error] = (stats.errorsAfterResponse[res.error] ?? 0) + 1;
  for (const r of res.responses) {
    stats.responses++;
    stats.statuses[r.status] = (stats.statuses[r.status] ?? 0) + 1;
    c.statuses[r.status] = (c.statuses[r.status] ?? 0) + 1;
    if (head) continue; // HTTP forbids a body in a HEAD reply: nothing to parse
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.body);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed === null || typeof parsed !== "object") {
      note(stats.nonJsonExamples, stats, caseName, `${r.status} ${r.headers["content-type"] ?? "(no content-type)"}: ${r.body.slice(0, 300)}`, "nonJson");
      continue;
    }
    if ((r.headers["content-type"] ?? "").split(";")[0]?.trim() !== CONTENT_TYPE) {
      note(stats.wrongContentTypeExamples, stats, caseName, `${r.status} content-type ${r.headers["content-type"] ?? "undefined"}`, "wrongContentType");
    }
    if (r.status !== 200 && typeof (parsed as JsonObject).Err !== "string") note(stats.noErrExamples, stats, caseName, `${r.status}: ${r.body.slice(0, 300)}`, "noErr");
    if (STACK_RE.test(r.body)) note(stats.stackExamples, stats, caseName, `${r.status}: ${r.body.slice(0, 300)}`, "stackTraces");
    if (r.body.length > stats.largestReply.bytes) stats.largestReply = { bytes: r.body.length, case: caseName, status: r.status };
  }
  if (res.how === "timeout" && res.partial) stats.timeouts++;
}

function note(examples: string[], stats: Stats, caseName: string, text: string, counter: Counter) {
  stats[counter]++;
  if (examples.length < 3) examples.push(`[${caseName}] ${text}`);
}

// ---- the server under test ----------------------------------------------------------------

function rssKb(pid: number | undefined): { rss?: number; hwm?: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return { rss: rss ? Number(rss[1]) : undefined, hwm: hwm ? Number(hwm[1]) : undefined };
  } catch {
    return {};
  }
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function waitForSocket(socketPath: string, child: ChildProcess, ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!alive(child)) return false;
    const r = await exchange(socketPath, { steps: [httpRequest("POST", "/Plugin.Activate", undefined)], timeoutMs: 1_000 });
    if (r.responses[0]?.status === 200) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

async function stopServer(child: ChildProcess | undefined) {
  if (!child || !alive(child)) return;
  const exited = new Promise((res) => child.once("exit", res));
  child.kill("SIGTERM");
  const timeout = new Promise((res) => setTimeout(() => res("timeout"), 5_000).unref());
  if ((await Promise.race([exited, timeout])) === "timeout" && alive(child)) {
    child.kill("SIGKILL");
    await exited;
  }
}

// ---- main ---------------------------------------------------------------------------------

async function main() {
  const opt = options();
  rand = mulberry32(opt.seed || 1);
  if (!existsSync(MAIN_JS)) usage(`${MAIN_JS} not found: build first with "npx tsc -p tsconfig.json"`);
  const { bodies, source } = loadBodies();
  const { cases, combos } = buildCases(bodies);

  const dir = await mkdtemp(join(tmpdir(), "cnishim-fuzz-"));
  const socketPath = join(dir, "cni-shim.sock");
  const d = { state: join(dir, "state"), cache: join(dir, "cache"), conf: join(dir, "conf"), cniBin: join(dir, "cni-bin-empty") };
  const logFile = join(dir, "serve.log");
  let child: ChildProcess | undefined;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const stats: Stats = {
    sent: 0,
    responses: 0,
    statuses: {},
    nonJson: 0,
    nonJsonExamples: [],
    noErr: 0,
    noErrExamples: [],
    wrongContentType: 0,
    wrongContentTypeExamples: [],
    stackTraces: 0,
    stackExamples: [],
    closedWithoutResponse: 0,
    connectionErrors: {},
    errorsAfterResponse: {},
    timeouts: 0,
    slowTimeouts: 0,
    largestReply: { bytes: 0 },
    byCase: {},
  };
  const rss = { beforeMb: 0, peakMb: 0, hwmMb: 0, afterMb: 0 };
  let aliveAtEnd = false;
  let healthyAtEnd = false;
  let timedOut = false;
  let leftovers: string[] = [];
  let startupError: string | undefined;
  const started = Date.now();
  let floodMs = 0;

  try {
    for (const p of Object.values(d)) await mkdir(p, { recursive: true });
    await copyFile(TEMPLATE, join(d.conf, "cni-shim-default.conflist"));
    const logFd = openSync(logFile, "a");
    child = spawn(
      process.execPath,
      [
        MAIN_JS,
        "serve",
        "--socket", socketPath,
        "--state-dir", d.state,
        "--cache-dir", d.cache,
        "--conf-dir", d.conf,
        "--cni-path", d.cniBin,
        "--docker-socket", join(dir, "no-docker.sock"),
        "--reconcile-interval", "0",
        "--log-level", opt.logLevel,
      ],
      { stdio: ["ignore", logFd, logFd], env: { ...process.env, CNI_PATH: d.cniBin } },
    );
    closeSync(logFd);
    const server = child;
    server.on("error", (err) => (startupError = err.message));
    if (!(await waitForSocket(socketPath, server, 20_000))) throw new Error(`cni-shim serve did not answer on ${socketPath} within 20 s${startupError ? ` (${startupError})` : ""}`);
    await new Promise((r) => setTimeout(r, 1_000));
    rss.beforeMb = (rssKb(server.pid).rss ?? 0) / 1024;

    // Flood: `concurrency` workers take the next case until all are sent or time is up.
    const only = opt.only;
    const plan = only ? Array.from({ length: opt.requests }, (_, i) => only[i % only.length] as string) : schedule(opt.requests);
    for (const name of opt.only ?? []) if (!cases[name]) throw new Error(`--only: no case "${name}" (cases: ${Object.keys(cases).join(", ")})`);
    const deadline = started + opt.timeoutS * 1000;
    let next = 0;
    const sampler = setInterval(() => {
      const r = rssKb(server.pid);
      if (r.rss) rss.peakMb = Math.max(rss.peakMb, r.rss / 1024);
    }, 100);
    const floodStart = Date.now();
    const worker = async () => {
      while (next < plan.length && !interrupted) {
        if (Date.now() > deadline) {
          timedOut = true;
          return;
        }
        const name = plan[next++] as string;
        const spec = (cases[name] as () => Spec)();
        stats.sent++;
        (stats.byCase[name] ??= { sent: 0, statuses: {}, noResponse: 0 }).sent++;
        const remaining = Math.max(1_000, deadline - Date.now());
        const res = await exchange(socketPath, { ...spec, timeoutMs: Math.min(spec.timeoutMs ?? 15_000, remaining) });
        res.slow = !!spec.slow;
        judge(stats, name, res, !!spec.head);
      }
    };
    await Promise.all(Array.from({ length: opt.concurrency }, worker));
    floodMs = Date.now() - floodStart;
    clearInterval(sampler);

    await new Promise((r) => setTimeout(r, opt.idleS * 1000));
    const r = rssKb(server.pid);
    rss.afterMb = (r.rss ?? 0) / 1024;
    rss.hwmMb = (r.hwm ?? 0) / 1024;
    rss.peakMb = Math.max(rss.peakMb, rss.afterMb);
    aliveAtEnd = alive(server);
    if (aliveAtEnd) {
      const h = await exchange(socketPath, { steps: [httpRequest("POST", "/Plugin.Activate", undefined)], timeoutMs: 5_000 });
      healthyAtEnd = h.responses[0]?.status === 200;
    }
    // Nothing may have been created: no network or endpoint records.
    leftovers = (await readdir(d.state, { recursive: true }).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
  } catch (err) {
    startupError = err instanceof Error ? err.message : String(err);
  } finally {
    await stopServer(child);
    const log = await readFile(logFile, "utf8").catch(() => "");
    const logLines = log.split("\n").filter(Boolean);
    stats.logLines = logLines.length;
    stats.logNonJsonLines = logLines.filter((l) => !l.startsWith("{")).length;
    stats.logStackLines = logLines.filter((l) => /^\s+at /.test(l)).length;
    stats.logTail = logLines.slice(-5);
    await rm(dir, { recursive: true, force: true });
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  const failures = [];
  if (startupError) failures.push(startupError);
  if (interrupted) failures.push("interrupted");
  if (timedOut) failures.push(`--timeout-s ${opt.timeoutS} reached after ${stats.sent} requests`);
  if (!aliveAtEnd) failures.push("the server process died");
  else if (!healthyAtEnd) failures.push("the server no longer answers Plugin.Activate");
  if (stats.nonJson) failures.push(`${stats.nonJson} non-JSON responses`);
  if (stats.noErr) failures.push(`${stats.noErr} non-200 responses without Err`);
  if (stats.wrongContentType) failures.push(`${stats.wrongContentType} responses with another content type than ${CONTENT_TYPE}`);
  if (stats.stackTraces) failures.push(`${stats.stackTraces} responses with a stack trace or HTML`);
  if (rss.afterMb > opt.maxRssMb) failures.push(`RSS after the flood ${rss.afterMb.toFixed(1)} MB > --max-rss-mb ${opt.maxRssMb}`);
  if (leftovers.length) failures.push(`the flood left state records: ${leftovers.join(", ")}`);

  const result = {
    ok: failures.length === 0,
    failures,
    requests: stats.sent,
    responses: stats.responses,
    concurrency: opt.concurrency,
    seed: opt.seed,
    floodSeconds: +(floodMs / 1000).toFixed(1),
    statuses: stats.statuses,
    nonJson: stats.nonJson,
    nonJsonExamples: stats.nonJsonExamples,
    non200WithoutErr: stats.noErr,
    noErrExamples: stats.noErrExamples,
    wrongContentType: stats.wrongContentType,
    stackTraces: stats.stackTraces,
    closedWithoutResponse: stats.closedWithoutResponse,
    connectionErrors: stats.connectionErrors,
    errorsAfterResponse: stats.errorsAfterResponse,
    clientTimeouts: stats.timeouts,
    slowlorisTimeouts: stats.slowTimeouts,
    largestReplyBytes: stats.largestReply.bytes,
    alive: aliveAtEnd,
    rssMb: { before: +rss.beforeMb.toFixed(1), peak: +rss.peakMb.toFixed(1), hwm: +rss.hwmMb.toFixed(1), after: +rss.afterMb.toFixed(1), limit: opt.maxRssMb },
    log: { lines: stats.logLines, nonJsonLines: stats.logNonJsonLines, stackLines: stats.logStackLines },
    fixtures: source,
    wrongTypeCombinations: combos,
  };

  const rows: [string, string][] = [
    ["requests sent", `${stats.sent} (concurrency ${opt.concurrency}, seed ${opt.seed}, ${result.floodSeconds} s)`],
    ["responses by status", Object.entries(stats.statuses).map(([s, n]) => `${s}: ${n}`).join("  ") || "-"],
    ["non-JSON responses", String(stats.nonJson)],
    ["non-200 without Err", String(stats.noErr)],
    ["wrong content type", String(stats.wrongContentType)],
    ["stack trace / HTML", String(stats.stackTraces)],
    ["closed without reply", String(stats.closedWithoutResponse)],
    ["connection errors", Object.entries(stats.connectionErrors).map(([k, n]) => `${k}: ${n}`).join("  ") || "0"],
    ["client timeouts", `${stats.timeouts} (+ ${stats.slowTimeouts} slowloris, expected)`],
    ["largest reply", `${stats.largestReply.bytes} bytes${stats.largestReply.case ? ` (${stats.largestReply.case})` : ""}`],
    ["server alive at end", aliveAtEnd ? (healthyAtEnd ? "yes, answering" : "yes, NOT answering") : "NO"],
    ["RSS before/peak/after", `${rss.beforeMb.toFixed(1)} / ${rss.peakMb.toFixed(1)} (VmHWM ${rss.hwmMb.toFixed(1)}) / ${rss.afterMb.toFixed(1)} MB, limit ${opt.maxRssMb}`],
    ["server log", `${stats.logLines} lines, ${stats.logNonJsonLines} not JSON, ${stats.logStackLines} stack frames`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = [`cni-shim fuzz against ${MAIN_JS}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  out.push("  by case:");
  for (const [name, c] of Object.entries(stats.byCase).sort()) {
    out.push(`    ${name.padEnd(22)} ${String(c.sent).padStart(5)}  ${Object.entries(c.statuses).map(([s, n]) => `${s}:${n}`).join(" ")}${c.noResponse ? `  no reply:${c.noResponse}` : ""}`);
  }
  for (const [title, ex] of [["non-JSON", stats.nonJsonExamples], ["without Err", stats.noErrExamples], ["content type", stats.wrongContentTypeExamples], ["stack trace", stats.stackExamples]] as const) {
    for (const e of ex) out.push(`  example (${title}): ${e}`);
  }
  if (failures.length) {
    out.push("  server log tail:", ...(stats.logTail ?? []).map((l) => `    ${l.slice(0, 300)}`));
    out.push(`FAIL: ${failures.join("; ")}`);
  } else out.push("PASS");
  process.stdout.write(out.join("\n") + "\n");
  process.stdout.write(`FUZZ_RESULT ${JSON.stringify(result)}\n`);
  return failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
