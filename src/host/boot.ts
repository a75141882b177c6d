// Which boot of the machine we are in. Kernel state (links, namespaces, iptables) does not
// survive a reboot while our records under /var/lib do: a record of another boot describes
// nothing that still exists. CNI_SHIM_BOOT_ID stands in for the kernel's id in reboot tests.
import { readFileSync } from "node:fs";

let cached: string | undefined;

export function currentBootId(): string {
  if (cached === undefined) {
    const override = process.env.CNI_SHIM_BOOT_ID?.trim();
    cached = override || readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  }
  return cached;
}

/** True when the record says it was made in another boot (records without a boot id: unknown). */
export const fromEarlierBoot = (recordBootId: string | undefined) => recordBootId !== undefined && recordBootId !== currentBootId();
