// Reachability checks of one column. Traffic goes only to 127.0.0.1 and to the containers this
// compare run created (directly, or through the host's address on their own network).
import { httpGet } from "../util/http.js";
import { PassThrough } from "node:stream";
import type Docker from "dockerode";
import { execExitCode } from "../docker/inspect.js";
import type { Reach } from "./model.js";

/** What the probe container's web server answers (written by the probe's command). */
export const PROBE_PAGE = "cni-shim compare probe";

interface ExecResult {
  exitCode: number | null;
  output: string;
}

/** `docker exec` through the API, bounded by a timeout. */
async function dockerExec(docker: Docker, container: string, cmd: string[], timeoutMs = 15_000): Promise<ExecResult> {
  const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const sink = new PassThrough();
  let output = "";
  sink.on("data", (d: Buffer) => (output += d.toString()));
  docker.modem.demuxStream(stream, sink, sink);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        stream.destroy();
        reject(new Error(`${cmd.join(" ")} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      stream.on("end", resolve);
      stream.on("close", resolve);
      stream.on("error", reject);
    });
  } finally {
    clearTimeout(timer);
  }
  return { exitCode: await execExitCode(exec), output: output.trim() };
}

const short = (s: string) => s.replace(/\s+/g, " ").trim().slice(0, 160);

async function execCheck(docker: Docker, container: string, cmd: string[], expect?: string): Promise<Reach> {
  try {
    const r = await dockerExec(docker, container, cmd, 8_000);
    if (r.exitCode !== 0) return { ok: false, detail: `${cmd.join(" ")}: exit ${r.exitCode}: ${short(r.output) || "no output"}` };
    if (expect && !r.output.includes(expect)) return { ok: false, detail: `${cmd.join(" ")}: unexpected answer "${short(r.output)}"` };
    return { ok: true, detail: `${cmd.join(" ")}: ${short(r.output.split("\n").find((l) => /received|cni-shim/.test(l)) ?? "ok")}` };
  } catch (err) {
    return { ok: false, detail: `${cmd.join(" ")}: ${(err as Error).message}` };
  }
}

export interface ReachTarget {
  probe: string;
  peer: string;
  /** The probe's IPv4 address on the column's network. */
  probeIP: string;
  /** The host's address on that network (the containers' gateway). */
  gateway: string;
  hostPort: number;
  containerPort: number;
}

export async function checkReach(docker: Docker, t: ReachTarget): Promise<Record<string, Reach>> {
  // No -T: busybox-static's wget crashes with it; the exec timeout bounds the wait instead.
  const wget = (host: string, port: number) => ["wget", "-q", "-O", "-", `http://${host}:${port}/`];
  const out: Record<string, Reach> = {};
  out.peerPing = await execCheck(docker, t.peer, ["ping", "-c", "1", "-W", "3", t.probeIP], "1 packets received");
  out.peerHttp = await execCheck(docker, t.peer, wget(t.probeIP, t.containerPort), PROBE_PAGE);
  try {
    const { body } = await httpGet("127.0.0.1", t.hostPort);
    out.hostHttp = body.includes(PROBE_PAGE) ? { ok: true, detail: `GET http://127.0.0.1:${t.hostPort}/: ${short(body)}` } : { ok: false, detail: `GET http://127.0.0.1:${t.hostPort}/: unexpected answer "${short(body)}"` };
  } catch (err) {
    out.hostHttp = { ok: false, detail: `GET http://127.0.0.1:${t.hostPort}/: ${(err as Error).message}` };
  }
  out.peerPublished = await execCheck(docker, t.peer, wget(t.gateway, t.hostPort), PROBE_PAGE);
  out.hairpin = await execCheck(docker, t.probe, wget(t.gateway, t.hostPort), PROBE_PAGE);
  return out;
}
