// CST → SyntaxTree. The grammar accepts any token stream, so this is where
// the syntax errors are found: stray lines, unterminated quotes, bad
// variables, heredocs without their closing line, dangling continuations.
import type { CstNode, IToken } from "chevrotain";
import { markerInfo, Blank, Comment, Continuation, HeredocMarker, Newline } from "./tokens.ts";
import type { Heredoc, InstructionNode, Span, Word } from "./syntax.ts";
import { addPiece, PartsBuilder, report, scanExpanding } from "./words.ts";
import type { Context } from "./words.ts";

type Element = CstNode | IToken;

function isToken(e: Element): e is IToken {
  return "tokenType" in e;
}

function offsetOf(e: Element): number {
  return isToken(e) ? e.startOffset : (e.location?.startOffset ?? 0);
}

/** The children of a node in source order (chevrotain groups them by name). */
function ordered(node: CstNode): Element[] {
  const all: Element[] = [];
  for (const list of Object.values(node.children)) all.push(...(list as Element[]));
  return all.sort((a, b) => offsetOf(a) - offsetOf(b));
}

/** The tokens under a node, in source order. */
function tokensOf(node: CstNode, into: IToken[] = []): IToken[] {
  for (const e of ordered(node)) {
    if (isToken(e)) into.push(e);
    else tokensOf(e, into);
  }
  return into;
}

function child(node: CstNode, name: string): CstNode | undefined {
  return node.children[name]?.[0] as CstNode | undefined;
}

function endOf(t: IToken): number {
  return t.startOffset + t.image.length;
}

export function toSyntax(ctx: Context, recipe: CstNode): InstructionNode[] {
  const instructions: InstructionNode[] = [];
  let comment: string[] = [];
  for (const e of ordered(recipe)) {
    if (isToken(e)) {
      if (e.tokenType === Newline) comment = [];
      continue;
    }
    if (e.name === "commentLine") {
      const t = e.children["Comment"]?.[0] as IToken | undefined;
      if (t !== undefined && t.tokenType === Comment) comment.push(commentText(t.image));
      continue;
    }
    const tokens = tokensOf(e);
    checkContinuations(ctx, tokens);
    if (e.name === "instruction") {
      instructions.push(instruction(ctx, e, tokens, comment));
    } else {
      strayLine(ctx, tokens);
    }
    comment = [];
  }
  return instructions;
}

/** `# text` → `text`: the `#`, one blank after it and trailing blanks go. */
function commentText(image: string): string {
  return image.slice(1).replace(/^[ \t]/, "").replace(/[ \t\r]+$/, "");
}

interface LineWords {
  words: { tokens: IToken[] }[];
}

/** Splits a line's tokens into words at blanks and continuations. */
function splitWords(tokens: readonly IToken[]): LineWords {
  const words: { tokens: IToken[] }[] = [];
  let current: IToken[] | undefined;
  for (const t of tokens) {
    if (t.tokenType === Newline) break;
    if (t.tokenType === Blank || t.tokenType === Continuation) {
      current = undefined;
      continue;
    }
    if (current === undefined) {
      current = [];
      words.push({ tokens: current });
    }
    current.push(t);
  }
  return { words };
}

function instruction(ctx: Context, node: CstNode, tokens: IToken[], comment: string[]): InstructionNode {
  const keywordToken = tokens[0]!;
  const keywordEnd = endOf(keywordToken);
  const rest = child(node, "lineRest");
  const args: Word[] = [];
  const markers: IToken[] = [];
  for (const { tokens: pieces } of splitWords(rest === undefined ? [] : tokensOf(rest)).words) {
    const first = pieces[0]!;
    if (first.tokenType === HeredocMarker) {
      markers.push(first);
      continue;
    }
    args.push(word(ctx, pieces));
  }
  const end = child(node, "lineEnd");
  const bodies = (end?.children["HeredocBody"] ?? []) as IToken[];
  const heredocs = markers.map((m, i) => heredoc(ctx, m, bodies[i]));
  let spanEnd = keywordEnd;
  for (const a of args) spanEnd = Math.max(spanEnd, a.span.end.offset);
  for (const m of markers) spanEnd = Math.max(spanEnd, endOf(m));
  for (const h of heredocs) spanEnd = Math.max(spanEnd, h.span.end.offset);
  return {
    keyword: keywordToken.image,
    keywordSpan: ctx.lines.span(keywordToken.startOffset, keywordEnd),
    args,
    heredocs,
    span: ctx.lines.span(keywordToken.startOffset, spanEnd),
    comment,
  };
}

