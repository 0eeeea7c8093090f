// No recursion depth, and no argument list, may grow with the number of lines:
// a recipe of 130,000 lines parses and checks, and so does one whose 130,000
// lines are all mistakes (the first 100 shown, the rest counted).
import test from "ava";
import { checkSource } from "../../src/check/source.ts";
import { MAX_DIAGNOSTICS } from "../../src/diagnostics/reporter.ts";

test("130,000 instructions parse and check", async (t) => {
  const result = await checkSource(
    { path: "long.nifty", text: "ENV A=1\n".repeat(130_000) },
    { args: new Map(), strict: false },
  );
  t.deepEqual(
    result.diagnostics.map((d) => d.code),
    [],
  );
  t.is(result.recipe?.instructions.length, 130_000);
});

test("130,000 mistakes are counted, the first 100 shown, not a parser failure", async (t) => {
  const result = await checkSource(
    { path: "long.nifty", text: "FECTH x\n".repeat(130_000) },
    { args: new Map(), strict: false },
  );
  const shown = result.diagnostics.slice(0, MAX_DIAGNOSTICS);
  t.true(shown.every((d) => d.code === "NIFTY010"));
  t.deepEqual(
    shown.map((d) => d.span?.start.line),
    Array.from({ length: MAX_DIAGNOSTICS }, (_, i) => i + 1),
  );
  const more = result.diagnostics.slice(MAX_DIAGNOSTICS);
  t.deepEqual(
    more.map((d) => [d.code, d.omitted]),
    [["NIFTY815", { errors: 130_000 - MAX_DIAGNOSTICS, warnings: 0 }]],
  );
});
