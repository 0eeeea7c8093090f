// What a failed system call said, and whether another process still lives:
// the checks that decide whose staging, lease or run is stale.

/** Whether `err` is a Node system error with one of `codes` (ENOENT, EEXIST, …). */
export function isCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === "object" && err !== null && codes.includes(String((err as { code?: unknown }).code));
}

/** Whether process `pid` exists: signal 0 checks without sending; EPERM means it exists as another user's. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isCode(error, "EPERM");
  }
}

let boot: string | null | undefined;

/**
 * The kernel's id of this boot (Linux: /proc/sys/kernel/random/boot_id), read once; undefined
 * where there is none. A value from an earlier boot means the machine restarted since.
 */
export function bootId(): string | undefined {
  if (boot === undefined) {
    try {
      const { readFileSync } = process.getBuiltinModule("node:fs");
      const id = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
      boot = /^[0-9a-f-]{36}$/.test(id) ? id : null;
    } catch {
      boot = null;
    }
  }
  return boot ?? undefined;
}
