// The recipe's name, from its file name, names the outputs: the rule check and build share (NIFTY809).
import test from "ava";
import { EVERY_NAME_USE, recipeNameProblem, suggestedName } from "../../src/check/recipe-name.ts";

test("the suggested name is one every output takes, close to the one given", (t) => {
  const source = { path: "x.nifty", text: "" };
  for (const [name, want] of [
    ["ünï", "uni"],
    ["My Recipe", "my-recipe"],
    ["x".repeat(70), "x".repeat(64)],
    ["__web__", "web"],
    ["日本", "nifty"],
  ] as const) {
    t.is(suggestedName(name), want, name);
    t.is(recipeNameProblem(want, EVERY_NAME_USE, source), undefined, want);
    t.is(recipeNameProblem(name, EVERY_NAME_USE, source)?.code, "NIFTY809", name);
  }
  t.is(recipeNameProblem("Web", { machine: true, repository: false }, source), undefined);
  t.is(recipeNameProblem("Web", { machine: false, repository: true }, source)?.code, "NIFTY809");
});
