// The request bodies the fuzzer mutates (Docker's captured requests, or built-in copies of their
// shapes), the wrong values and bad options it puts in them, and the defanging that keeps every
// CreateNetwork from reaching CNI.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pick } from "./random.js";

// dist/scripts/soak/fuzz/bodies.js: the repository is four levels up.
const REPO = fileURLToPath(new URL("../../../../", import.meta.url));
const FIXTURE_DIRS = [join(REPO, "../shared/fixtures/libnetwork-20.10")];

/** A request body: whatever JSON the fixtures hold, mutated at will. */
export type Body = unknown;
export type JsonObject = Record<string, unknown>;
/** Call path -> the bodies to mutate. */
export type Bodies = Record<string, Body[]>;

export const NET_ID = "81a8d9bec29ac03a2312528635b8dd0415c3aa252fa7bbb4b6384aac5c0f64fb";
const EP_ID = "fe6a48ea14a4f8fb944114527c28971beb6915d70a049879eb8bb0f2e8553f8a";
export const EMPTY_CALLS = [
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
export function loadBodies(): { bodies: Bodies; source: string } {
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

export const WRONG_VALUES: unknown[] = [
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
export function paths(value: unknown, prefix: string[] = []): string[][] {
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
export function setPath(obj: JsonObject, path: string[], value: unknown) {
  let cur = obj;
  for (const key of path.slice(0, -1)) cur = cur[key] as JsonObject;
  const last = path.at(-1) ?? "";
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}

export const isPlainObject = (v: unknown): v is JsonObject => v !== null && typeof v === "object" && !Array.isArray(v);

// Options cni-shim must refuse; each on its own makes CreateNetwork fail before any CNI work.
export const BAD_OPTIONS: JsonObject[] = [
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
export function defangCreateNetwork(body: Body, badOptions = pick(BAD_OPTIONS)): Body {
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
