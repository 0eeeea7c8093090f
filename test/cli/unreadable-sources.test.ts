// A COPY source the user who builds may not read: an error at the source's word, from check as
// from build, and `--json` still one object, as for every failed build. Run as nobody (root reads
// everything), which needs root to switch to.
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireParts } from "../support/skip.ts";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");
const NOBODY = 65534;

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root, to run niftyc as nobody (root may read any file)";
  if (spawnSync("sh", ["-c", "command -v setpriv"]).status !== 0)
    return "setpriv is not installed (util-linux)";
  const reach = spawnSync("setpriv", [...asNobody(), "test", "-r", NIFTYC]);
  if (reach.status !== 0) return `nobody cannot read ${NIFTYC}: the checkout must be readable by other users`;
  return undefined;
}

function asNobody(): string[] {
  return [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"];
}

function niftycAsNobody(cwd: string, args: string[]) {
  return spawnSync("setpriv", [...asNobody(), process.execPath, NIFTYC, ...args], {
    cwd,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: cwd },
    timeout: 60_000,
  });
}

/** A recipe directory every user can enter, with a secret only root may read, and a place for nobody's outputs. */
function recipeDir(t: ExecutionContext): { dir: string; work: string } {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-unreadable-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "secret.txt"), "root only\n", { mode: 0o600 });
  mkdirSync(join(dir, "site"), { mode: 0o755 });
  writeFileSync(join(dir, "site/index.html"), "<h1>hi</h1>\n", { mode: 0o644 });
  writeFileSync(join(dir, "site/private.key"), "root only\n", { mode: 0o600 });
  writeFileSync(join(dir, "file.nifty"), "DIR /srv\nCOPY secret.txt /etc/secret\n", { mode: 0o644 });
  writeFileSync(join(dir, "dir.nifty"), "DIR /srv\nCOPY site /srv/www\n", { mode: 0o644 });
  const work = join(dir, "work");
  mkdirSync(work);
  chownSync(work, NOBODY, NOBODY);
  return { dir, work };
}

test("a COPY source nobody may read is NIFTY216 at its word, in check", (t) => {
  if (!requireParts(t, "unreadable COPY sources", unavailable())) return;
  const { dir } = recipeDir(t);
  const checked = niftycAsNobody(dir, ["check", "file.nifty"]);
  t.is(checked.status, 1, checked.stderr);
  t.regex(
    checked.stderr,
    /^file\.nifty:2:6: error: COPY source secret\.txt cannot be read: permission denied \[NIFTY216\]$/m,
  );
  t.regex(checked.stderr, /hint: make it readable/);
});

test("a file inside a COPY'd directory nobody may read is NIFTY216 at the source's word, and --json says so", (t) => {
  if (!requireParts(t, "unreadable COPY sources", unavailable())) return;
  const { dir, work } = recipeDir(t);
  const args = [
    "build",
    "dir.nifty",
    "--cache",
    join(work, "cache"),
    "--out",
    join(work, "out"),
    "--format",
    "rootfs",
  ];
  const built = niftycAsNobody(dir, args);
  t.is(built.status, 1, built.stderr);
  t.regex(
    built.stderr,
    /^dir\.nifty:2:6: error: COPY source site: private\.key cannot be read: permission denied \[NIFTY216\]$/m,
  );
  t.notRegex(built.stderr, /\/proc\/self\/fd|internal error/);
  const json = niftycAsNobody(dir, [...args, "--json"]);
  t.is(json.status, 1, json.stderr);
  const answer = JSON.parse(json.stdout) as {
    diagnostics: Array<{ code: string; line: number; column: number }>;
  };
  t.like(answer.diagnostics[0], { code: "NIFTY216", line: 2, column: 6 });
});

test("a build that fails outside any recipe line (an output directory nobody may write) still prints one JSON object", (t) => {
  if (!requireParts(t, "unreadable COPY sources", unavailable())) return;
  const { dir, work } = recipeDir(t);
  const json = niftycAsNobody(dir, [
    "build",
    "dir.nifty",
    "--cache",
    join(work, "cache"),
    "--out",
    join(dir, "out"),
    "--format",
    "rootfs",
    "--json",
  ]);
  t.is(json.status, 1, json.stderr);
  const answer = JSON.parse(json.stdout) as { error: string; diagnostics: unknown[] };
  t.regex(answer.error, /EACCES|permission denied/);
});
