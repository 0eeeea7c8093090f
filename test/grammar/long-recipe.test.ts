// No recursion depth, and no argument list, may grow with the number of lines:
// a recipe of 130,000 lines parses and checks, and so does one whose 130,000
// lines are all mistakes.
import test from "ava";
import { checkSource } from "../../src/check/source.ts";

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

test("130,000 mistakes are 130,000 diagnostics, not a parser failure", async (t) => {
  const result = await checkSource(
    { path: "long.nifty", text: "FECTH x\n".repeat(130_000) },
    { args: new Map(), strict: false },
  );
  t.is(result.diagnostics.length, 130_000);
  t.true(result.diagnostics.every((d) => d.code === "NIFTY010"));
});
