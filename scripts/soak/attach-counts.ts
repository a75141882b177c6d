// Which attach path a plugin's endpoints took, from its log lines (pure): Joins in the container's
// namespace ("endpoint joined in its sandbox"), Joins whose chain ran there and whose interface
// then went on to Docker (--attach auto on 28+: "endpoint joined" with addedIn "sandbox"), and
// the hand-outs an in-sandbox Join fell back to (no namespace yet; mixed networks).

export interface AttachCounts {
  inSandboxJoins: number;
  handedJoins: number;
  fallbacks: number;
  mixedHandOuts: number;
}

export const noAttachCounts = (): AttachCounts => ({ inSandboxJoins: 0, handedJoins: 0, fallbacks: 0, mixedHandOuts: 0 });

/** Counts one log line into `c`. */
export function countAttach(c: AttachCounts, line: string): void {
  if (line.includes('"endpoint joined in its sandbox"')) c.inSandboxJoins++;
  if (line.includes('"endpoint joined"') && line.includes('"addedIn":"sandbox"')) c.handedJoins++;
  if (line.includes('"no container namespace at Join')) c.fallbacks++;
  if (line.includes('"a container with networks cni-shim does not drive')) c.mixedHandOuts++;
}
