// Whatever the recipe, checkSource returns (never throws) and every
// diagnostic it hands out points inside the text, with line and column
// matching the offset.
import fc from "fast-check";
import {
  CHECK_FRAGMENTS as fragments,
  CHECK_VALID_LINES as validLines,
  checkSpan,
  recipeArbitraries,
} from "../support/arbitrary-recipes.ts";
import test from "ava";
import { checkSource } from "../../src/check/source.ts";

const { recipe, mutated } = recipeArbitraries(validLines, fragments, { validWeight: 3, maxMutatedLines: 14 });

const options = fc.record({
  args: fc.constantFrom(new Map<string, string>(), new Map([["NAME", "n"]]), new Map([["PORT", ""]])),
  strict: fc.boolean(),
});

async function checkAll(
  text: string,
  opts: { args: Map<string, string>; strict: boolean },
): Promise<boolean> {
  const result = await checkSource({ path: "fuzz.nifty", text }, opts);
  for (const d of result.diagnostics) {
    if (d.span === undefined) {
      // Only an unused --arg belongs to no line.
      if (d.code !== "NIFTY012") throw new Error(`diagnostic ${d.code} without span`);
      continue;
    }
    checkSpan(text, d.span, `diagnostic ${d.code}`);
    if (opts.strict && d.severity !== "error") throw new Error(`--strict left a ${d.severity}`);
  }
  const failed = result.diagnostics.some((d) => d.severity === "error");
  if (failed === (result.recipe !== undefined))
    throw new Error("a recipe must come back exactly when there is no error");
  return true;
}

test("generated recipes: checkSource never throws; spans inside the text", async (t) => {
  await fc.assert(fc.asyncProperty(recipe, options, checkAll), { numRuns: 5000 });
  t.pass();
});

test("mutated valid recipes: checkSource never throws; spans inside the text", async (t) => {
  await fc.assert(fc.asyncProperty(mutated, options, checkAll), { numRuns: 5000 });
  t.pass();
});

test("the property sees real diagnostics (the generators reach the checker)", async (t) => {
  const samples = fc.sample(mutated, { numRuns: 300, seed: 1 });
  const codes = new Set<string>();
  for (const text of samples)
    for (const d of (await checkSource({ path: "s.nifty", text }, { args: new Map(), strict: false }))
      .diagnostics)
      codes.add(d.code);
  // Checker codes (010+), not only syntax ones.
  t.true([...codes].filter((c) => c >= "NIFTY010").length >= 10, [...codes].join(" "));
});
