// A cache command that reads the store (ls, gc, verify) on a directory that is not one: said,
// answered as an empty store would be, and no directory is made (a misspelt --cache stays visible).
import test from "ava";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";
import type { CliIo } from "../../src/cli/io.ts";

async function cache(argv: string[], cwd: string) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: {},
    cwd,
  };
  const code = await main(["cache", ...argv], io);
  return { code, stdout, stderr };
}

test("cache ls, gc and verify of a missing store make no directory, and answer as an empty one", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-cache-missing-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, "cahce");
  for (const [sub, empty] of [
    ["ls", []],
    ["verify", { checked: 0, ok: 0, corrupt: [], stray: [] }],
  ] as const) {
    const r = await cache([sub, "--cache", missing, "--json"], dir);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout), empty);
    t.regex(r.stderr, /there is no cache at cahce/);
  }
  const gc = await cache(["gc", "--cache", missing], dir);
  t.is(gc.code, 0);
  t.false(existsSync(missing), "no store was made");
});
