// What a chain sets for the whole namespace rather than the interface (pure).
import type { ConfList } from "../cni/schemas.js";

/** Settings a chain applies to the whole (staging) namespace; they cannot follow the interface. */
export function namespaceWideSettings(list: ConfList): string[] {
  const out: string[] = [];
  for (const p of list.plugins) {
    const sysctl = (p as { sysctl?: Record<string, unknown> }).sysctl;
    if (sysctl && typeof sysctl === "object") {
      for (const key of Object.keys(sysctl)) out.push(`${p.type} sysctl ${key}`);
    }
  }
  return out;
}
