import type { z } from "zod";

/** "field.path: message; other.field: message" - names every bad field in one line. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.map(String).join(".") : "(top level)";
      return `${path}: ${issue.message}`;
    })
    .join("; ");
}

/**
 * What another program gave us (a tool's JSON, an API reply), checked against `schema`: a
 * change on their side is an error naming `source` and the field, not a TypeError further on.
 */
export function checked<T extends z.ZodType>(source: string, schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${source}: unexpected output: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** A tool's JSON output, checked; no output at all is an empty list (older iproute2 prints nothing for one). */
export function parseToolJson<T extends z.ZodType>(tool: string, schema: T, out: string): z.output<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(out || "[]");
  } catch (err) {
    throw new Error(`${tool}: printed no JSON (${(err as Error).message}): ${out.slice(0, 200)}`, { cause: err });
  }
  return checked(tool, schema, raw);
}
