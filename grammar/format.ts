// `niftyc fmt`: the one layout of a recipe, printed from the syntax tree. Each
// word is written as it was (quotes and escapes kept), but for the option words
// the caller names (src/check/format.ts), which are upper-cased; the words, and
// hence what the recipe builds, never change; only their case and the blanks
// and line breaks around them do. Heredoc bodies are copied as they are, but for their line ends: CRLF
// becomes LF, as the build reads it, so a CRLF recipe comes out all LF.
import type { Diagnostic } from "../src/diagnostics/diagnostic.ts";
import { parseNiftyfile } from "./parse.ts";
import type { InstructionNode, SourceFile, Span, SyntaxTree } from "./syntax.ts";

/** How continuation lines are indented. */
export const CONTINUATION_INDENT = "    ";

export type FormatResult = { text: string; errors?: undefined } | { text?: undefined; errors: Diagnostic[] };

/**
 * The recipe in the one layout, or its syntax errors (a recipe that does not parse is not rewritten).
 * `optionWords` says where the option words are (the checker knows, this layer does not): the start
 * offset of each, to be written in upper case.
 */
export function formatNiftyfile(
  source: SourceFile,
  optionWords?: (tree: SyntaxTree) => ReadonlySet<number>,
): FormatResult {
  const parsed = parseNiftyfile(source);
  const errors = parsed.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0) return { errors };
  return { text: formatTree(parsed.tree, optionWords?.(parsed.tree)) };
}

/** An option word written plainly (no quote, escape or variable): its case is all that may change. */
const PLAIN_OPTION_WORD = /^[A-Za-z][A-Za-z-]*$/;

interface Item {
  start: number;
  end: number;
  lines: string;
}

/** The tree printed: instructions and comment lines in order, at most one blank line between them. */
export function formatTree(tree: SyntaxTree, optionWords: ReadonlySet<number> = new Set()): string {
  const text = tree.source.text;
  const items: Item[] = [];
  for (const c of tree.comments)
    items.push({ start: c.span.start.offset, end: c.span.end.offset, lines: c.text });
  for (const ins of tree.instructions) items.push(instructionItem(text, ins, optionWords));
  items.sort((a, b) => a.start - b.start);
  let out = "";
  let previousEnd: number | undefined;
  for (const item of items) {
    if (previousEnd !== undefined) out += hasBlankLine(text.slice(previousEnd, item.start)) ? "\n\n" : "\n";
    out += item.lines;
    previousEnd = item.end;
  }
  return out === "" ? "" : `${out}\n`;
}

/** True when a line between two items holds nothing but blanks. */
function hasBlankLine(gap: string): boolean {
  const lines = gap.split("\n");
  for (let i = 1; i < lines.length - 1; i++) if (lines[i]!.trim() === "") return true;
  return false;
}

/** The comment lines a continuation skips, trimmed. */
function continuationComments(text: string, span: Span): string[] {
  return text
    .slice(span.start.offset, span.end.offset)
    .split("\n")
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line.startsWith("#"));
}

function instructionItem(text: string, ins: InstructionNode, optionWords: ReadonlySet<number>): Item {
  const upper = (a: InstructionNode["args"][number]) =>
    optionWords.has(a.span.start.offset) && PLAIN_OPTION_WORD.test(a.raw) ? a.raw.toUpperCase() : a.raw;
  const elements = [
    ...ins.args.map((a) => ({ start: a.span.start.offset, end: a.span.end.offset, raw: upper(a) })),
    ...ins.heredocs.map((h) => ({
      start: h.markerSpan.start.offset,
      end: h.markerSpan.end.offset,
      raw: text.slice(h.markerSpan.start.offset, h.markerSpan.end.offset),
    })),
  ].sort((a, b) => a.start - b.start);
  let out = ins.keyword.toUpperCase();
  let previousEnd = ins.keywordSpan.end.offset;
  let after: string[] = [];
  for (const element of elements) {
    const between = ins.continuations.filter(
      (c) => c.start.offset >= previousEnd && c.start.offset < element.start,
    );
    if (between.length === 0) out += ` ${element.raw}`;
    else {
      out += " \\\n";
      for (const c of between)
        for (const comment of continuationComments(text, c)) out += `${CONTINUATION_INDENT}${comment}\n`;
      out += `${CONTINUATION_INDENT}${element.raw}`;
    }
    previousEnd = element.end;
  }
  // A continuation after the last word continues nothing (an empty line or the end follows):
  // it goes, its comments stay.
  for (const c of ins.continuations)
    if (c.start.offset >= previousEnd) after = after.concat(continuationComments(text, c));
  // Except after an escaped blank (`\ `): at the end of a line, that would be a continuation itself.
  const last = elements[elements.length - 1]?.raw ?? "";
  if (/(^|[^\\])(\\\\)*\\[ \t]$/.test(last)) out += " \\";
  // A lone \r ending the line is part of its word: before a newline it would make a CRLF line end
  // instead, taking the \r out of the word. A blank after it keeps it in.
  if (out.endsWith("\r")) out += " ";
  let end = ins.span.end.offset;
  if (ins.heredocs.length > 0) {
    const first = ins.heredocs[0]!.span.start.offset;
    const last = ins.heredocs[ins.heredocs.length - 1]!.span.end.offset;
    out += `\n${text.slice(first, last).replace(/\r\n/g, "\n")}`;
    end = last;
  }
  for (const comment of after) out += `\n${comment}`;
  const lastContinuation = ins.continuations[ins.continuations.length - 1];
  if (after.length > 0 && lastContinuation) end = Math.max(end, lastContinuation.end.offset - 1);
  return { start: ins.span.start.offset, end, lines: out };
}
