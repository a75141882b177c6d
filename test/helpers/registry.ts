// A private image registry for the managed-plugin e2e tests: Debian's docker-registry (the
// registry v2 server) on a loopback address of the namespace the test runs in, with a config
// file and a storage dir of its own (never the package's service or /var/lib/docker-registry).
// Docker treats 127.0.0.0/8 as an insecure registry by default, so plain HTTP needs no daemon.json.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./e2e.js";

export interface Registry {
  /** host:port, the prefix of a plugin reference. */
  address: string;
  stop(): Promise<void>;
}

const BINARY = "/usr/bin/docker-registry";

export async function startRegistry(): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), "cs-registry-"));
  const port = 15000 + Math.floor(Math.random() * 1000);
  const address = `127.0.0.1:${port}`;
  await writeFile(
    join(dir, "config.yml"),
    ["version: 0.1", "log:", "  level: warn", "storage:", "  filesystem:", `    rootdirectory: ${join(dir, "storage")}`, "http:", `  addr: ${address}`, ""].join("\n"),
  );
  const child = spawn(BINARY, ["serve", join(dir, "config.yml")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.once("error", (err) => (stderr += `\n${err.message} (apt-get install docker-registry; make test does it)`));
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor("the registry to answer /v2/", async () => ((await fetch(`http://${address}/v2/`).then((r) => r.ok, () => false)) ? true : undefined), 15_000);
  } catch (err) {
    await stop();
    throw new Error(`${BINARY} did not come up on ${address}: ${(err as Error).message}\n${stderr}`, { cause: err });
  }
  return { address, stop };
}
