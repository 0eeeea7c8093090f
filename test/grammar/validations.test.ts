// The CLI builds the lexer and parser with chevrotain's validations skipped
// (they cost start-up on every `niftyc check`); here they run, so a token or
// grammar change that breaks them fails a test instead of going unnoticed.
import test from "ava";
import { allTokens, createLexer, niftyLexer } from "../../grammar/tokens.ts";
import { NiftyParser, niftyParser } from "../../grammar/parser.ts";

test("the token definitions pass chevrotain's lexer validations", (t) => {
  const lexer = createLexer(true);
  t.deepEqual(lexer.lexerDefinitionErrors, []);
  t.is(allTokens.length > 0, true);
});

test("the grammar passes chevrotain's validations (no ambiguity, no left recursion)", (t) => {
  // performSelfAnalysis throws on any definition error it finds.
  t.notThrows(() => new NiftyParser({ validate: true }));
});

/** A CST as plain data: rule names, token images and offsets. */
function shape(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(shape);
  const n = node as {
    name?: string;
    children?: Record<string, unknown[]>;
    image?: string;
    startOffset?: number;
  };
  if (n.children)
    return {
      name: n.name,
      children: Object.fromEntries(Object.entries(n.children).map(([k, v]) => [k, shape(v)])),
    };
  return [n.image, n.startOffset];
}

test("the start-up lexer and parser give the same tokens and tree as the validated ones", (t) => {
  const text = "FILE /etc/motd <<EOF\nhi ${X}\nEOF\nUSER a UID 1 \\\n  SHELL '/bin/sh'\n# c\nbogus line\n";
  const fast = niftyLexer.tokenize(text);
  const checked = createLexer(true).tokenize(text);
  t.deepEqual(
    fast.tokens.map((k) => [k.image, k.startOffset]),
    checked.tokens.map((k) => [k.image, k.startOffset]),
  );
  const validated = new NiftyParser({ validate: true });
  validated.input = checked.tokens;
  const a = shape(validated.recipe());
  niftyParser.input = fast.tokens;
  t.deepEqual(shape(niftyParser.recipe()), a);
  t.is(niftyParser.errors.length, validated.errors.length);
});
