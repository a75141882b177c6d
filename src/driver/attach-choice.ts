// Which attach strategy new endpoints get (--attach). "handoff" and "sandbox" force one; "auto"
// follows what this engine really does at Join, as seen by the Joins themselves:
//   - a Join whose container namespace did not exist yet (Docker <= 27 makes it later): the
//     staging hand-out, for good on this engine version (an in-sandbox endpoint that meets such
//     a Join falls back to the hand-out itself, so a wrong guess costs no container);
//   - Joins that found it, and none that did not: in the container's namespace;
//   - no Join seen yet: the engine's version decides (28 and later have it at Join).
// A `docker network connect` finds the namespace on every engine, so only a missing one is
// conclusive; that is why it wins. What was seen is kept in the state dir per engine version.
import { join } from "node:path";
import { z } from "zod";
import { readFileIfExists, writeFileAtomic } from "../util/fs.js";
import { log } from "../util/log.js";
import type { ConfList } from "../cni/schemas.js";
import type { AttachKind } from "./attach-strategy.js";
import { ipamAhead } from "./chain-addresses.js";

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

const Seen = z.object({ engine: z.string().optional(), joinsWithNamespace: z.number(), joinsWithout: z.number() });
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
    this.seen = { engine: version, joinsWithNamespace: 0, joinsWithout: 0 };
    await this.save();
    if (before) log.info("Docker engine changed: what its Joins do is learnt again", { before, now: version });
  }

  /** A Join found the container's namespace, or did not. */
  observe(namespaceAtJoin: boolean): void {
    const before = this.decide().kind;
    if (namespaceAtJoin) this.seen.joinsWithNamespace++;
    else this.seen.joinsWithout++;
    const after = this.decide();
    // Kept when it matters: the first of each kind.
    if ((namespaceAtJoin ? this.seen.joinsWithNamespace : this.seen.joinsWithout) === 1) void this.save();
    if (after.kind !== before) log.info("attach path changed", { ...after });
  }

  /** What `decide` would say on an engine of this version, changing nothing (doctor). */
  async peek(version: string | undefined): Promise<AttachDecision> {
    await this.load();
    if (!version || version === this.seen.engine) return this.decide();
    return this.decide({ engine: version, joinsWithNamespace: 0, joinsWithout: 0 });
  }

  decide(seen: Seen = this.seen): AttachDecision {
    const { engine, joinsWithNamespace, joinsWithout } = seen;
    const out = (kind: AttachKind, why: string): AttachDecision => ({ mode: this.mode, kind, why, engine, joinsWithNamespace, joinsWithout });
    if (this.mode === "handoff") return out("staging-handoff", "forced by --attach handoff");
    if (this.mode === "sandbox") return out("in-sandbox", "forced by --attach sandbox");
    if (joinsWithout > 0) return out("staging-handoff", `a Join on this engine came before the container's namespace existed (${joinsWithout} of ${joinsWithout + joinsWithNamespace})`);
    if (joinsWithNamespace > 0) return out("in-sandbox", `every Join on this engine found the container's namespace (${joinsWithNamespace})`);
    if (major(engine) >= 28) return out("in-sandbox", `no Join seen yet; Docker ${engine} makes the namespace before Join`);
    return out("staging-handoff", engine ? `no Join seen yet; Docker ${engine} makes the namespace after Join` : "no Join seen yet and the engine's version is unknown");
  }

  private async save(): Promise<void> {
    if (!this.file) return;
    await writeFileAtomic(this.file, JSON.stringify(this.seen)).catch((err: Error) => log.warn("could not keep what Joins did", { error: err.message }));
  }
}
