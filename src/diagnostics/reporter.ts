// Collects the diagnostics of one recipe; checks report and carry on, so one
// run shows every problem in the file.
import type { SourceFile, Span } from "../core/source.ts";
import type { ErrorCode, WarningCode } from "./codes.ts";
import type { Diagnostic } from "./diagnostic.ts";

export class Reporter {
  readonly source: SourceFile;
  readonly diagnostics: Diagnostic[] = [];

  constructor(source: SourceFile) {
    this.source = source;
  }

  error(span: Span, code: ErrorCode, message: string, hint?: string): void {
    this.diagnostics.push({ severity: "error", code, message, source: this.source, span, ...(hint ? { hint } : {}) });
  }

  /** A warning about a line, or (span undefined) about the recipe as a whole: what it lacks is on no line. */
  warn(span: Span | undefined, code: WarningCode, message: string, hint?: string): void {
    this.diagnostics.push({ severity: "warning", code, message, source: this.source, ...(span ? { span } : {}), ...(hint ? { hint } : {}) });
  }

  get errorCount(): number {
    return this.diagnostics.filter((d) => d.severity === "error").length;
  }
}
