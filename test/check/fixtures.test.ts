// Golden fixtures for the checker: each folder holds recipe.nifty, an optional
// options.json ({"args": {...}, "strict": true, "allowWritableSetuid": true}) standing for
// --arg/--strict/--allow-writable-setuid,
// and either the typed instructions expected from it (expected.json) or, for
// the negative set, the exact diagnostics as `niftyc check` prints them
// without colour (expected.txt). UPDATE_GOLDEN=1 rewrites them.
import { existsSync, readFileSync } from "node:fs";
import test from "ava";
import { checkSource } from "../../src/check/source.ts";
import { formatDiagnostic, formatSummary } from "../../src/diagnostics/format.ts";
import { caseDirs, expected, spanText } from "../grammar/golden.ts";
import type { Span } from "../../src/core/source.ts";

const positive = new URL("fixtures/", import.meta.url);
const negative = new URL("fixtures-negative/", import.meta.url);

interface CaseOptions {
  args?: Record<string, string>;
  strict?: boolean;
  allowWritableSetuid?: boolean;
}

async function checkCase(set: "fixtures" | "fixtures-negative", name: string) {
  const root = set === "fixtures" ? positive : negative;
  const optionsFile = new URL(`${name}/options.json`, root);
  const options = (
    existsSync(optionsFile) ? JSON.parse(readFileSync(optionsFile, "utf8")) : {}
  ) as CaseOptions;
  // A path relative to the repository, as the CLI shows it; COPY resolves against its folder.
  const path = `test/check/${set}/${name}/recipe.nifty`;
  const text = readFileSync(new URL(`${name}/recipe.nifty`, root), "utf8");
  return checkSource(
    { path, text },
    {
      args: new Map(Object.entries(options.args ?? {})),
      strict: options.strict === true,
      allowWritableSetuid: options.allowWritableSetuid === true,
    },
  );
}

/**
 * Spans as line:col-line:col, modes in octal, the diagnostics' source file
 * left out (COPY's `source`, a string, stays).
 */
function stable(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v: unknown) => {
      if (key === "source" && typeof v === "object") return undefined;
      if (key === "mode" && typeof v === "number") return `0${v.toString(8)}`;
      if (v !== null && typeof v === "object" && "start" in v && "end" in v) return spanText(v as Span);
      return v;
    }),
  );
}

/** Absolute paths in hints depend on the checkout's place. */
function portable(text: string): string {
  return text.replaceAll(process.cwd(), "<repo>");
}

for (const name of caseDirs(positive)) {
  test(`fixture ${name}`, async (t) => {
    const result = await checkCase("fixtures", name);
    t.not(
      result.recipe,
      undefined,
      result.diagnostics.map((d) => formatDiagnostic(d, { color: false })).join("\n"),
    );
    const { dir: _, path: __, ...recipe } = result.recipe ?? { dir: "", path: "" };
    const actual = portable(
      `${JSON.stringify(stable({ recipe, diagnostics: result.diagnostics }), null, 2)}\n`,
    );
    const want = expected(new URL(`${name}/expected.json`, positive), actual);
    t.not(want, undefined, "expected.json is missing (run with UPDATE_GOLDEN=1)");
    t.deepEqual(JSON.parse(actual), JSON.parse(want ?? "null"));
  });
}

for (const name of caseDirs(negative)) {
  test(`negative fixture ${name}`, async (t) => {
    const result = await checkCase("fixtures-negative", name);
    t.true(result.diagnostics.length > 0, "a negative fixture must produce diagnostics");
    const printed = result.diagnostics.map((d) => formatDiagnostic(d, { color: false })).join("\n");
    const actual = portable(`${printed}\n${formatSummary(result.diagnostics)}\n`);
    const want = expected(new URL(`${name}/expected.txt`, negative), actual);
    t.is(actual as string | undefined, want);
    // No recipe comes back when any diagnostic is an error.
    t.is(
      result.recipe === undefined,
      result.diagnostics.some((d) => d.severity === "error"),
    );
  });
}
