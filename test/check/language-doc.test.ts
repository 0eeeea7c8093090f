// docs/language.md stays in step with the instruction table: every
// instruction's syntax lines, summary and example appear in it verbatim.
import { readFileSync } from "node:fs";
import test from "ava";
import { INSTRUCTIONS } from "../../src/instructions/index.ts";
import { OPTION_KEYWORDS } from "../../grammar/keywords.ts";

const doc = readFileSync(new URL("../../docs/language.md", import.meta.url), "utf8");
const fence = "```";

for (const spec of Object.values(INSTRUCTIONS)) {
  test(`docs/language.md documents ${spec.keyword}`, (t) => {
    t.true(doc.includes(`\n### ${spec.keyword}\n`), "a section heading");
    t.true(doc.includes(`${fence}\n${spec.syntax.join("\n")}\n${fence}`), "the syntax lines");
    t.true(doc.includes(`\n${spec.summary}\n`), "the summary");
    t.true(doc.includes(`${fence}\n${spec.example}\n${fence}`), "the example");
  });
}

test("every option word is mentioned", (t) => {
  for (const option of OPTION_KEYWORDS) t.true(doc.includes(`\`${option}`), option);
});

test("the generated grammar artefacts are linked", (t) => {
  t.true(doc.includes("(../grammar/diagrams.html)"));
  t.true(doc.includes("(../grammar/niftyfile.tmLanguage.json)"));
});