function word(ctx: Context, pieces: readonly IToken[]): Word {
  const start = pieces[0]!.startOffset;
  const end = endOf(pieces[pieces.length - 1]!);
  const out = new PartsBuilder(ctx);
  for (const p of pieces) addPiece(ctx, out, p);
  return {
    raw: ctx.source.text.slice(start, end),
    parts: out.finish(start),
    span: ctx.lines.span(start, end),
  };
}

function heredoc(ctx: Context, marker: IToken, body: IToken | undefined): Heredoc {
  const info = markerInfo(marker.image);
  const markerSpan = ctx.lines.span(marker.startOffset, endOf(marker));
  const text = ctx.source.text;
  const out = new PartsBuilder(ctx);
  const bodyStart = body?.startOffset ?? text.length;
  const bodyEnd = body === undefined ? bodyStart : endOf(body);
  let closedAt: number | undefined;
  let lineStart = bodyStart;
  while (lineStart < bodyEnd) {
    const nl = text.indexOf("\n", lineStart);
    const next = nl === -1 || nl >= bodyEnd ? bodyEnd : nl + 1;
    let contentEnd = nl === -1 || nl >= bodyEnd ? bodyEnd : nl;
    if (contentEnd > lineStart && text[contentEnd - 1] === "\r") contentEnd--;
    let contentStart = lineStart;
    if (info.stripTabs) while (contentStart < contentEnd && text[contentStart] === "\t") contentStart++;
    if (text.slice(contentStart, contentEnd) === info.delimiter) {
      closedAt = contentEnd;
      break;
    }
    if (info.quoted) out.text(text.slice(contentStart, contentEnd), contentStart, contentEnd);
    else scanExpanding(ctx, out, contentStart, contentEnd, "heredoc");
    out.text("\n", contentEnd, next);
    lineStart = next;
  }
  if (closedAt === undefined) {
    report(
      ctx,
      "unclosedHeredoc",
      `heredoc ${marker.image} has no closing line "${info.delimiter}"`,
      marker.startOffset,
      endOf(marker),
    );
  }
  const spanEnd = closedAt ?? bodyEnd;
  const parts = out.finish(bodyStart);
  return {
    delimiter: info.delimiter,
    stripTabs: info.stripTabs,
    expand: !info.quoted,
    body: parts,
    markerSpan,
    span: ctx.lines.span(bodyStart, spanEnd),
  };
}

function strayLine(ctx: Context, tokens: readonly IToken[]): void {
  const first = splitWords(tokens).words[0]?.tokens;
  if (first === undefined) {
    const t = tokens[0]!;
    report(ctx, "notKeyword", "expected an instruction keyword, found a line continuation", t.startOffset, t.startOffset + 1);
    return;
  }
  const start = first[0]!.startOffset;
  const end = endOf(first[first.length - 1]!);
  let raw = ctx.source.text.slice(start, end);
  if (raw.length > 40) raw = `${raw.slice(0, 37)}...`;
  report(ctx, "notKeyword", `expected an instruction keyword, found "${raw}"`, start, end);
}

const BLANKS_TO_END_RE = /[ \t]*$/y;
const EMPTY_LINE_RE = /[ \t]*\r?\n/y;

function test(re: RegExp, text: string, offset: number): boolean {
  re.lastIndex = offset;
  return re.test(text);
}

/** Continuations that end the file, or are followed by an empty line, surprise: warn. */
function checkContinuations(ctx: Context, tokens: readonly IToken[]): void {
  const text = ctx.source.text;
  for (const t of tokens) {
    if (t.tokenType !== Continuation) continue;
    const after = endOf(t);
    const span: Span = ctx.lines.span(t.startOffset, t.startOffset + 1);
    if (!t.image.includes("\n") || test(BLANKS_TO_END_RE, text, after)) {
      report(ctx, "continuationAtEnd", "line continuation at the end of the file", span.start.offset, span.end.offset);
    } else if (test(EMPTY_LINE_RE, text, after)) {
      report(ctx, "continuationBeforeEmptyLine", "line continuation followed by an empty line", span.start.offset, span.end.offset);
    }
  }
}
