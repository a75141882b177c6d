// The engine under test's dockerd, through scripts/engine.sh: killed (kill -9, with containerd for
// a reboot) and brought back.
import { ENGINE, HARNESS } from "./settings.js";
import { sh } from "./shell.js";

export async function dockerdUp() {
  const r = await sh("bash", [HARNESS, "up", ENGINE], { timeoutMs: 180_000 });
  if (!r.ok) throw new Error(`Docker ${ENGINE} did not come back: ${r.err}`);
}

export async function killDockerd({ alsoContainerd }: { alsoContainerd: boolean }) {
  const r = await sh("bash", [HARNESS, "kill", ENGINE, ...(alsoContainerd ? ["--containerd"] : [])], { timeoutMs: 60_000 });
  if (!r.ok) throw new Error(`kill of Docker ${ENGINE}'s dockerd failed: ${r.err}`);
}
