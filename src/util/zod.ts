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
