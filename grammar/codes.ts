// The syntax layer's diagnostic codes, as data: the parser, the docs test and
// docs/diagnostics.md all read the same table.
import type { Severity } from "../src/diagnostics/diagnostic.ts";

export interface SyntaxCode {
  code: string;
  severity: Severity;
  /** What the message says, for the docs table. */
  title: string;
  hint: string;
}

export const SYNTAX_CODES = {
  notKeyword: {
    code: "NIFTY001",
    severity: "error",
    title: "a line does not start with an instruction keyword",
    hint: "an instruction starts with its keyword (letters, digits, '-' and '_'), e.g. FETCH",
  },
  unterminatedDouble: {
    code: "NIFTY002",
    severity: "error",
    title: "unterminated double-quoted string",
    hint: 'close the string with " on the same line',
  },
  unterminatedSingle: {
    code: "NIFTY003",
    severity: "error",
    title: "unterminated single-quoted string",
    hint: "close the string with ' on the same line",
  },
  unclosedVariable: {
    code: "NIFTY004",
    severity: "error",
    title: "${ without a closing }",
    hint: "write ${NAME} or ${NAME:-default} on one line",
  },
  badVariable: {
    code: "NIFTY005",
    severity: "error",
    title: "invalid variable reference",
    hint: "write ${NAME} or ${NAME:-default}; a NAME is letters, digits and _, not starting with a digit",
  },
  unclosedHeredoc: {
    code: "NIFTY006",
    severity: "error",
    title: "heredoc without its closing delimiter line",
    hint: "end the heredoc with a line holding only its delimiter",
  },
  continuationAtEnd: {
    code: "NIFTY007",
    severity: "warning",
    title: "line continuation at the end of the file",
    hint: "remove the trailing \\",
  },
  unexpectedInput: {
    code: "NIFTY008",
    severity: "error",
    title: "unexpected input (a parser fault: please report it)",
    hint: "the syntax layer accepts every input; this diagnostic means a bug in niftyc",
  },
  continuationBeforeEmptyLine: {
    code: "NIFTY009",
    severity: "warning",
    title: "line continuation followed by an empty line",
    hint: "the empty line ends the instruction: remove the \\ or the empty line",
  },
} as const satisfies Record<string, SyntaxCode>;

export type SyntaxCodeName = keyof typeof SYNTAX_CODES;
