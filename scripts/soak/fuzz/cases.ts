// The fuzzer's cases: each makes one request (or one connection's worth of bytes) of a kind.
// None can create anything: endpoints name networks that do not exist and every CreateNetwork
// is defanged (a bad option or no pool).
import { BAD_OPTIONS, EMPTY_CALLS, NET_ID, defangCreateNetwork, isPlainObject, paths, setPath, WRONG_VALUES, type Bodies, type Body, type JsonObject } from "./bodies.js";
import { hex, int, pick, random, randomBuffer } from "./random.js";
import { httpRequest, MB, type RequestOptions, type Spec } from "./wire.js";

type Cases = Record<string, () => Spec>;
interface Combo {
  path: string;
  bi: number;
  p: string[];
  v: unknown;
}
/** What the cases draw from: the calls, their bodies, the next wrong-type combination, a 20 MB body. */
interface Context {
  calls: string[];
  bodiesOf: (path: string) => Body[];
  bodyFor: (path: string) => Body;
  /** A body of a call with a JSON object body (CreateNetwork's: always one). */
  objectFor: (path: string) => JsonObject;
  safe: (path: string, body: Body) => Body;
  nextCombo: () => Combo | undefined;
  big: Buffer;
}

const post = (path: string, body: string | Buffer | undefined, opts?: RequestOptions) => httpRequest("POST", path, body, opts);
const json = (v: unknown) => JSON.stringify(v) + "\n";

/** Every (call, field, wrong value) once before any repeats: wrong types for every field. */
function combinations(bodies: Bodies): Combo[] {
  const combos: Combo[] = [];
  for (const path of Object.keys(bodies)) {
    for (const [bi, base] of (bodies[path] ?? []).entries()) {
      for (const p of [...paths(base), ["NetworkID"], ["EndpointID"], ["Options"], ["Interface"], ["SandboxKey"]]) {
        for (const v of [...WRONG_VALUES, undefined]) combos.push({ path, bi, p, v });
      }
    }
  }
  return combos;
}

/** Well-formed HTTP, bodies of the wrong shape or none at all. */
const bodyCases = (x: Context): Cases => ({
  // Every field of every call set to a wrong type (or removed), one combination at a time.
  wrongType: () => {
    const c = x.nextCombo();
    if (!c) return { steps: [post("/Plugin.Activate", undefined)] }; // no bodies at all (never: EMPTY_CALLS)
    const body = structuredClone(x.bodiesOf(c.path)[c.bi]);
    if (!isPlainObject(body)) return { steps: [post(c.path, json(body))] };
    try {
      setPath(body, c.p, c.v);
    } catch {
      body[c.p[0] ?? ""] = c.v; // the parent was not an object in this base body
    }
    return { steps: [post(c.path, json(x.safe(c.path, body)))] };
  },
  validShapeBadOptions: () => {
    const body = x.objectFor("/NetworkDriver.CreateNetwork");
    body.Options ??= {};
    (body.Options as JsonObject)["com.docker.network.generic"] = { ...pick(BAD_OPTIONS), "com.example.x": "1" };
    return { steps: [post("/NetworkDriver.CreateNetwork", json(body))] };
  },
  genericWrongType: () => {
    const body = x.objectFor("/NetworkDriver.CreateNetwork");
    body.Options = { ...(body.Options ?? {}), "com.docker.network.generic": pick<unknown>(["x", 1, [], null, true, [["cni.network", ""]]]) };
    return { steps: [post("/NetworkDriver.CreateNetwork", json(defangCreateNetwork(body)))] };
  },
  // Calls Docker makes for endpoints, on networks that do not exist: never reaches CNI.
  unknownIds: () => {
    const path = pick(x.calls.filter((c) => c.startsWith("/NetworkDriver.") && c !== "/NetworkDriver.CreateNetwork"));
    const body = x.bodyFor(path);
    if (isPlainObject(body)) {
      if ("NetworkID" in body) body.NetworkID = hex(64);
      if ("EndpointID" in body) body.EndpointID = hex(64);
    }
    return { steps: [post(path, json(body))] };
  },
  randomBody: () => ({ steps: [post(pick(x.calls), randomBuffer(int(1, 8192)))] }),
  randomConnection: () => ({ steps: [randomBuffer(int(1, 4096))], endAfter: true }),
  truncatedJson: () => {
    const path = pick(x.calls);
    const text = json(x.safe(path, x.bodyFor(path)));
    return { steps: [post(path, text.slice(0, int(0, Math.max(0, text.length - 2))))] };
  },
});

