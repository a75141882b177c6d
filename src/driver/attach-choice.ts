// Which attach strategy new endpoints get (--attach). "handoff" and "sandbox" force one; "auto"
// follows what this engine really does at Join, as seen by the Joins themselves:
//   - a Join whose container namespace did not exist yet (Docker <= 27 makes it later): the
//     staging hand-out, for good on this engine version (an in-sandbox endpoint that meets such
//     a Join falls back to the hand-out itself, so a wrong guess costs no container);
//   - Joins that found it, and none that did not: in the container's namespace;
//   - no Join seen yet: the engine's version decides (28 and later have it at Join).
// A `docker network connect` finds the namespace on every engine, so only a missing one is
// conclusive; that is why it wins. What was seen is kept in the state dir per engine version.
// A Join whose key this process cannot look for (a managed plugin without the view of dockerd's
// files: host/sandbox-key.ts) says nothing of the engine: it is not counted as late, and only
// this process takes the hand-out until a Join sees a namespace; the state dir keeps why, for doctor.
import { join } from "node:path";
import { z } from "zod";
import { readFileIfExists, writeFileAtomic } from "../util/fs.js";
import { log } from "../util/log.js";
import type { ConfList } from "../cni/schemas.js";
import type { AttachKind } from "./attach-strategy.js";
import { ipamAhead } from "./chain-addresses.js";
import type { KeysOpened } from "../host/sandbox-key.js";

/** What a Join found at its SandboxKey (host/sandbox-key.ts SandboxSight, less where it opens). */
type JoinSight = { kind: "visible" | "missing" } | { kind: "unseen"; why: string };

/**
 * The path of a network's new endpoints: the engine's (AttachChoice.decide), except on a
 * null-IPAM network whose IPAM cannot take the address ahead (chain-addresses.ts ipamAhead): Docker
 * needs the address in CreateEndpoint's reply, before any container namespace exists, so the
 * chain runs then, in staging (the hand-out).
 */
export function kindForNetwork(engine: AttachKind, chainPicksAddresses: boolean, list: ConfList): AttachKind {
  return chainPicksAddresses && !ipamAhead(list) ? "staging-handoff" : engine;
}

export const ATTACH_MODES = ["auto", "handoff", "sandbox"] as const;
export type AttachMode = (typeof ATTACH_MODES)[number];

/** Joins that could not look for the key (the last one's why), since the last one that saw a namespace. */
const Unseen = z.object({ joins: z.number(), why: z.string(), at: z.string() });
/** How the serving process opens sandbox keys (said at its start: doctor reports it). */
const Opens = z.object({ open: z.boolean(), how: z.string() });
const Seen = z.object({ engine: z.string().optional(), joinsWithNamespace: z.number(), joinsWithout: z.number(), unseen: Unseen.optional(), opens: Opens.optional() });
type Seen = z.infer<typeof Seen>;

export interface AttachDecision {
  mode: AttachMode;
  /** What new endpoints get. */
  kind: AttachKind;
  why: string;
  engine?: string;
  joinsWithNamespace: number;
  joinsWithout: number;
}

const major = (version: string | undefined) => Number(/^(\d+)\./.exec(version ?? "")?.[1] ?? NaN);

export class AttachChoice {
  private seen: Seen = { joinsWithNamespace: 0, joinsWithout: 0 };
  private loaded = false;
  /** Why a Join of this process could not look for its key (cleared by one that saw a namespace). */
  private unseenNow?: string;

  /** `stateDir` undefined: nothing is kept (tests). */
  constructor(
    readonly mode: AttachMode,
    private readonly stateDir?: string,
  ) {}

  private get file() {
    return this.stateDir ? join(this.stateDir, "attach-seen.json") : undefined;
  }

  /** What was seen on this engine before (read once). */
  async load(): Promise<void> {
    if (this.loaded || !this.file) return;
    this.loaded = true;
    const text = await readFileIfExists(this.file);
    const parsed = text ? Seen.safeParse(JSON.parse(text)) : undefined;
    if (parsed?.success) this.seen = parsed.data;
  }

