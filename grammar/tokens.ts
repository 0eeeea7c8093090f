// The tokens of a Niftyfile. The lexer is total: every input string lexes
// into these tokens without a lexer error, so that every problem is reported
// by the syntax layer with a code and a precise span instead.
//
// Context (start of line, pending heredocs) is read from the tokens matched
// so far, because Dockerfile-like lexing is line-oriented.
import { createToken, Lexer } from "./chevrotain.ts";
import type { CustomPatternMatcherReturn, IToken, TokenType } from "chevrotain";

const BLANK_RE = /[ \t]/;
const KEYWORD_RE = /[A-Za-z0-9_-]+/y;
const MARKER_RE = /<<(-?)(?:([A-Za-z0-9_.-]+)|'([^'\r\n]+)'|"([^"\r\n]+)")/y;
/** `<< EOF`: what shells accept, and niftyc reports (NIFTY019); a marker only when its closing line follows. */
const SPACED_MARKER_RE = /<<(-?)[ \t]+(?:([A-Za-z0-9_.-]+)|'([^'\r\n]+)'|"([^"\r\n]+)")/y;
const CONTINUATION_RE = /\\[ \t]*(?:\r?\n(?:[ \t]*#[^\n]*(?:\n|$))*|$)/y;
const CONTINUATION_START_RE = /\\[ \t]*(?:\r?\n|$)/y;

function match(text: string, offset: number, re: RegExp): string | undefined {
  re.lastIndex = offset;
  const m = re.exec(text);
  return m === null ? undefined : m[0];
}

function result(image: string, payload?: unknown): CustomPatternMatcherReturn {
  const r = [image] as CustomPatternMatcherReturn;
  if (payload !== undefined) r.payload = payload;
  return r;
}

/** True when only blanks stand between the offset and the start of a line. */
function atLineStart(tokens: readonly IToken[]): boolean {
  let i = tokens.length - 1;
  if (i >= 0 && tokens[i]!.tokenType === Blank) i--;
  const t = tokens[i];
  return t === undefined || t.tokenType === Newline || t.tokenType === HeredocBody;
}

/** A word ends at a blank, the end of a line or a line continuation. */
function atWordEnd(text: string, offset: number): boolean {
  if (offset >= text.length) return true;
  const c = text[offset]!;
  if (c === " " || c === "\t" || c === "\n") return true;
  if (c === "\r" && text[offset + 1] === "\n") return true;
  return c === "\\" && match(text, offset, CONTINUATION_START_RE) !== undefined;
}

export const Newline = createToken({ name: "Newline", pattern: /\r?\n/, line_breaks: true });

export const Blank = createToken({ name: "Blank", pattern: /[ \t]+/ });

/** `\` at the end of a line; comment lines right after it are skipped, as Dockerfile does. */
export const Continuation = createToken({
  name: "Continuation",
  start_chars_hint: ["\\"],
  line_breaks: true,
  pattern: {
    exec(text: string, offset: number) {
      const image = match(text, offset, CONTINUATION_RE);
      return image === undefined ? null : result(image);
    },
  },
});

/** What a heredoc marker says; the body token needs it to find the closing line. */
export interface MarkerInfo {
  delimiter: string;
  stripTabs: boolean;
  quoted: boolean;
  /** Written with blanks after `<<` (`<< EOF`), which is reported. */
  spaced: boolean;
}

export function markerInfo(image: string): MarkerInfo {
  const m = /^<<(-?)([ \t]*)(?:([A-Za-z0-9_.-]+)|'([^'\r\n]+)'|"([^"\r\n]+)")$/.exec(image);
  if (m === null) throw new Error(`not a heredoc marker: ${image}`);
  const quotedDelimiter = m[4] ?? m[5];
  return {
    delimiter: m[3] ?? quotedDelimiter ?? "",
    stripTabs: m[1] === "-",
    quoted: quotedDelimiter !== undefined,
    spaced: m[2] !== "",
  };
}

/** Each line's text (and with leading tabs removed) → the offset where its last occurrence starts. */
let lastLines: { text: string; plain: Map<string, number>; tabless: Map<string, number> } | undefined;

/**
 * Whether a line after the one at `offset` closes a heredoc of this marker. One pass over the
 * text, kept for the next marker, so many `<< X` lines cost no more than one.
 */
function closingLineFollows(text: string, offset: number, info: MarkerInfo): boolean {
  if (lastLines?.text !== text) {
    const plain = new Map<string, number>();
    const tabless = new Map<string, number>();
    let start = 0;
    while (start <= text.length) {
      const nl = text.indexOf("\n", start);
      let line = text.slice(start, nl === -1 ? text.length : nl);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      plain.set(line, start);
      tabless.set(line.replace(/^\t+/, ""), start);
      if (nl === -1) break;
      start = nl + 1;
    }
    lastLines = { text, plain, tabless };
  }
  const last = (info.stripTabs ? lastLines.tabless : lastLines.plain).get(info.delimiter);
  const lineEnd = text.indexOf("\n", offset);
  return last !== undefined && lineEnd !== -1 && last > lineEnd;
}

/** The markers of the logical line that ended at tokens[end]. */
function markersBefore(tokens: readonly IToken[], end: number): IToken[] {
  const markers: IToken[] = [];
  for (let i = end - 1; i >= 0; i--) {
    const t = tokens[i]!.tokenType;
    if (t === Newline || t === HeredocBody) break;
    if (t === HeredocMarker) markers.push(tokens[i]!);
  }
  return markers.reverse();
}

/**
 * The body lines of one heredoc, through its closing line and that line's
 * line break; without a closing line it runs to the end of the text.
 */
export const HeredocBody = createToken({
  name: "HeredocBody",
  line_breaks: true,
  pattern: {
    exec(text: string, offset: number, tokens: IToken[]) {
      let i = tokens.length - 1;
      let previous = tokens[i];
      if (previous === undefined) return null;
      if (previous.tokenType !== Newline && previous.tokenType !== HeredocBody) return null;
      let done = 0;
      if (previous.tokenType === HeredocBody) {
        while (tokens[i]?.tokenType === HeredocBody) {
          done++;
          i--;
        }
        previous = tokens[i];
        if (previous?.tokenType !== Newline) return null;
      }
      const marker = markersBefore(tokens, i)[done];
      if (marker === undefined) return null;
      const info = markerInfo(marker.image);
      let lineStart = offset;
      while (lineStart < text.length) {
        const nl = text.indexOf("\n", lineStart);
        const lineEnd = nl === -1 ? text.length : nl;
        let line = text.slice(lineStart, lineEnd);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (info.stripTabs) line = line.replace(/^\t+/, "");
        const next = nl === -1 ? text.length : nl + 1;
        if (line === info.delimiter) return result(text.slice(offset, next));
        lineStart = next;
      }
      return result(text.slice(offset));
    },
  },
});

/** A `#` comment; only the first non-blank character of a line starts one. */
export const Comment = createToken({
  name: "Comment",
  start_chars_hint: ["#"],
  pattern: {
    exec(text: string, offset: number, tokens: IToken[]) {
      if (text[offset] !== "#" || !atLineStart(tokens)) return null;
      let end = text.indexOf("\n", offset);
      if (end === -1) end = text.length;
      if (text[end - 1] === "\r" && end < text.length) end--;
      return result(text.slice(offset, end));
    },
  },
});

/** The first word of a line, when it is made only of keyword characters. */
export const Keyword = createToken({
  name: "Keyword",
  start_chars_hint: [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"],
  pattern: {
    exec(text: string, offset: number, tokens: IToken[]) {
      const image = match(text, offset, KEYWORD_RE);
      if (image === undefined || !atLineStart(tokens)) return null;
      if (!atWordEnd(text, offset + image.length)) return null;
      return result(image);
    },
  },
});

/** `<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"` standing as a whole word. */
export const HeredocMarker = createToken({
  name: "HeredocMarker",
  start_chars_hint: ["<"],
  pattern: {
    exec(text: string, offset: number) {
      if (offset > 0 && !BLANK_RE.test(text[offset - 1]!) && text[offset - 1] !== "\n") return null;
      // `<< EOF` is a marker (reported) when its closing line follows, so its body lines are no
      // instructions; `<<- EOF` is that too, rather than `<<-` with the delimiter "-".
      const spaced = match(text, offset, SPACED_MARKER_RE);
      if (spaced !== undefined && atWordEnd(text, offset + spaced.length)) {
        if (closingLineFollows(text, offset, markerInfo(spaced))) return result(spaced);
      }
      const image = match(text, offset, MARKER_RE);
      if (image === undefined || !atWordEnd(text, offset + image.length)) return null;
      return result(image);
    },
  },
});

/** A double-quoted string; without its closing quote it stops at the end of the line. */
export const DoubleQuoted = createToken({
  name: "DoubleQuoted",
  pattern: /"(?:[^"\\\r\n]|\\[^\r\n]|\r(?!\n))*"?/,
});

