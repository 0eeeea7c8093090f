// Variable substitution, with Dockerfile's two times: ARG values are replaced
// everywhere at build time; ENV names are replaced by their declared value in
// paths and metadata, but inside INITTAB commands they are left for the shell
// at boot, so a per-container value (nspawn Environment=, docker run -e) wins.
import type { Span } from "../core/source.ts";
import type { Word, WordPart } from "../../grammar/syntax.ts";
import type { Scope, Value } from "../instructions/scope.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import { suggest } from "../diagnostics/suggest.ts";

/** The longest a word may grow by substitution, and a heredoc body (see docs/security.md). */
export const MAX_VALUE_CHARS = 1 << 20;
export const MAX_HEREDOC_CHARS = 16 << 20;

function tooLong(span: Span, what: string, limit: number, report: Reporter): void {
  report.error(
    span,
    "NIFTY024",
    `substitution makes ${what} longer than ${limit.toLocaleString("en-US")} characters`,
    "a variable that doubles itself, or a large value used many times, would take gigabytes; shorten the values (large content belongs in a file the recipe COPYs)",
  );
}

/** How to keep a literal $NAME, by where the word is: what the last part of NIFTY021's hint says. */
export const LITERAL_DOLLAR = {
  shell: "to leave it for the shell at boot, write \\$NAME or put it in single quotes",
  heredoc:
    "to keep $NAME in the file as written, write \\$NAME, or quote the delimiter (<<'EOF') to keep every $",
  value: "for a literal $, write \\$ or put the word in single quotes",
  hash: "a crypt hash holds $ signs: put it in single quotes, PASSWORD-HASH '$6$…'",
} as const;

/** What a line's substitution knows of the line: names it declares, and how its words keep a $. */
export interface LineContext {
  /** The names this line declares (ARG A=1 B=${A}), which its own values cannot use yet. */
  sameLine?: ReadonlySet<string>;
  literal: keyof typeof LITERAL_DOLLAR;
}

/** Resolve one variable reference; undefined after reporting an error. */
function lookup(
  part: Extract<WordPart, { kind: "var" }>,
  scope: Scope,
  report: Reporter,
  line: LineContext = { literal: "value" },
): { value: string; from: "arg" | "env" | "default" } | undefined {
  // ENV wins over an ARG of the same name (as in Dockerfiles), so `ARG P=22` then
  // `ENV P=${P}` leaves $P in INITTAB commands for the container's environment.
  if (scope.env.has(part.name)) {
    const value = scope.env.get(part.name)!;
    return { value: value === "" && part.default !== undefined ? part.default : value, from: "env" };
  }
  if (scope.args.has(part.name)) {
    const value = scope.args.get(part.name);
    if (value !== undefined && value !== "") return { value, from: "arg" };
    if (part.default !== undefined) return { value: part.default, from: "default" };
    if (value === "") return { value, from: "arg" };
    report.error(
      part.span,
      "NIFTY020",
      `ARG ${part.name} has no value`,
      `give it a default (ARG ${part.name}=…) or pass --arg ${part.name}=VALUE`,
    );
    return undefined;
  }
  if (part.default !== undefined) return { value: part.default, from: "default" };
  const hint = () => {
    if (line.sameLine?.has(part.name))
      return `${part.name} is declared on this line, and a line's values see only the lines before it: declare ${part.name} on a line of its own before this one`;
    const near = suggest(part.name, [...scope.args.keys(), ...scope.env.keys()]);
    return near
      ? `did you mean ${near}?`
      : `declare it with ARG ${part.name}=… or ENV ${part.name}=… before this line; ${LITERAL_DOLLAR[line.literal]}`;
  };
  report.error(part.span, "NIFTY021", `undefined variable ${part.name}`, hint);
  return undefined;
}

export function expandWord(
  word: Word,
  scope: Scope,
  report: Reporter,
  line: LineContext = { literal: "value" },
): Value {
  let text = "";
  let shell = "";
  let rawCursor = 0;
  const origin = word.span.start.offset;
  for (const part of word.parts) {
    if (part.kind === "text") {
      text += part.value;
      continue;
    }
    const found = lookup(part, scope, report, line);
    const value = found?.value ?? "";
    if (text.length + value.length > MAX_VALUE_CHARS) {
      tooLong(part.span, "this word", MAX_VALUE_CHARS, report);
      return { text, shell: "", span: word.span };
    }
    text += value;
    // The shell form keeps the raw text, with ARG references replaced in place.
    const start = part.span.start.offset - origin;
    const end = part.span.end.offset - origin;
    shell += word.raw.slice(rawCursor, start);
    shell += found?.from === "env" ? word.raw.slice(start, end) : value;
    rawCursor = end;
  }
  shell += word.raw.slice(rawCursor);
  return { text, shell, span: word.span };
}

/** Substitute a heredoc body (or any list of parts) at build time. */
export function expandParts(
  parts: readonly WordPart[],
  scope: Scope,
  report: Reporter,
  line: LineContext = { literal: "heredoc" },
): string {
  let text = "";
  for (const part of parts) {
    const value = part.kind === "text" ? part.value : (lookup(part, scope, report, line)?.value ?? "");
    if (text.length + value.length > MAX_HEREDOC_CHARS) {
      tooLong(part.span, "this heredoc", MAX_HEREDOC_CHARS, report);
      return text;
    }
    text += value;
  }
  return text;
}
