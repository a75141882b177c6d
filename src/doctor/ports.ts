// Which TCP ports are listening, from /proc/net/tcp and /proc/net/tcp6. Those files describe the
// network namespace of the process reading them, so `ip netns exec NS cni-shim doctor` checks
// NS. The process behind a socket is found through /proc/<pid>/fd (best effort).
import { readdir, readFile, readlink } from "node:fs/promises";
import { endianness } from "node:os";
import { join } from "node:path";
import { canonicalIP } from "../util/ip.js";

/** st value of a listening socket in /proc/net/tcp (include/net/tcp_states.h: TCP_LISTEN). */
export const TCP_LISTEN = 0x0a;

export interface TcpSocket {
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: number;
  uid: number;
  inode: number;
}

interface ProcessInfo {
  pid: number;
  /** /proc/<pid>/comm */
  name: string;
  /** /proc/<pid>/cmdline with spaces */
  cmdline: string;
}

export interface Listener {
  family: 4 | 6;
  address: string;
  port: number;
  inode: number;
  /** Processes holding the socket (empty when none is visible, e.g. another pid namespace). */
  processes: ProcessInfo[];
}

/**
 * A /proc/net/tcp{,6} address: hex of the kernel's in-memory bytes, in 32-bit words of host
 * byte order ("0100007F" is 127.0.0.1 on a little-endian machine).
 */
export function parseHexAddress(hex: string, littleEndian = endianness() === "LE"): string {
  if (!/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) throw new Error(`not a /proc/net/tcp address: "${hex}"`);
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // IPv4-mapped addresses (::ffff:a.b.c.d) read better the way ss prints them.
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") return `::ffff:${bytes.slice(12).join(".")}`;
  return canonicalIP(groups.join(":")) ?? groups.join(":");
}

function parseEndpoint(text: string, littleEndian?: boolean): { address: string; port: number } {
  const [hex, port] = text.split(":");
  if (!hex || !port) throw new Error(`not a /proc/net/tcp endpoint: "${text}"`);
  return { address: parseHexAddress(hex, littleEndian), port: parseInt(port, 16) };
}

/** Every socket line of /proc/net/tcp or /proc/net/tcp6 (the header line is skipped). */
export function parseProcNetTcp(text: string, family: 4 | 6, littleEndian?: boolean): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0]!)) continue;
    const local = parseEndpoint(f[1]!, littleEndian);
    const remote = parseEndpoint(f[2]!, littleEndian);
    out.push({
      family,
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
      state: parseInt(f[3]!, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return ""; // e.g. no IPv6 in this kernel
    throw err;
  }
}

/** The listening TCP sockets of the current network namespace. */
async function tcpListeners(procRoot = "/proc"): Promise<Array<Omit<Listener, "processes">>> {
  const sockets = [
    ...parseProcNetTcp(await readOptional(join(procRoot, "net/tcp")), 4),
    ...parseProcNetTcp(await readOptional(join(procRoot, "net/tcp6")), 6),
  ];
  return sockets.filter((s) => s.state === TCP_LISTEN).map((s) => ({ family: s.family, address: s.localAddress, port: s.localPort, inode: s.inode }));
}

/** Which processes hold these socket inodes (scans /proc/<pid>/fd; unreadable entries are skipped). */
async function socketOwners(inodes: Iterable<number>, procRoot = "/proc"): Promise<Map<number, ProcessInfo[]>> {
  const wanted = new Set([...inodes].filter((i) => i > 0));
  const out = new Map<number, ProcessInfo[]>();
  if (!wanted.size) return out;
  let pids: string[];
  try {
    pids = (await readdir(procRoot)).filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(join(procRoot, pid, "fd"));
    } catch {
      continue; // gone, or not ours to read
    }
    const found = new Set<number>();
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(await readlink(join(procRoot, pid, "fd", fd)));
        if (m && wanted.has(Number(m[1]))) found.add(Number(m[1]));
      } catch {
        /* closed meanwhile */
      }
    }
    if (!found.size) continue;
    const name = (await readOptional(join(procRoot, pid, "comm")).catch(() => "")).trim();
    const cmdline = (await readOptional(join(procRoot, pid, "cmdline")).catch(() => "")).split("\0").filter(Boolean).join(" ");
    for (const inode of found) {
      const list = out.get(inode) ?? [];
      list.push({ pid: Number(pid), name, cmdline });
      out.set(inode, list);
    }
  }
  return out;
}

/** Listening TCP sockets with the processes behind them. */
export async function listeningPorts(procRoot = "/proc"): Promise<Listener[]> {
  const listeners = await tcpListeners(procRoot);
  const owners = await socketOwners(listeners.map((l) => l.inode), procRoot);
  return listeners.map((l) => ({ ...l, processes: owners.get(l.inode) ?? [] }));
}
