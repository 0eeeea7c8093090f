// CST → SyntaxTree. The grammar accepts any token stream, so this is where
// the syntax errors are found: stray lines, unterminated quotes, bad
// variables, heredocs without their closing line, dangling continuations.
import type { CstNode, IToken } from "chevrotain";
import {
  markerInfo,
  Blank,
  Comment,
  Continuation,
  HeredocBody,
  HeredocMarker,
  Newline,
  Text,
} from "./tokens.ts";
import type { CommentLine, Heredoc, InstructionNode, Span, Word } from "./syntax.ts";
import { addPiece, PartsBuilder, report, scanExpanding } from "./words.ts";
import type { Context } from "./words.ts";

type Element = CstNode | IToken;

function isToken(e: Element): e is IToken {
  return "tokenType" in e;
}

function offsetOf(e: Element): number {
  return isToken(e) ? e.startOffset : (e.location?.startOffset ?? 0);
}

function endOf(t: IToken): number {
  return t.startOffset + t.image.length;
}

/**
 * Builds the instructions from the recipe node. The tokens of each line are
 * taken from the lexer's ordered token list by the node's offsets, rather
 * than re-sorted from the CST (which groups children by name).
 */
export function toSyntax(
  ctx: Context,
  recipe: CstNode,
  tokens: readonly IToken[],
  comments: CommentLine[] = [],
): InstructionNode[] {
  const instructions: InstructionNode[] = [];
  const top: Element[] = [];
  // A loop, not push(...list): a spread passes every element as an argument, and a long recipe overflows the stack.
  for (const list of Object.values(recipe.children))
    for (const element of list as Element[]) top.push(element);
  top.sort((a, b) => offsetOf(a) - offsetOf(b));
  let cursor = 0;
  let comment: string[] = [];
  for (const [k, e] of top.entries()) {
    if (isToken(e)) {
      if (e.tokenType === Newline) comment = [];
      continue;
    }
    if (e.name === "commentLine") {
      const t = e.children["Comment"]?.[0] as IToken | undefined;
      if (t !== undefined && t.tokenType === Comment) {
        comment.push(commentText(t.image));
        const span = ctx.lines.span(t.startOffset, endOf(t));
        comments.push({ text: t.image.replace(/[ \t\r]+$/, ""), span });
      }
      continue;
    }
    // A line's tokens run up to where the next top-level element starts.
    const start = offsetOf(e);
    const next = top[k + 1];
    const end = next === undefined ? Infinity : offsetOf(next);
    while (cursor < tokens.length && tokens[cursor]!.startOffset < start) cursor++;
    const lineTokens: IToken[] = [];
    while (cursor < tokens.length && tokens[cursor]!.startOffset < end) lineTokens.push(tokens[cursor++]!);
    if (lineTokens.length === 0) continue;
    checkContinuations(ctx, lineTokens);
    if (e.name === "instruction") instructions.push(instruction(ctx, lineTokens, comment));
    else strayLine(ctx, lineTokens);
    comment = [];
  }
  return instructions;
}

/** `# text` → `text`: the `#`, one blank after it and trailing blanks go. */
function commentText(image: string): string {
  return image
    .slice(1)
    .replace(/^[ \t]/, "")
    .replace(/[ \t\r]+$/, "");
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

function instruction(ctx: Context, tokens: IToken[], comment: string[]): InstructionNode {
  const keywordToken = tokens[0]!;
  const keywordEnd = endOf(keywordToken);
  const args: Word[] = [];
  const markers: IToken[] = [];
  for (const { tokens: pieces } of splitWords(tokens.slice(1)).words) {
    const at = pieces.findIndex((p) => p.tokenType === HeredocMarker);
    if (at < 0) {
      args.push(word(ctx, pieces));
      continue;
    }
    // The lexer opened the heredoc, so its body follows the line whatever else the word holds; a
    // marker glued to a word (`a\ <<EOF`, `<<EOF"x"`) would lose the word's other pieces.
    if (pieces.length > 1) {
      const marker = pieces[at]!;
      const message = `heredoc marker ${marker.image} is joined to ${at > 0 ? "the word before it" : "what follows it"}: it must be a word of its own`;
      report(ctx, "joinedHeredoc", message, pieces[0]!.startOffset, endOf(pieces[pieces.length - 1]!));
    }
    if (at > 0) args.push(word(ctx, pieces.slice(0, at)));
    markers.push(pieces[at]!);
    if (at + 1 < pieces.length) args.push(word(ctx, pieces.slice(at + 1)));
  }
  const bodies = tokens.filter((t) => t.tokenType === HeredocBody);
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
    continuations: tokens
      .filter((t) => t.tokenType === Continuation)
      .map((t) => ctx.lines.span(t.startOffset, endOf(t))),
  };
}

