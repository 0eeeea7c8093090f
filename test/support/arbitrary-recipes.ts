// fast-check generators of recipe text for the front end's property tests:
// random lines mixed from valid instructions, syntax fragments and bytes, and
// valid recipes with random character edits.
import fc from "fast-check";
import type { Position, Span } from "../../src/core/source.ts";

export function recipeArbitraries(
  validLines: readonly string[],
  fragments: readonly string[],
  options: { validWeight?: number; maxMutatedLines?: number } = {},
) {
  const line = fc.oneof(
    { weight: options.validWeight ?? 1, arbitrary: fc.constantFrom(...validLines) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...fragments), maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  );

  const recipe = fc
    .tuple(fc.array(line, { maxLength: 15 }), fc.constantFrom("\n", "\r\n"), fc.boolean())
    .map(([lines, eol, final]) => lines.join(eol) + (final ? eol : ""));

  /** A valid recipe with random edits: characters inserted, deleted or replaced. */
  const mutated = fc
    .tuple(
      fc.array(fc.constantFrom(...validLines), { minLength: 1, maxLength: options.maxMutatedLines ?? 12 }),
      fc.array(fc.tuple(fc.nat(), fc.nat(3), fc.constantFrom(...fragments)), { maxLength: 6 }),
    )
    .map(([lines, edits]) => {
      let text = lines.join("\n");
      for (const [at, kind, what] of edits) {
        const i = text.length === 0 ? 0 : at % (text.length + 1);
        if (kind === 0) text = text.slice(0, i) + what + text.slice(i);
        else if (kind === 1) text = text.slice(0, i) + text.slice(i + 1);
        else text = text.slice(0, i) + what + text.slice(i + 1);
      }
      return text;
    });

  return { recipe, mutated };
}

function expectedPosition(text: string, offset: number): Position {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  return { offset, line: before.split("\n").length, column: offset - lineStart + 1 };
}

/** Throws unless the span lies inside `text` and its line:column agree with its offsets. */
export function checkSpan(text: string, s: Span, what: string): void {
  const { start, end } = s;
  if (!(0 <= start.offset && start.offset <= end.offset && end.offset <= text.length)) {
    throw new Error(`${what}: span ${start.offset}..${end.offset} outside 0..${text.length}`);
  }
  for (const p of [start, end]) {
    const want = expectedPosition(text, p.offset);
    if (p.line !== want.line || p.column !== want.column) {
      throw new Error(
        `${what}: offset ${p.offset} at ${p.line}:${p.column}, expected ${want.line}:${want.column}`,
      );
    }
  }
}
