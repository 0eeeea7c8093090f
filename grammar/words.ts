// From the tokens of one word (or one heredoc body) to its parts: quotes
// removed, escapes resolved, variables recognised, adjacent text merged.
import type { IToken } from "chevrotain";
import type { Diagnostic } from "../src/diagnostics/diagnostic.ts";
import { SYNTAX_CODES } from "./codes.ts";
import type { SyntaxCodeName } from "./codes.ts";
import type { LineIndex } from "./positions.ts";
import type { SourceFile, WordPart } from "./syntax.ts";
import { DoubleQuoted, Escape, SingleQuoted, Variable, variableEnd } from "./tokens.ts";

/** What the word builders need to report problems with exact spans. */
export interface Context {
  source: SourceFile;
  lines: LineIndex;
  diagnostics: Diagnostic[];
  /** Past this many diagnostics, further ones are only counted here. */
  limit: number;
  omitted: { errors: number; warnings: number };
}

export function report(
  ctx: Context,
  name: SyntaxCodeName,
  message: string,
  start: number,
  end: number,
): void {
  const { code, severity, hint } = SYNTAX_CODES[name];
  if (ctx.diagnostics.length >= ctx.limit) {
    ctx.omitted[severity === "error" ? "errors" : "warnings"]++;
    return;
  }
  ctx.diagnostics.push({
    severity,
    code,
    message,
    source: ctx.source,
    span: ctx.lines.span(start, end),
    hint,
  });
}

/** Collects parts, merging each text into the text before it. */
export class PartsBuilder {
  readonly #ctx: Context;
  readonly #parts: WordPart[] = [];
  #text: { value: string; start: number; end: number } | undefined;
  /** Where an empty text (such as `""`) was, for a word made of nothing else. */
  #empty: { start: number; end: number } | undefined;

  constructor(ctx: Context) {
    this.#ctx = ctx;
  }

  text(value: string, start: number, end: number): void {
    if (this.#text === undefined) this.#text = { value, start, end };
    else {
      this.#text.value += value;
      this.#text.end = end;
    }
  }

  variable(name: string, defaultValue: string | undefined, start: number, end: number): void {
    this.#flush();
    const span = this.#ctx.lines.span(start, end);
    this.#parts.push(
      defaultValue === undefined
        ? { kind: "var", name, span }
        : { kind: "var", name, default: defaultValue, span },
    );
  }

  /** The parts; an empty text when there were none, so `""` is still an argument. */
  finish(emptyAt: number): WordPart[] {
    this.#flush();
    if (this.#parts.length === 0) {
      const at = this.#empty ?? { start: emptyAt, end: emptyAt };
      this.#parts.push({ kind: "text", value: "", span: this.#ctx.lines.span(at.start, at.end) });
    }
    return this.#parts;
  }

  #flush(): void {
    const t = this.#text;
    if (t === undefined) return;
    this.#text = undefined;
    if (t.value === "") {
      this.#empty ??= { start: t.start, end: t.end };
      return;
    }
    this.#parts.push({ kind: "text", value: t.value, span: this.#ctx.lines.span(t.start, t.end) });
  }
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BRACED_RE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?\}$/;

/** Adds the variable written at text[start, end), or reports it and keeps it as text. */
function addVariable(ctx: Context, out: PartsBuilder, start: number, end: number): void {
  const image = ctx.source.text.slice(start, end);
  if (!image.startsWith("${")) {
    out.variable(image.slice(1), undefined, start, end);
    return;
  }
  if (!image.endsWith("}") || image.length < 3) {
    report(ctx, "unclosedVariable", `\${ without a closing } in "${image}"`, start, end);
    out.text(image, start, end);
    return;
  }
  const m = BRACED_RE.exec(image);
  if (m === null || !NAME_RE.test(m[1]!)) {
    report(ctx, "badVariable", `invalid variable reference "${image}"`, start, end);
    out.text(image, start, end);
    return;
  }
  // A default is plain text: sh would expand a `${` inside it, niftyc would keep it literally, so neither.
  const inner = m[2] === undefined ? -1 : m[2].indexOf("${");
  if (inner >= 0) {
    const at = start + image.length - 1 - m[2]!.length + inner;
    const innerEnd = Math.min(variableEnd(ctx.source.text, at, end - 1) ?? end - 1, end - 1);
    const message = `a default cannot hold a variable: "${ctx.source.text.slice(at, innerEnd)}" in "${image}" would not be expanded`;
    report(ctx, "badVariable", message, at, innerEnd);
    out.text(image, start, end);
    return;
  }
  out.variable(m[1]!, m[2], start, end);
}

/** Which backslash escapes a context resolves; anything else keeps its backslash. */
const DOUBLE_QUOTE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  $: "$",
  n: "\n",
  t: "\t",
};
const HEREDOC_ESCAPES: Readonly<Record<string, string>> = { $: "$" };

/** Text with variables: the inside of a double-quoted string or an expanding heredoc line. */
export function scanExpanding(
  ctx: Context,
  out: PartsBuilder,
  start: number,
  end: number,
  escapes: "double-quote" | "heredoc",
): void {
  const text = ctx.source.text;
  const table = escapes === "double-quote" ? DOUBLE_QUOTE_ESCAPES : HEREDOC_ESCAPES;
  let runStart = start;
  let run = "";
  let i = start;
  while (i < end) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < end) {
      const resolved = table[text[i + 1]!];
      run += resolved ?? text.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (c === "$") {
      const varEnd = variableEnd(text, i, end);
      if (varEnd !== undefined) {
        if (run !== "") out.text(run, runStart, i);
        addVariable(ctx, out, i, varEnd);
        run = "";
        i = varEnd;
        runStart = i;
        continue;
      }
    }
    run += c;
    i++;
  }
  if (run !== "") out.text(run, runStart, end);
}

/** Adds one word piece (any word token but a heredoc marker). */
export function addPiece(ctx: Context, out: PartsBuilder, token: IToken): void {
  const start = token.startOffset;
  const image = token.image;
  const end = start + image.length;
  switch (token.tokenType) {
    case SingleQuoted: {
      const closed = image.length >= 2 && image.endsWith("'");
      if (!closed) report(ctx, "unterminatedSingle", "unterminated single-quoted string", start, start + 1);
      out.text(image.slice(1, closed ? -1 : undefined), start, end);
      return;
    }
    case DoubleQuoted: {
      const closed = image.length >= 2 && image.endsWith('"') && !endsWithEscape(image.slice(0, -1));
      if (!closed) report(ctx, "unterminatedDouble", "unterminated double-quoted string", start, start + 1);
      const contentEnd = closed ? end - 1 : end;
      out.text("", start, start + 1);
      scanExpanding(ctx, out, start + 1, contentEnd, "double-quote");
      if (closed) out.text("", end - 1, end);
      return;
    }
    case Escape:
      out.text(image.slice(1), start, end);
      return;
    case Variable:
      addVariable(ctx, out, start, end);
      return;
    default:
      out.text(image, start, end);
  }
}

/** True when the text ends inside a backslash escape (an odd run of backslashes). */
function endsWithEscape(text: string): boolean {
  let n = 0;
  for (let i = text.length - 1; i >= 0 && text[i] === "\\"; i--) n++;
  return n % 2 === 1;
}
