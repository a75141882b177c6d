// Names that carry their owner's pid (cni-shim-p<pid>-<n>, cni-shim-l<pid>-<n>): a process only
// ever sweeps what processes that are gone left, never a live one's.

/** Does a process with this pid exist (EPERM: it does, as another user's)? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The owner's pid in a name that matches `re` (its first group), if that process is alive. */
export function ownedByLiveProcess(re: RegExp, name: string): boolean {
  const m = re.exec(name);
  return !!m && processAlive(Number(m[1]));
}
