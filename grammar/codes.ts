// The syntax layer's diagnostic codes: the parser's names for the Syntax
// entries of the one code table (src/diagnostics/codes.ts), which holds their
// severity, title and hint. The parser reports by name; this view supplies
// the rest from the table.
import { DIAGNOSTIC_CODES } from "../src/diagnostics/codes.ts";
import type { Severity, SyntaxDiagnosticCode } from "../src/diagnostics/codes.ts";

export interface SyntaxCode {
  code: SyntaxDiagnosticCode;
  severity: Severity;
  /** What the message says, for the docs table. */
  title: string;
  hint: string;
}

const NAMES = {
  notKeyword: "NIFTY001",
  unterminatedDouble: "NIFTY002",
  unterminatedSingle: "NIFTY003",
  unclosedVariable: "NIFTY004",
  badVariable: "NIFTY005",
  unclosedHeredoc: "NIFTY006",
  continuationAtEnd: "NIFTY007",
  unexpectedInput: "NIFTY008",
  continuationBeforeEmptyLine: "NIFTY009",
  lookAlike: "NIFTY016",
  nearlyClosedHeredoc: "NIFTY017",
  spacedHeredoc: "NIFTY019",
  joinedHeredoc: "NIFTY028",
} as const satisfies Record<string, SyntaxDiagnosticCode>;

export type SyntaxCodeName = keyof typeof NAMES;

function entry(code: SyntaxDiagnosticCode): SyntaxCode {
  const { severity, title, hint } = DIAGNOSTIC_CODES[code];
  return { code, severity, title, hint };
}

export const SYNTAX_CODES = Object.fromEntries(
  Object.entries(NAMES).map(([name, code]) => [name, entry(code)]),
) as { readonly [N in SyntaxCodeName]: SyntaxCode & { readonly code: (typeof NAMES)[N] } };