/** A single-quoted string; without its closing quote it stops at the end of the line. */
export const SingleQuoted = createToken({
  name: "SingleQuoted",
  pattern: /'(?:[^'\r\n]|\r(?!\n))*'?/,
});

/** `\x` outside quotes: the next character, literally. */
export const Escape = createToken({ name: "Escape", pattern: /\\(?:[^\r\n]|\r(?!\n))/ });

/** `$NAME` or `${…}` up to the matching brace on the same line (or just `${NAME` when unclosed). */
export const Variable = createToken({
  name: "Variable",
  start_chars_hint: ["$"],
  pattern: {
    exec(text: string, offset: number) {
      const end = variableEnd(text, offset, lineEnd(text, offset));
      return end === undefined ? null : result(text.slice(offset, end));
    },
  },
});

/** Any other run of characters, and a `$` that starts no variable. */
export const Text = createToken({
  name: "Text",
  pattern: /(?:[^ \t\r\n"'\\$]|\r(?!\n))+|\$/,
});

/** A UTF-8 byte order mark at the very start is ignored. */
export const ByteOrderMark = createToken({
  name: "ByteOrderMark",
  group: Lexer.SKIPPED,
  start_chars_hint: ["\uFEFF"],
  pattern: {
    exec(text: string, offset: number) {
      return offset === 0 && text.charCodeAt(0) === 0xfeff ? result("\uFEFF") : null;
    },
  },
});

/** Where the physical line holding `offset` ends (before `\r\n` or `\n`). */
export function lineEnd(text: string, offset: number): number {
  let end = text.indexOf("\n", offset);
  if (end === -1) return text.length;
  if (end > offset && text[end - 1] === "\r") end--;
  return end;
}

const NAME_START_RE = /[A-Za-z_]/;
const NAME_CHAR_RE = /[A-Za-z0-9_]/;

/**
 * The end of the variable reference starting at `offset` (a `$`), looking no
 * further than `limit`; undefined when the `$` starts no variable. A `${`
 * with no matching `}` ends after the name characters that follow it.
 */
export function variableEnd(text: string, offset: number, limit: number): number | undefined {
  if (text[offset] !== "$" || offset + 1 >= limit) return undefined;
  const next = text[offset + 1]!;
  if (NAME_START_RE.test(next)) {
    let i = offset + 2;
    while (i < limit && NAME_CHAR_RE.test(text[i]!)) i++;
    return i;
  }
  if (next !== "{") return undefined;
  let depth = 1;
  for (let i = offset + 2; i < limit; i++) {
    const c = text[i];
    if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return i + 1;
  }
  let i = offset + 2;
  while (i < limit && NAME_CHAR_RE.test(text[i]!)) i++;
  return i;
}

/** Tried in this order: the first pattern that matches wins. */
export const allTokens: TokenType[] = [
  ByteOrderMark,
  HeredocBody,
  Newline,
  Continuation,
  Blank,
  Comment,
  Keyword,
  HeredocMarker,
  DoubleQuoted,
  SingleQuoted,
  Escape,
  Variable,
  Text,
];

/**
 * The lexer. `validate` runs chevrotain's checks of the token definitions;
 * they cost start-up on every run and cannot fail for a fixed token set, so
 * test/grammar/validations.test.ts runs them once and the CLI skips them.
 */
export function createLexer(validate = false): InstanceType<typeof Lexer> {
  return new Lexer(allTokens, {
    positionTracking: "onlyOffset",
    ensureOptimizations: false,
    skipValidations: !validate,
  });
}

export const niftyLexer = createLexer();