  /** The engine's version (serve asks Docker at start and on Activate); another version starts afresh. */
  async setEngine(version: string | undefined): Promise<void> {
    await this.load();
    if (!version || version === this.seen.engine) return;
    const before = this.seen.engine;
    this.seen = { engine: version, joinsWithNamespace: 0, joinsWithout: 0, ...(this.seen.opens ? { opens: this.seen.opens } : {}) };
    await this.save();
    if (before) log.info("Docker engine changed: what its Joins do is learnt again", { before, now: version });
  }

  /** What a Join found at its SandboxKey (host/sandbox-key.ts). */
  observe(sight: JoinSight): void {
    const before = this.decide().kind;
    const { seen } = this;
    if (sight.kind === "visible") seen.joinsWithNamespace++;
    else if (sight.kind === "missing") seen.joinsWithout++;
    const cleared = sight.kind === "visible" && !!seen.unseen;
    if (sight.kind === "unseen") {
      const { why } = sight;
      seen.unseen = { joins: (seen.unseen?.joins ?? 0) + 1, why, at: new Date().toISOString() };
      if (!this.unseenNow) log.warn("a Join could not look for the container's namespace: new endpoints take the staging hand-out until one can (the engine is not taken for one that makes it late)", { why });
      this.unseenNow = why;
    } else if (sight.kind === "visible") {
      this.unseenNow = undefined;
      seen.unseen = undefined;
    }
    const after = this.decide();
    // Kept when it matters: the first of each kind, each unseen one (doctor says why), and the end of those.
    const first = sight.kind === "visible" ? seen.joinsWithNamespace === 1 : sight.kind === "missing" ? seen.joinsWithout === 1 : true;
    if (first || cleared) void this.save();
    if (after.kind !== before) log.info("attach path changed", { ...after });
  }

  /** How this process opens sandbox keys (serve, at its start). */
  async setOpens(opens: KeysOpened): Promise<void> {
    await this.load();
    // Joins will not see namespaces: the hand-out from the start (a Join that sees one undoes it).
    if (!opens.open) this.unseenNow = opens.how;
    if (this.seen.opens?.open === opens.open && this.seen.opens.how === opens.how) return;
    this.seen.opens = opens;
    await this.save();
  }

  /** What a serving cni-shim kept of its sandbox keys (doctor): how it opens them, and Joins that could not look for theirs. */
  async sandboxKeys(): Promise<Pick<Seen, "opens" | "unseen">> {
    await this.load();
    return { opens: this.seen.opens, unseen: this.seen.unseen };
  }

  /** What `decide` would say on an engine of this version, changing nothing (doctor). */
  async peek(version: string | undefined): Promise<AttachDecision> {
    await this.load();
    if (!version || version === this.seen.engine) return this.decide();
    return this.decide({ engine: version, joinsWithNamespace: 0, joinsWithout: 0 });
  }

  decide(seen: Seen = this.seen, unseenNow = this.unseenNow): AttachDecision {
    const { engine, joinsWithNamespace, joinsWithout } = seen;
    const out = (kind: AttachKind, why: string): AttachDecision => ({ mode: this.mode, kind, why, engine, joinsWithNamespace, joinsWithout });
    if (this.mode === "handoff") return out("staging-handoff", "forced by --attach handoff");
    if (this.mode === "sandbox") return out("in-sandbox", "forced by --attach sandbox");
    if (joinsWithout > 0) return out("staging-handoff", `a Join on this engine came before the container's namespace existed (${joinsWithout} of ${joinsWithout + joinsWithNamespace})`);
    if (unseenNow) return out("staging-handoff", `this process cannot look for containers' namespaces (${unseenNow}); the hand-out until a Join can, not kept as the engine's way`);
    if (joinsWithNamespace > 0) return out("in-sandbox", `every Join on this engine found the container's namespace (${joinsWithNamespace})`);
    if (major(engine) >= 28) return out("in-sandbox", `no Join seen yet; Docker ${engine} makes the namespace before Join`);
    return out("staging-handoff", engine ? `no Join seen yet; Docker ${engine} makes the namespace after Join` : "no Join seen yet and the engine's version is unknown");
  }

  private async save(): Promise<void> {
    if (!this.file) return;
    await writeFileAtomic(this.file, JSON.stringify(this.seen)).catch((err: Error) => log.warn("could not keep what Joins did", { error: err.message }));
  }
}