function word(ctx: Context, pieces: readonly IToken[]): Word {
  const start = pieces[0]!.startOffset;
  const end = endOf(pieces[pieces.length - 1]!);
  const out = new PartsBuilder(ctx);
  for (const p of pieces) addPiece(ctx, out, p);
  lookAlikes(ctx, pieces);
  return {
    raw: ctx.source.text.slice(start, end),
    parts: out.finish(start),
    span: ctx.lines.span(start, end),
  };
}

function heredoc(ctx: Context, marker: IToken, body: IToken | undefined): Heredoc {
  const info = markerInfo(marker.image);
  const markerSpan = ctx.lines.span(marker.startOffset, endOf(marker));
  if (info.spaced) {
    const arrows = info.stripTabs ? "<<-" : "<<";
    const written = marker.image.replace(/^(<<-?)[ \t]+/, "$1");
    const message = `a heredoc marker has no blank after ${arrows}: write ${written}, not ${marker.image}`;
    report(ctx, "spacedHeredoc", message, marker.startOffset, marker.startOffset + arrows.length);
  }
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
    const line = text.slice(contentStart, contentEnd);
    if (line === info.delimiter) {
      closedAt = contentEnd;
      break;
    }
    // A closing line with blanks around it closes nothing, and the heredoc runs on silently.
    if (line.trim() === info.delimiter)
      report(
        ctx,
        "nearlyClosedHeredoc",
        `this line almost closes heredoc ${marker.image}, but has blanks around "${info.delimiter}"`,
        contentStart,
        contentEnd,
      );
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
    report(
      ctx,
      "notKeyword",
      "expected an instruction keyword, found a line continuation",
      t.startOffset,
      t.startOffset + 1,
    );
    return;
  }
  lookAlikes(ctx, first);
  const start = first[0]!.startOffset;
  const end = endOf(first[first.length - 1]!);
  let raw = ctx.source.text.slice(start, end);
  if (raw.length > 40) raw = `${raw.slice(0, 37)}...`;
  report(ctx, "notKeyword", `expected an instruction keyword, found "${raw}"`, start, end);
}

/**
 * Typographic characters an editor or a web page puts where the syntax wants a blank or a quote:
 * outside quotes they are ordinary characters, so the words are not what they look like.
 */
const LOOK_ALIKES: Record<string, string> = {
  "\u00a0": "a no-break space (U+00A0) is not a blank",
  "\u2007": "a figure space (U+2007) is not a blank",
  "\u202f": "a narrow no-break space (U+202F) is not a blank",
  "\u3000": "an ideographic space (U+3000) is not a blank",
  "\u201c": "a typographic quote (U+201C) is not a quote",
  "\u201d": "a typographic quote (U+201D) is not a quote",
  "\u201e": "a typographic quote (U+201E) is not a quote",
  "\u2018": "a typographic quote (U+2018) is not a quote",
};
const LOOK_ALIKE_RE = /[\u00a0\u2007\u202f\u3000\u201c-\u201e\u2018]/g;

/** NIFTY016 at the first look-alike of a word's unquoted text (an apostrophe, U+2019, is no quote's twin). */
function lookAlikes(ctx: Context, pieces: readonly IToken[]): void {
  for (const piece of pieces) {
    if (piece.tokenType !== Text) continue;
    LOOK_ALIKE_RE.lastIndex = 0;
    const found = LOOK_ALIKE_RE.exec(piece.image);
    if (found === null) continue;
    const at = piece.startOffset + found.index;
    const what = LOOK_ALIKES[found[0]]!;
    const effect = what.endsWith("blank")
      ? "the words on either side are one word"
      : "it stays in the word as a character";
    report(ctx, "lookAlike", `${what}: ${effect}`, at, at + 1);
    return;
  }
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
      report(
        ctx,
        "continuationAtEnd",
        "line continuation at the end of the file",
        span.start.offset,
        span.end.offset,
      );
    } else if (test(EMPTY_LINE_RE, text, after)) {
      report(
        ctx,
        "continuationBeforeEmptyLine",
        "line continuation followed by an empty line",
        span.start.offset,
        span.end.offset,
      );
    }
  }
}
