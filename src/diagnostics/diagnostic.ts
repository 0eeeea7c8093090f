// One diagnostic shape for every stage: parser, checker, build. Stages return
// these; only the CLI prints them.
import type { SourceFile, Span } from "../core/source.ts";
import type { DiagnosticCode, Severity } from "./codes.ts";

export type { DiagnosticCode, Severity };

export interface Diagnostic {
  severity: Severity;
  /** Stable code such as NIFTY001, from the table in codes.ts (documented in docs/diagnostics.md). */
  code: DiagnosticCode;
  message: string;
  /** Absent only for problems that belong to no place in a recipe. */
  source?: SourceFile;
  span?: Span;
  hint?: string;
  /** The text that would fix `span` (a did-you-mean suggestion): an editor offers it as a quick fix. */
  replacement?: string;
  /** Lines under the message, one fact each (NiftyError.details): printed each on its own line. */
  details?: readonly string[];
  /** On the one diagnostic that stands for those past the bound (NIFTY815, NIFTY816): how many it stands for. */
  omitted?: { errors: number; warnings: number };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}
