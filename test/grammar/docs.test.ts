// docs/diagnostics.md documents every syntax code exactly as the parser reports it.
import { readFileSync } from "node:fs";
import test from "ava";
import { SYNTAX_CODES } from "../../grammar/codes.ts";

const doc = readFileSync(new URL("../../docs/diagnostics.md", import.meta.url), "utf8");

for (const c of Object.values(SYNTAX_CODES)) {
  test(`docs/diagnostics.md has ${c.code}`, (t) => {
    const cell = (s: string) => s.replace(/\|/g, "\\|");
    t.true(doc.includes(`| ${c.code} | ${c.severity} | ${cell(c.title)} | ${cell(c.hint)} |`));
  });
}

test("the syntax section comes first, as a heading others append below", (t) => {
  t.true(doc.includes("\n## Syntax\n"));
});
