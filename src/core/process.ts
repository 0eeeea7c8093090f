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
