// The syntax tree: what the parser hands to the checker. It knows lines, words,
// quotes, variables and heredocs, but nothing about what any instruction means.
import type { SourceFile, Span } from "../src/core/source.ts";

export type { Position, SourceFile, Span } from "../src/core/source.ts";

/** Literal text, quotes removed and escapes resolved. */
export interface TextPart {
  kind: "text";
  value: string;
  span: Span;
}

/** `$NAME`, `${NAME}` or `${NAME:-default}`; `default` is the literal default text. */
export interface VarPart {
  kind: "var";
  name: string;
  default?: string;
  span: Span;
}

export type WordPart = TextPart | VarPart;

/** One argument: a run of non-blank characters and quoted strings. */
export interface Word {
  /** The source text exactly as written (quotes and escapes included). */
  raw: string;
  parts: WordPart[];
  span: Span;
}

/** `<<EOF` … `EOF`. `expand` is false when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`). */
export interface Heredoc {
  delimiter: string;
  stripTabs: boolean;
  expand: boolean;
  /** The body lines joined with "\n", with a final "\n" when the body is not empty. */
  body: WordPart[];
  /** The `<<EOF` marker on the instruction line. */
  markerSpan: Span;
  /** From the first body line to the end of the closing delimiter line. */
  span: Span;
}

export interface InstructionNode {
  /** The keyword as written (case kept); compare with `keyword.toUpperCase()`. */
  keyword: string;
  keywordSpan: Span;
  args: Word[];
  heredocs: Heredoc[];
  /** From the keyword to the end of the last argument or heredoc. */
  span: Span;
  /** Comment lines directly above the instruction, without the `#`. */
  comment: string[];
  /** Each line continuation (`\\`, the line break and the comment lines it skips), in order. */
  continuations: Span[];
}

/** A `#` line between instructions, as written from the `#` (blanks after it trimmed). */
export interface CommentLine {
  text: string;
  span: Span;
}

export interface SyntaxTree {
  source: SourceFile;
  instructions: InstructionNode[];
  /** Every comment line outside instructions, in order (the formatter keeps them). */
  comments: CommentLine[];
}
