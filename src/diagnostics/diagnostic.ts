// One diagnostic shape for every stage: parser, checker, build. Stages return
// these; only the CLI prints them.
import type { SourceFile, Span } from "../core/source.ts";

export type Severity = "error" | "warning";

export interface Diagnostic {
  severity: Severity;
  /** Stable code such as NIFTY001; documented in docs/diagnostics.md. */
  code: string;
  message: string;
  /** Absent only for problems that belong to no place in a recipe. */
  source?: SourceFile;
  span?: Span;
  hint?: string;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}
