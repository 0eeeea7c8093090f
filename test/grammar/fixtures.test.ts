// Golden fixtures: each folder holds recipe.nifty and the syntax tree and
// diagnostics expected from it (expected.json), or, for the negative set,
// the exact formatted diagnostics (expected.txt).
import { readFileSync } from "node:fs";
import test from "ava";
import { parseNiftyfile } from "../../grammar/parse.ts";
import { formatDiagnostic } from "../../src/diagnostics/format.ts";
import { caseDirs, expected, stable } from "./golden.ts";

const positive = new URL("fixtures/", import.meta.url);
const negative = new URL("fixtures-negative/", import.meta.url);

function parseCase(root: URL, name: string) {
  const text = readFileSync(new URL(`${name}/recipe.nifty`, root), "utf8");
  return parseNiftyfile({ path: "recipe.nifty", text });
}

for (const name of caseDirs(positive)) {
  test(`fixture ${name}`, (t) => {
    const { tree, diagnostics } = parseCase(positive, name);
    const actual = `${JSON.stringify(stable({ instructions: tree.instructions, diagnostics }), null, 2)}\n`;
    const want = expected(new URL(`${name}/expected.json`, positive), actual);
    t.not(want, undefined, "expected.json is missing (run with UPDATE_GOLDEN=1)");
    t.deepEqual(JSON.parse(actual), JSON.parse(want ?? "null"));
  });
}

for (const name of caseDirs(negative)) {
  test(`negative fixture ${name}`, (t) => {
    const { diagnostics } = parseCase(negative, name);
    t.true(diagnostics.length > 0, "a negative fixture must produce diagnostics");
    const actual = `${diagnostics.map((d) => formatDiagnostic(d, { color: false })).join("\n\n")}\n`;
    const want = expected(new URL(`${name}/expected.txt`, negative), actual);
    t.is(actual as string | undefined, want);
  });
}
