// Every diagnostic code the source raises is documented, and every checker
// code is pinned by a negative golden fixture; every instruction has a
// positive one.
import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { INSTRUCTION_KEYWORDS } from "../../grammar/keywords.ts";

const root = new URL("../../", import.meta.url);
const doc = readFileSync(new URL("docs/diagnostics.md", root), "utf8");

function sources(dir: string): string[] {
  return readdirSync(new URL(dir, root), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => readFileSync(new URL(`${dir}/${f}`, root), "utf8"));
}

function codesIn(texts: readonly string[]): Set<string> {
  const codes = new Set<string>();
  for (const text of texts) for (const m of text.matchAll(/"(NIFTY\d{3})"/g)) codes.add(m[1]!);
  return codes;
}

const srcCodes = codesIn(sources("src"));
const checkerCodes = [...codesIn([...sources("src/check"), ...sources("src/instructions")])].filter((c) => c < "NIFTY100");

test("the scan finds codes (a broken pattern would make the tests below vacuous)", (t) => {
  t.true(srcCodes.size > 60);
  t.true(checkerCodes.length > 50);
});

for (const code of [...srcCodes].sort()) {
  test(`docs/diagnostics.md has a row for ${code}`, (t) => {
    t.true(doc.includes(`| ${code} |`));
  });
}

test("the checks and build sections exist", (t) => {
  t.true(doc.includes("\n## Checks\n"));
  t.true(doc.includes("\n## Build\n"));
});

const negative = new URL("test/check/fixtures-negative/", root);
const printed = readdirSync(negative).map((name) => readFileSync(new URL(`${name}/expected.txt`, negative), "utf8")).join("\n");

for (const code of checkerCodes.sort()) {
  test(`a negative fixture shows ${code}`, (t) => {
    t.true(printed.includes(`[${code}]`));
  });
}

const positive = new URL("test/check/fixtures/", root);
const kinds = new Set(
  readdirSync(positive).flatMap((name) => {
    const json = JSON.parse(readFileSync(new URL(`${name}/expected.json`, positive), "utf8")) as { recipe: { instructions: Array<{ kind: string }> } };
    return json.recipe.instructions.map((i) => i.kind);
  }),
);

for (const keyword of INSTRUCTION_KEYWORDS) {
  test(`a positive fixture accepts ${keyword}`, (t) => {
    t.true(kinds.has(keyword));
  });
}
