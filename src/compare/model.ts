// The data of `cni-shim compare`: what is collected per column (facts) and the report built from
// it (rows). Both are zod schemas so --json output is a documented, checkable format.
import { z } from "zod";
import { KernelRoute } from "../host/routes.js";

/** The three ways the same image is started, in column order. */
export const COLUMN_IDS = ["bridge", "cnishim", "attach"] as const;
export const ColumnId = z.enum(COLUMN_IDS);
export type ColumnId = z.infer<typeof ColumnId>;

export const Address = z.object({ family: z.enum(["inet", "inet6"]), cidr: z.string(), scope: z.string().optional() });
export type Address = z.infer<typeof Address>;

export const Link = z.object({
  name: z.string(),
  ifindex: z.number(),
  mtu: z.number(),
  mac: z.string().optional(),
  flags: z.array(z.string()),
  kind: z.string().optional(),
  /** ifindex of the veth peer (in the host namespace for all three columns). */
  peerIndex: z.number().optional(),
  addrs: z.array(Address),
});
export type Link = z.infer<typeof Link>;

/** A route as `ip -j route` prints it (the same wire type the driver reads in staging). */
export const Route = KernelRoute.pick({ dst: true, gateway: true, dev: true, protocol: true, scope: true, prefsrc: true, metric: true });
export type Route = z.infer<typeof Route>;

export const Reach = z.object({ ok: z.boolean(), detail: z.string() });
export type Reach = z.infer<typeof Reach>;

/** Everything collected about one column's probe container (no interpretation yet). */
export const ColumnFacts = z.object({
  column: ColumnId,
  container: z.object({ id: z.string(), name: z.string(), pid: z.number() }),
  peer: z.object({ id: z.string(), name: z.string() }),
  /** CNI_CONTAINERID of the attachment: the endpoint id (cni-shim) or the container id (attach). */
  cniContainerId: z.string().optional(),
  /** The column's network: subnet, gateway and bridge as configured (Docker's IPAM or the conflist). */
  network: z.object({ name: z.string(), subnet: z.string(), gateway: z.string(), bridge: z.string().optional() }),
  publish: z.object({ hostPort: z.number(), containerPort: z.number(), protocol: z.string() }),
  /** The CNI network list the column ran (none for Docker's bridge), with a content fingerprint. */
  cni: z.object({ network: z.string(), fingerprint: z.string() }).optional(),
  inside: z.object({
    links: z.array(Link),
    routes4: z.array(Route),
    routes6: z.array(Route),
    /** IPv4 policy rules (`ip rule`), e.g. sbr's "from <address> lookup 100". */
    rules4: z.array(z.object({ priority: z.number(), src: z.string().optional(), table: z.string() })).optional(),
    /** IPv4 routes of tables other than main and local, by table. */
    tables4: z.record(z.string(), z.array(Route)).optional(),
    resolvConf: z.string(),
    hosts: z.string(),
    sysctls: z.record(z.string(), z.string()),
  }),
  host: z.object({
    veth: z
      .object({
        name: z.string(),
        ifindex: z.number(),
        mtu: z.number(),
        master: z.string().optional(),
        hairpin: z.boolean().optional(),
        /** Root qdiscs on the host side (bandwidth's tbf), "kind param=value ...". */
        qdiscs: z.array(z.string()).optional(),
        /** Bridge VLANs of the port ("10 PVID untagged"). */
        vlans: z.array(z.string()).optional(),
      })
      .nullable(),
    bridge: z.object({ name: z.string(), mtu: z.number(), addrs: z.array(z.string()), flags: z.array(z.string()).optional(), vlanFiltering: z.boolean().optional() }).nullable(),
    /** iptables-save lines that concern this container, "table: -A CHAIN ...". */
    rules: z.array(z.string()),
    /** Processes listening on the published host port (e.g. docker-proxy). */
    listeners: z.array(z.string()),
  }),
  docker: z.object({
    networkMode: z.string(),
    network: z.string().optional(),
    ip: z.string().optional(),
    prefixLen: z.number().optional(),
    mac: z.string().optional(),
    gateway: z.string().optional(),
    endpointId: z.string().optional(),
    /** NetworkSettings.Ports as Docker reports it (what `docker port` prints). */
    ports: z.record(z.string(), z.array(z.object({ HostIp: z.string(), HostPort: z.string() })).nullable()),
    gwbridge: z.boolean(),
  }),
  reach: z.record(z.string(), Reach),
});
export type ColumnFacts = z.infer<typeof ColumnFacts>;

export const SECTIONS = ["inside", "host", "docker", "reach"] as const;
export const Section = z.enum(SECTIONS);
export type Section = z.infer<typeof Section>;
export const SECTION_TITLES: Record<Section, string> = {
  inside: "Inside the container",
  host: "Host side",
  docker: "Docker's view",
  reach: "Reachability",
};

/** One cell: lines joined with "\n"; null when the fact does not apply to the column. */
export const Cell = z.string().nullable();
export type Cell = z.infer<typeof Cell>;

export const Row = z.object({
  key: z.string(),
  section: Section,
  label: z.string(),
  /** Parity rows must be equal in the cni-shim and attach columns. */
  parity: z.boolean(),
  values: z.tuple([Cell, Cell, Cell]),
  /** Not all three columns show the same value. */
  differs: z.boolean(),
  /** Parity rows only: false when cni-shim and attach disagree. */
  parityOk: z.boolean(),
  /** One line on why the values differ (when they do). */
  note: z.string().optional(),
});
export type Row = z.infer<typeof Row>;

const ColumnInfo = z.object({
  id: ColumnId,
  title: z.string(),
  how: z.string(),
  facts: ColumnFacts,
});

export const Report = z.object({
  tool: z.literal("cni-shim compare"),
  formatVersion: z.literal(1),
  createdAt: z.string(),
  image: z.string(),
  conflist: z.object({
    name: z.string(),
    source: z.string(),
    /** "embedded-default": the embedded template as cni-shim instantiates it; "named": --conflist. */
    mode: z.enum(["embedded-default", "named"]),
    subnet: z.string(),
    gateway: z.string(),
    bridge: z.string().optional(),
  }),
  /** attach: the path new endpoints take (known when compare serves the driver itself). */
  driver: z.object({ name: z.string(), inProcess: z.boolean(), attach: z.enum(["staging-handoff", "in-sandbox"]).optional() }),
  columns: z.tuple([ColumnInfo, ColumnInfo, ColumnInfo]),
  rows: z.array(Row),
  parity: z.object({
    ok: z.boolean(),
    checked: z.number(),
    failures: z.array(z.object({ key: z.string(), label: z.string(), cnishim: Cell, attach: Cell })),
  }),
  /** The one-line explanations of the differences that matter, in row order. */
  notes: z.array(z.string()),
});
export type Report = z.infer<typeof Report>;
