// The front door of the syntax layer: text in, syntax tree and diagnostics
// out. It never throws; every problem of the file comes back in one run.
import type { Diagnostic } from "../src/diagnostics/diagnostic.ts";
import { niftyParser } from "./parser.ts";
import { LineIndex } from "./positions.ts";
import type { SourceFile, SyntaxTree } from "./syntax.ts";
import { niftyLexer } from "./tokens.ts";
import { toSyntax } from "./to-syntax.ts";
import { report } from "./words.ts";
import type { Context } from "./words.ts";

/**
 * `limit`: how many diagnostics to keep, in the order found (lexer, parser, then
 * words); the rest are counted in `omitted`.
 */
export function parseNiftyfile(
  source: SourceFile,
  limit = Infinity,
): { tree: SyntaxTree; diagnostics: Diagnostic[]; omitted: { errors: number; warnings: number } } {
  const ctx: Context = {
    source,
    lines: new LineIndex(source.text),
    diagnostics: [],
    limit,
    omitted: { errors: 0, warnings: 0 },
  };
  const tree: SyntaxTree = { source, instructions: [] };
  try {
    const lexed = niftyLexer.tokenize(source.text);
    for (const e of lexed.errors) {
      report(
        ctx,
        "unexpectedInput",
        `unexpected character ${JSON.stringify(source.text.slice(e.offset, e.offset + e.length))}`,
        e.offset,
        e.offset + e.length,
      );
    }
    niftyParser.input = lexed.tokens;
    const cst = niftyParser.recipe();
    for (const e of niftyParser.errors) {
      const at = Number.isNaN(e.token.startOffset) ? source.text.length : e.token.startOffset;
      report(ctx, "unexpectedInput", e.message, at, at + (e.token.image?.length ?? 0));
    }
    tree.instructions = toSyntax(ctx, cst, lexed.tokens);
  } catch (error) {
    // A fault in the parser itself must still reach the user as a diagnostic.
    const end = source.text.length;
    report(
      ctx,
      "unexpectedInput",
      `the parser failed: ${error instanceof Error ? error.message : String(error)}`,
      end,
      end,
    );
  }
  ctx.diagnostics.sort((a, b) => (a.span?.start.offset ?? 0) - (b.span?.start.offset ?? 0));
  return { tree, diagnostics: ctx.diagnostics, omitted: ctx.omitted };
}
