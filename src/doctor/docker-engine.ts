// What the Docker engine's version means for cni-shim (pure, from GET /version's Version and
// ApiVersion). Docker 20.10 to 27 calls Join before the container's network namespace exists,
// so cni-shim runs the chain in a staging namespace and hands the interface over; Docker 28
// creates the namespace first, so it exists at Join and the chain can run in it (the attach
// check says which path is in use). Older engines are not tested. Tested side by side: 20.10,
// 26.1, 28.5.
import { pass, problem, type CheckResult } from "./results.js";

type JoinNetns = "absent" | "present";

interface Era {
  /** Engines from this release on; the list is ordered newest first. */
  since: [number, number];
  /** API versions (1.x) from this one on. */
  sinceApi: number;
  joinNetns: JoinNetns;
  meaning: string;
}

const ERAS: Era[] = [
  {
    since: [28, 0],
    sinceApi: 48,
    joinNetns: "present",
    meaning: "the container's network namespace exists at Join, so cni-shim can run the chain in it, as a kubelet does (the in-sandbox path; see the attach check)",
  },
  {
    since: [20, 10],
    sinceApi: 41,
    joinNetns: "absent",
    meaning: "the container's network namespace does not exist yet at Join, so cni-shim runs the chain in a staging namespace and hands the interface over",
  },
];

/** "20.10.24+dfsg1", "v28.5.2", "26.1.5-ce" -> [major, minor]; undefined for anything else. */
export function parseEngineVersion(version: unknown): [number, number] | undefined {
  const m = typeof version === "string" ? /^v?(\d+)\.(\d+)(?:[.+~-]|$)/.exec(version.trim()) : null;
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** "1.41" -> 41 (every Engine API version is 1.x); undefined for anything else. */
export function parseApiVersion(apiVersion: unknown): number | undefined {
  const m = typeof apiVersion === "string" ? /^1\.(\d+)$/.exec(apiVersion.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

const atLeast = (v: [number, number], since: [number, number]) => v[0] > since[0] || (v[0] === since[0] && v[1] >= since[1]);

/**
 * The doctor's "docker" check once Docker answered on `socket`: which Join behaviour its version
 * means for cni-shim. A version string that does not parse (a distribution's own) is judged by
 * the API version; when neither parses, or the engine is older than 20.10, it warns.
 */
export function dockerEngineCheck(version: unknown, apiVersion: unknown, socket: string): CheckResult {
  const engine = parseEngineVersion(version);
  const api = parseApiVersion(apiVersion);
  const shown = `Docker ${typeof version === "string" && version ? version : "(no version)"} (API ${typeof apiVersion === "string" && apiVersion ? apiVersion : "unknown"})`;
  const details: Record<string, unknown> = { socket, version, apiVersion };
  const era = engine ? ERAS.find((e) => atLeast(engine, e.since)) : api !== undefined ? ERAS.find((e) => api >= e.sinceApi) : undefined;
  if (era) {
    const judged = engine ? "" : ` (judged by its API version: the engine version does not parse)`;
    return pass("cni-shim", "docker", `${shown} answers on ${socket}${judged}: ${era.meaning}`, { ...details, joinNetns: era.joinNetns });
  }
  if (engine || api !== undefined) {
    return problem(
      "warn",
      "cni-shim",
      "docker",
      `${shown} answers on ${socket}, but it is older than Docker 20.10: cni-shim is not tested with it`,
      "use Docker 20.10 or later (cni-shim is tested with 20.10, 26.1 and 28.5), or point --docker-socket at a newer engine",
      details,
    );
  }
  return problem(
    "warn",
    "cni-shim",
    "docker",
    `${shown} answers on ${socket}, but its version does not parse: whether the container's network namespace exists at Join is unknown`,
    "check `docker version` on this engine; cni-shim is tested with Docker 20.10, 26.1 and 28.5",
    details,
  );
}
