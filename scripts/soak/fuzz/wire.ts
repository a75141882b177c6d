// Raw HTTP/1.1 over the unix socket: requests built byte by byte (so they can be broken), one
// connection per request, and a response parser that reports what it could not parse.
import { createConnection } from "node:net";
import { int } from "./random.js";

export const CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";
export const MB = 1024 * 1024;

export interface RequestOptions {
  headers?: Record<string, string>;
  chunked?: boolean;
  version?: string;
}

export function httpRequest(method: string, path: string, body: string | Buffer | undefined, { headers = {}, chunked = false, version = "1.1" }: RequestOptions = {}): Buffer {
  const lines = [`${method} ${path} HTTP/${version}`, "Host: ", "User-Agent: cni-shim-fuzz", `Accept: ${CONTENT_TYPE}`, "Connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const buf = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  if (chunked) {
    lines.push("Transfer-Encoding: chunked");
    const parts: Buffer[] = [];
    for (let i = 0; i < buf.length; ) {
      const n = Math.min(int(1, 4096), buf.length - i);
      parts.push(Buffer.from(`${n.toString(16)}\r\n`), buf.subarray(i, i + n), Buffer.from("\r\n"));
      i += n;
    }
    parts.push(Buffer.from("0\r\n\r\n"));
    return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), ...parts]);
  }
  if (!("Content-Length" in headers) && (body !== undefined || method === "POST")) lines.push(`Content-Length: ${buf.length}`);
  return Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), buf]);
}

export interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}
export interface Parsed {
  responses: Response[];
  partial: boolean;
  garbage?: string;
}

/** Complete responses at the start of `buf` (1xx interim ones skipped); `rest` when cut short. */
export function parseResponses(buf: Buffer, { head = false, closed = false } = {}): Parsed {
  const out: Response[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf("\r\n\r\n", pos);
    if (end < 0) return { responses: out, partial: true };
    const lines = buf.subarray(pos, end).toString("latin1").split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "");
    if (!m) return { responses: out, partial: true, garbage: buf.subarray(pos, pos + 200).toString("latin1") };
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      pos = bodyStart;
      continue;
    }
    let body: Buffer;
    if (head || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const parts: Buffer[] = [];
      let p = bodyStart;
      for (;;) {
        const eol = buf.indexOf("\r\n", p);
        if (eol < 0) return { responses: out, partial: true };
        const size = parseInt(buf.subarray(p, eol).toString("latin1"), 16);
        if (!Number.isFinite(size)) return { responses: out, partial: true, garbage: "bad chunk size" };
        if (buf.length < eol + 2 + size + 2) return { responses: out, partial: true };
        if (size === 0) {
          bodyStart = eol + 4;
          break;
        }
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        p = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
      out.push({ status, headers, body: body.toString("utf8") });
      pos = bodyStart;
      continue;
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      if (buf.length < bodyStart + n) return { responses: out, partial: true };
      body = buf.subarray(bodyStart, bodyStart + n);
      bodyStart += n;
    } else {
      if (!closed) return { responses: out, partial: true };
      body = buf.subarray(bodyStart);
      bodyStart = buf.length;
    }
    out.push({ status, headers, body: body.toString("utf8") });
    pos = bodyStart;
  }
  return { responses: out, partial: false };
}

/** What goes on the wire: bytes, a pause, or a big body streamed until the server answers. */
export type Step = Buffer | { delayMs: number } | { stream: Buffer; chunked?: boolean };
/** One request of a case. */
export interface Spec {
  steps: Step[];
  expect?: number;
  timeoutMs?: number;
  head?: boolean;
  endAfter?: boolean;
  slow?: boolean;
}
export interface Exchange extends Parsed {
  how: "timeout" | "complete" | "closed";
  error: string | undefined;
  bytes: number;
  slow?: boolean;
}

/**
 * One connection: write `steps` (Buffers, or { delayMs }, or { stream: Buffer, chunkHeader }
 * for big bodies that stop as soon as an answer comes), read until `expect` responses or
 * close, give up after timeoutMs.
 */
export function exchange(socketPath: string, { steps, expect = 1, timeoutMs = 15_000, head = false, endAfter = false }: Spec): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let error: string | undefined;
    let answered = false;
    const finish = (how: Exchange["how"]) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const buf = Buffer.concat(chunks, size);
      const parsed = parseResponses(buf, { head, closed: how !== "timeout" });
      sock.destroy();
      resolve({ how, error, bytes: size, ...parsed });
    };
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    sock.on("data", (d: Buffer) => {
      if (size < 4 * MB) {
        chunks.push(d);
        size += d.length;
      }
      const p = parseResponses(Buffer.concat(chunks, size), { head });
      if (p.responses.length) answered = true;
      if (p.responses.length >= expect) finish("complete");
    });
    sock.on("end", () => finish("closed"));
    sock.on("close", () => finish("closed"));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
      // The server may answer early and close while we are still writing: read what came.
      setTimeout(() => finish("closed"), 50);
    });
    const write = (b: Buffer) => new Promise<void>((res) => (sock.write(b) ? res() : sock.once("drain", res)));
    const send = async () => {
      try {
        for (const step of steps) {
          if (done || sock.destroyed) return;
          if (Buffer.isBuffer(step)) await write(step);
          else if ("delayMs" in step) await new Promise((r) => setTimeout(r, step.delayMs));
          else {
            // Big body in 64 KiB pieces; stop when the server has answered or hung up.
            for (let i = 0; i < step.stream.length && !done && !answered && !sock.destroyed; i += 64 * 1024) {
              const piece = step.stream.subarray(i, i + 64 * 1024);
              await write(step.chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]) : piece);
            }
            if (step.chunked && !done && !answered && !sock.destroyed) await write(Buffer.from("0\r\n\r\n"));
          }
        }
        if (endAfter && !sock.destroyed) sock.end();
      } catch {
        /* reported through 'error' */
      }
    };
    sock.once("connect", () => void send());
  });
}
