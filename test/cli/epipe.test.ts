// A reader that goes away early (`niftyc … | head`) ends the output, not the
// command: no stack trace, and the exit status is the command's own.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
const NODE = join(ROOT, "node_modules/.bin/node");

test("output piped into head -c 10 stops quietly", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-epipe-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Thousands of diagnostics: far more JSON than a pipe holds once head has gone.
  writeFileSync(join(dir, "big.nifty"), "FECTH x\n".repeat(20_000));
  const run = spawnSync(
    "bash",
    [
      "-c",
      `${NODE} ${join(ROOT, "bin/niftyc")} check big.nifty --json | head -c 10 >/dev/null; echo "status \${PIPESTATUS[0]}" >&2`,
    ],
    { cwd: dir, encoding: "utf8" },
  );
  t.notRegex(run.stderr, /EPIPE|node:events|at .*\.ts:\d+/);
  t.regex(run.stderr, /status 1\n/, "check's own status (the recipe has errors)");
});
