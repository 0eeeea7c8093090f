// A cache command that reads the store (ls, gc, verify) on a directory that is not one: said,
// answered as an empty store would be, and no directory is made (a misspelt --cache stays visible).
import test from "ava";
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";
import type { CliIo } from "../../src/cli/io.ts";

async function cache(argv: string[], cwd: string) {
  return cli(["cache", ...argv], cwd);
}

async function cli(argv: string[], cwd: string) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: {},
    cwd,
  };
  const code = await main(argv, io);
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

test("a store path that is a file or a symlink loop is NIFTY230 with a hint, not an internal error; an empty --cache is a usage error", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-cache-file-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "x.nifty"), "DIR /a\n");
  writeFileSync(join(dir, "file"), "");
  symlinkSync("loop-b", join(dir, "loop-a"));
  symlinkSync("loop-a", join(dir, "loop-b"));
  for (const store of ["file", "loop-a", "file/below"]) {
    for (const argv of [
      ["cache", "import", "x.nifty", "--cache", store],
      ["build", "x.nifty", "--cache", store, "--out", "out", "-q"],
    ]) {
      const r = await cli(argv, dir);
      t.is(r.code, 1, `${argv.join(" ")}: ${r.stderr}`);
      t.regex(r.stderr, /opening the store .* failed: .*\[NIFTY230\]\n {2}hint: the store is a directory/);
      t.notRegex(r.stderr, /internal error|\n\s+at /);
    }
  }
  const empty = await cli(["cache", "import", "x.nifty", "--cache", ""], dir);
  t.is(empty.code, 2);
  t.regex(empty.stderr, /--cache takes a directory, got an empty path/);
  t.false(existsSync(join(dir, "blobs")), "no store was made in the working directory");
});
