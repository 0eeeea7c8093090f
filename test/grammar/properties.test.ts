// Whatever the input, the parser returns (no throw, no hang) and every span
// it hands out lies inside the text with line/column matching its offset.
import fc from "fast-check";
import { checkSpan, recipeArbitraries } from "../support/arbitrary-recipes.ts";
import test from "ava";
import { parseNiftyfile } from "../../grammar/parse.ts";
import type { Span, WordPart } from "../../grammar/syntax.ts";

const validLines = [
  "FETCH busybox https://example.test/busybox sha256:0123abcd",
  "DIR /tmp MODE 1777",
  "USER nifty UID 1000 GID 1000 HOME /home/nifty SHELL /bin/sh",
  "LABEL \"a b\" 'c $d' e\\ f",
  "ENV A=${B:-c} D=$E",
  "FILE /etc/motd <<EOF",
  "hello $USER",
  "EOF",
  "FILE /etc/x <<-'END'",
  "\tEND",
  "COPY a \\",
  "  b",
  "# a comment",
  "",
  "  \t",
];

const fragments = [
  '"',
  "'",
  "\\",
  "$",
  "${",
  "}",
  "${A",
  "${A:-",
  "<<EOF",
  "<<-EOF",
  "<<'E'",
  "EOF",
  "E",
  "#",
  " ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\\\n",
  "\uFEFF",
  "é",
  "😀",
  "\u0000",
  "FETCH",
  "x",
];

const { recipe, mutated } = recipeArbitraries(validLines, fragments, { maxMutatedLines: 12 });

function checkParts(text: string, parts: readonly WordPart[], what: string): void {
  for (const p of parts) checkSpan(text, p.span, `${what} part`);
}

function checkAll(text: string): boolean {
  const { tree, diagnostics } = parseNiftyfile({ path: "fuzz.nifty", text });
  for (const d of diagnostics) {
    if (d.span === undefined) throw new Error(`diagnostic ${d.code} without span`);
    // The grammar accepts every token stream: NIFTY008 would be a parser fault.
    if (d.code === "NIFTY008") throw new Error(`parser fault: ${d.message}`);
    checkSpan(text, d.span, `diagnostic ${d.code}`);
  }
  for (const node of tree.instructions) {
    checkSpan(text, node.span, "instruction");
    checkSpan(text, node.keywordSpan, "keyword");
    for (const w of node.args) {
      checkSpan(text, w.span, "word");
      if (text.slice(w.span.start.offset, w.span.end.offset) !== w.raw)
        throw new Error("word raw differs from its span");
      checkParts(text, w.parts, "word");
    }
    for (const h of node.heredocs) {
      checkSpan(text, h.span, "heredoc");
      checkSpan(text, h.markerSpan, "marker");
      checkParts(text, h.body, "heredoc");
    }
  }
  return true;
}

test("generated recipes: no throw, spans inside the text and consistent", (t) => {
  fc.assert(fc.property(recipe, checkAll), { numRuns: 6000 });
  t.pass();
});

test("mutated valid recipes: no throw, spans inside the text and consistent", (t) => {
  fc.assert(fc.property(mutated, checkAll), { numRuns: 6000 });
  t.pass();
});

test("the span checker itself rejects a wrong span", (t) => {
  const text = "FETCH x\n";
  const bad: Span = {
    start: { offset: 0, line: 1, column: 1 },
    end: { offset: 9, line: 2, column: 2 },
  };
  t.throws(() => checkSpan(text, bad, "test"));
  const badColumn: Span = {
    start: { offset: 6, line: 1, column: 6 },
    end: { offset: 7, line: 1, column: 8 },
  };
  t.throws(() => checkSpan(text, badColumn, "test"));
});

const wholeLines = [
  "FETCH busybox https://example.test/busybox sha256:0123abcd",
  "DIR /tmp MODE 1777",
  "LABEL \"a b\" 'c $d' e\\ f",
  "ENV A=${B:-c} D=$E",
  "COPY a \\\n  b",
  "FILE /etc/motd <<EOF\nhello $USER\nEOF",
  "  user nifty",
];

test("valid instruction lines: one node each and no diagnostics", (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(...wholeLines), { maxLength: 20 }),
      fc.constantFrom("\n", "\r\n"),
      (lines, eol) => {
        const text = lines.join("\n").replaceAll("\n", eol);
        const { tree, diagnostics } = parseNiftyfile({ path: "ok.nifty", text });
        return diagnostics.length === 0 && tree.instructions.length === lines.length;
      },
    ),
    { numRuns: 1000 },
  );
  t.pass();
});
