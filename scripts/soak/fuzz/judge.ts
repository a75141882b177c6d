// What each reply is held to: JSON, the plugin content type, an Err on failure, no stack trace.
import { CONTENT_TYPE, type Exchange } from "./wire.js";
import type { JsonObject } from "./bodies.js";

const STACK_RE = /(^|\n|\\n)\s*at \S[^\n]*:\d+:\d+|node:internal|<html|<pre>|<!DOCTYPE/i;

type Counter = "nonJson" | "wrongContentType" | "noErr" | "stackTraces";
interface CaseStats {
  sent: number;
  statuses: Record<number, number>;
  noResponse: number;
}
export interface Stats extends Record<Counter, number> {
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

export function judge(stats: Stats, caseName: string, res: Exchange, head: boolean) {
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
