// A CniRuntime wired to fake plugins and a temp cache dir, for unit tests.
import { rm } from "node:fs/promises";
import { CniRuntime } from "../../src/cni/runtime.js";
import { confListFromObject, type LoadedConfList } from "../../src/cni/config.js";
import type { ExecRecord } from "../../src/cni/invoke.js";
import { FakePlugins, tempDir } from "./fake-plugin.js";

export interface FakeEnv {
  fp: FakePlugins;
  cacheDir: string;
  rt: CniRuntime;
  execs: ExecRecord[];
  /** A runtime on the same plugins and cache with other options. */
  runtime(opts?: { execTimeoutMs?: number }): CniRuntime;
  cleanup(): Promise<void>;
}

export async function fakeEnv(opts: { execTimeoutMs?: number } = {}): Promise<FakeEnv> {
  const fp = await FakePlugins.create();
  const cacheDir = await tempDir("cnishim-cache-");
  const execs: ExecRecord[] = [];
  const runtime = (o: { execTimeoutMs?: number } = {}) =>
    new CniRuntime({ cniPath: [fp.binDir], cacheDir, execTimeoutMs: o.execTimeoutMs ?? opts.execTimeoutMs ?? 10_000, onExec: (r) => execs.push(r) });
  return {
    fp,
    cacheDir,
    rt: runtime(),
    execs,
    runtime,
    async cleanup() {
      await fp.cleanup();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

/** A network list from an object, as if read from `<name>.conflist`. */
export function netList(value: Record<string, unknown>): LoadedConfList {
  return confListFromObject(value, `${String(value.name)}.conflist`);
}
