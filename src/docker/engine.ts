// The engine's version, asked with one bounded GET (the plugin does not load dockerode).
import { z } from "zod";
import { unixRequest } from "../util/http.js";

const Version = z.object({ Version: z.string(), ApiVersion: z.string().optional() }).passthrough();

/** Docker's version on `socket`, or undefined when it does not answer (yet). */
export async function dockerVersion(socket: string, timeoutMs = 5_000): Promise<string | undefined> {
  try {
    const res = await unixRequest(socket, "GET", "/version", timeoutMs);
    if (res.status !== 200) return undefined;
    const parsed = Version.safeParse(JSON.parse(res.body));
    return parsed.success ? parsed.data.Version : undefined;
  } catch {
    return undefined;
  }
}
