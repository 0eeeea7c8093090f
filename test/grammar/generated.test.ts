// The committed generated files must match what the grammar generates now.
import { readFileSync } from "node:fs";
import test from "ava";
import { generateArtifacts } from "../../grammar/generate.ts";
import { INSTRUCTION_KEYWORDS } from "../../grammar/keywords.ts";

const artifacts = generateArtifacts();

for (const [name, content] of Object.entries(artifacts)) {
  test(`grammar/${name} is up to date (regenerate: npx node grammar/generate.ts)`, (t) => {
    const committed = readFileSync(new URL(`../../grammar/${name}`, import.meta.url), "utf8");
    t.is(committed, content);
  });
}

test("generation is deterministic", (t) => {
  t.deepEqual(generateArtifacts(), artifacts);
});

test("the diagrams page needs no network", (t) => {
  const html = artifacts["diagrams.html"]!;
  t.false(/(?:src|href)=['"]https?:/.test(html));
  t.true(html.includes('"name": "instruction"'));
});

test("the editor grammar highlights every instruction keyword, in any case", (t) => {
  const grammar = JSON.parse(artifacts["niftyfile.tmLanguage.json"]!);
  t.is(grammar.scopeName, "source.niftyfile");
  t.deepEqual(grammar.fileTypes, ["nifty"]);
  const source: string = grammar.repository.instruction.match;
  const re = new RegExp(source.replace(/^\(\?i\)/, ""), "i");
  for (const k of INSTRUCTION_KEYWORDS) {
    t.true(re.test(`${k} x`), k);
    t.true(re.test(`  ${k.toLowerCase()} x`), k);
  }
  t.false(re.test("FECTH x"));
  t.true(new RegExp(grammar.repository.digest.match).test(`sha256:${"ab".repeat(32)}`));
});
