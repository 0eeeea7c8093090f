// Tests that need real parts (root, nspawn, a registry, user namespaces) may skip
// only outside CI, and say why; in CI (.ci/run exports CI=1) a missing part fails.
import type { ExecutionContext } from "ava";

/** True when the test can run; otherwise fail in CI, or skip with the reason outside it. */
export function requireParts(t: ExecutionContext, what: string, why: string | undefined): boolean {
  if (why === undefined) return true;
  if (process.env.CI) {
    t.fail(`${what} cannot run in CI: ${why}`);
    return false;
  }
  t.log(`SKIPPED outside CI: ${why}`);
  t.pass();
  return false;
}