/** JSON that is deep, huge, wide or of the wrong type. */
const jsonCases = (x: Context): Cases => ({
  deepNesting: () => {
    const depth = int(1_000, 300_000);
    const [open, close] = pick([["[", "]"], ['{"a":', "}"]] as const);
    const inner = open.repeat(depth) + "1" + close.repeat(random() < 0.5 ? depth : int(0, depth));
    const path = pick(x.calls);
    // Nested where the schema does not look (Options) or at the top level.
    const text = random() < 0.5 ? inner : `{"NetworkID":"${NET_ID}","EndpointID":"${hex(64)}","Options":{"com.docker.network.generic":{"cni.mtu":"x","deep":${inner}}}}`;
    return { steps: [post(path, text)] };
  },
  hugeString: () => {
    const path = pick(x.calls);
    const body = x.safe(path, x.bodyFor(path));
    const s = pick(["a", "é", "0", "\\u0000", "💥"]).repeat(int(10_000, 250_000));
    const field = pick(["NetworkID", "EndpointID", "SandboxKey", "Options", "x"]);
    const text = json(isPlainObject(body) ? { ...body, [field]: "S" } : body).replace('"S"', `"${s}"`);
    return { steps: [post(path, text)] };
  },
  hugeKey: () => {
    const path = pick(x.calls);
    const key = "k".repeat(int(10_000, 200_000));
    return { steps: [post(path, `{"NetworkID":"${NET_ID}","IPv4Data":[{"Pool":"10.0.0.0/8","AuxAddresses":{"${key}":"nope"}}],"Options":{"com.docker.network.generic":{"cni.mtu":"x"}}}`)] };
  },
  manyKeys: () => {
    const n = int(1_000, 60_000);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`"k${i}":${i}`);
    return { steps: [post(pick(x.calls), `{${parts.join(",")}}`)] };
  },
  // Thousands of invalid items: one validation issue each.
  manyIssues: () => {
    const n = int(1_000, 80_000);
    const item = pick(['{"Pool":"x"}', "{}", "1", '{"Pool":"10.0.0.0/8","Gateway":"y"}']);
    const field = pick(["IPv4Data", "IPv6Data"]);
    return { steps: [post("/NetworkDriver.CreateNetwork", `{"NetworkID":"${NET_ID}","${field}":[${Array(n).fill(item).join(",")}]}`)] };
  },
  wrongJsonType: () => ({ steps: [post(pick(x.calls), pick(["[]", "null", "1", '"x"', "true", "[{}]", '""', "{}{}", "\ufeff{}", "{} x", "NaN"]))] }),
});

/** Unknown paths, other methods, broken request lines and headers. */
const requestLineCases = (x: Context): Cases => ({
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
    return { steps: [httpRequest(method, pick(x.calls), method === "GET" || method === "HEAD" ? undefined : "{}\n")], head: method === "HEAD" };
  },
  badMethod: () => ({ steps: [Buffer.from(`${pick(["FOO", "get", "P0ST", "POST\u0000", "PRI"])} /Plugin.Activate HTTP/1.1\r\nHost: \r\nContent-Length: 0\r\n\r\n`)], endAfter: true }),
  garbageLine: () => ({ steps: [Buffer.from(pick(["GARBAGE\r\n\r\n", "\r\n\r\n\r\n", "POST\r\n\r\n", "POST /Plugin.Activate HTTP/9.9\r\n\r\n", "POST /Plugin.Activate\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000"]))], endAfter: true }),
  badHeaders: () => {
    const path = pick(x.calls);
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
});

/** Content headers, chunked, pipelined, HTTP/1.0, big, slow and cut-off bodies. */
const transferCases = (x: Context): Cases => ({
  contentHeaders: () => {
    const path = pick(x.calls);
    const body = json(x.safe(path, x.bodyFor(path)));
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
    const path = pick(x.calls);
    return { steps: [post(path, json(x.safe(path, x.bodyFor(path))), { chunked: true })] };
  },
  pipelined: () => {
    const path = pick(x.calls);
    const one = (p: string) => Buffer.from(httpRequest("POST", p, json(x.safe(p, x.bodyFor(p)))).toString("latin1").replace("Connection: close\r\n", ""), "latin1");
    return { steps: [Buffer.concat([one(path), one(pick(x.calls)), httpRequest("POST", pick(x.calls), "{}\n")])], expect: 3 };
  },
  http10: () => ({ steps: [httpRequest("POST", pick(x.calls), "{}\n", { version: "1.0" })] }),
  bigDeclared: () => ({
    steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\nConnection: close\r\nContent-Length: ${pick([x.big.length, 1024 * MB, 1 * MB + 1])}\r\n\r\n`), { stream: x.big }],
    timeoutMs: 30_000,
  }),
  bigChunked: () => ({
    steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`), { stream: x.big, chunked: true }],
    timeoutMs: 30_000,
  }),
  // Slowloris: half a request, then silence until we give up.
  slowHeaders: () => ({ steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\n`), { delayMs: 500 }, Buffer.from("X-Slow: 1\r\n")], timeoutMs: 2_000, slow: true }),
  slowBody: () => ({ steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\nContent-Length: 1000\r\n\r\n{"Netw`)], timeoutMs: 2_000, slow: true }),
  slowChunked: () => ({ steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"Net\r\n`)], timeoutMs: 2_000, slow: true }),
  // Waits out the server's own headers timeout (10 s): its 408 must be JSON too.
  slowPatient: () => ({ steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\n`)], timeoutMs: 20_000, slow: true }),
  abortMidBody: () => ({ steps: [Buffer.from(`POST ${pick(x.calls)} HTTP/1.1\r\nHost: \r\nContent-Length: 5000\r\n\r\n{"NetworkID":`)], endAfter: true }),
  valid: () => ({ steps: [post(pick(EMPTY_CALLS.filter((c) => c !== "/CniShim.Reconcile")), random() < 0.5 ? undefined : "\n")] }),
});

export function buildCases(bodies: Bodies): { cases: Cases; combos: number } {
  const bodiesOf = (path: string) => bodies[path] ?? [];
  const bodyFor = (path: string) => structuredClone(pick(bodiesOf(path)));
  const combos = combinations(bodies);
  let comboIndex = 0;
  const big = Buffer.alloc(20 * MB, "a");
  big.write('{"NetworkID":"');
  const x: Context = {
    calls: Object.keys(bodies),
    bodiesOf,
    bodyFor,
    objectFor: (path) => {
      const body = bodyFor(path);
      return isPlainObject(body) ? body : {};
    },
    safe: (path, body) => (path === "/NetworkDriver.CreateNetwork" ? defangCreateNetwork(body) : body),
    nextCombo: () => combos[comboIndex++ % combos.length],
    big,
  };
  return { cases: { ...bodyCases(x), ...jsonCases(x), ...requestLineCases(x), ...transferCases(x) }, combos: combos.length };
}
