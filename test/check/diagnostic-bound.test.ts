// A recipe with hundreds of thousands of mistakes: `niftyc check` shows the
// first MAX_DIAGNOSTICS and one line that counts the rest (text and --json),
// and past the bound a did-you-mean hint is never searched for.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { MAX_DIAGNOSTICS, Reporter } from "../../src/diagnostics/reporter.ts";
import { MAX_RECIPE_CHARS } from "../../src/check/source.ts";
import { runMain } from "../support/cli.ts";

const span = { start: { offset: 0, line: 1, column: 1 }, end: { offset: 1, line: 1, column: 2 } };

/**
 * Just under 1 MiB: 2,000 groups, then lines that each make one error: an unknown instruction, and an
 * owner naming an unknown group (whose hint searches every group for the nearest name).
 */
function hugeRecipe(): { text: string; errors: number } {
  const lines: string[] = [];
  for (let i = 0; i < 2000; i++) lines.push(`GROUP g${i}`);
  let size = lines.join("\n").length + 1;
  let errors = 0;
  for (let i = 0; ; i++) {
    const line = i % 50 === 0 ? `DIR /d${i} OWNER root:h${i}` : "X";
    if (size + line.length + 1 > MAX_RECIPE_CHARS) break;
    lines.push(line);
    size += line.length + 1;
    errors++;
  }
  return { text: lines.join("\n") + "\n", errors };
}

test("check of a recipe with 300,000 errors shows the first 100 and counts the rest, in text and in --json", async (t) => {
  t.timeout(600_000);
  const dir = mkdtempSync(join(tmpdir(), "nifty-bound-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { text, errors } = hugeRecipe();
  t.true(errors > 300_000);
  writeFileSync(join(dir, "huge.nifty"), text);
  const more = (errors - MAX_DIAGNOSTICS).toLocaleString("en-US");

  const shown = await runMain(["check", "huge.nifty"], dir);
  t.is(shown.code, 1);
  const located = shown.stderr.split("\n").filter((l) => /^huge\.nifty:\d+:\d+: error: /.test(l));
  t.is(located.length, MAX_DIAGNOSTICS);
  t.true(located[0]!.startsWith("huge.nifty:2001:15: error: unknown group h0 [NIFTY037]"), located[0]);
  t.true(
    shown.stderr.includes(
      `huge.nifty: error: ${more} more errors not shown: at most 100 diagnostics are shown per recipe [NIFTY815]\n`,
    ),
    shown.stderr.slice(-400),
  );
  t.true(shown.stderr.endsWith(`\n${errors} errors\n`), shown.stderr.slice(-200));
  t.true(shown.stderr.includes("hint: did you mean g0?"));
  t.true(shown.stderr.length < 100_000);

  const json = await runMain(["check", "--json", "huge.nifty"], dir);
  t.is(json.code, 1);
  const { ok, diagnostics } = JSON.parse(json.stdout) as {
    ok: boolean;
    diagnostics: Array<{ code: string; message: string; line: number | null }>;
  };
  t.false(ok);
  t.is(diagnostics.length, MAX_DIAGNOSTICS + 1);
  t.deepEqual(diagnostics.at(-1), { ...diagnostics.at(-1)!, code: "NIFTY815", line: null });
  t.true(diagnostics.at(-1)!.message.startsWith(`${more} more errors not shown`));
});

test("past the bound a diagnostic is counted, and its hint is never worked out", (t) => {
  const report = new Reporter({ path: "r.nifty", text: "X\n" }, 2);
  let searched = 0;
  const hint = () => `did you mean ${++searched}?`;
  for (let i = 0; i < 5; i++) report.error(span, "NIFTY010", "unknown instruction X", hint);
  report.warn(span, "NIFTY009", "line continuation followed by an empty line", hint);
  t.is(report.diagnostics.length, 2);
  t.is(searched, 2);
  t.deepEqual(report.omitted, { errors: 3, warnings: 1 });
  t.is(report.errorCount, 5);
  // What a build reports of its image checks: the kept ones, then the line that counts the rest.
  const all = report.all();
  t.is(all.length, 3);
  t.like(all[2], {
    severity: "error",
    code: "NIFTY815",
    message: "3 more errors and 1 more warning not shown: at most 100 diagnostics are shown per recipe",
  });
});

test("a recipe whose diagnostics past the bound are all warnings does not fail for them", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "nifty-bound-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Each `\` then an empty line is a NIFTY009 warning.
  writeFileSync(join(dir, "w.nifty"), "DIR /a \\\n\n".repeat(MAX_DIAGNOSTICS + 5));
  const run = await runMain(["check", "w.nifty"], dir);
  t.is(run.code, 0, run.stderr.slice(-300));
  t.true(
    run.stderr.includes(
      "w.nifty: warning: 5 more warnings not shown: at most 100 diagnostics are shown per recipe [NIFTY816]\n",
    ),
    run.stderr.slice(-300),
  );
  t.true(run.stderr.endsWith("\n105 warnings\n"));
});
