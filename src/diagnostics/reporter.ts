// Collects the diagnostics of one recipe; checks report and carry on, so one
// run shows every problem in the file, up to a bound: past MAX_DIAGNOSTICS a
// file's further diagnostics are only counted, and a hint given as a function
// (a did-you-mean search) is never computed.
import type { SourceFile, Span } from "../core/source.ts";
import type { ErrorCode, WarningCode } from "./codes.ts";
import type { Diagnostic } from "./diagnostic.ts";

/** How many diagnostics of one file are kept and shown; the rest are counted (see docs/diagnostics.md). */
export const MAX_DIAGNOSTICS = 100;

/** A hint, or how to find it: worked out only for a diagnostic that is kept. */
export type Hint = string | undefined | (() => string | undefined);

/** Diagnostics counted but not kept, by severity. */
export interface Omitted {
  errors: number;
  warnings: number;
}

/** The line that stands for the diagnostics past the bound (an error when any of them is one), or none. */
export function omittedDiagnostic(source: SourceFile, omitted: Omitted): Diagnostic | undefined {
  if (omitted.errors + omitted.warnings === 0) return undefined;
  const parts = [];
  if (omitted.errors > 0)
    parts.push(`${omitted.errors.toLocaleString("en-US")} more error${omitted.errors === 1 ? "" : "s"}`);
  if (omitted.warnings > 0)
    parts.push(
      `${omitted.warnings.toLocaleString("en-US")} more warning${omitted.warnings === 1 ? "" : "s"}`,
    );
  const message = `${parts.join(" and ")} not shown: at most ${MAX_DIAGNOSTICS} diagnostics are shown per recipe`;
  const hint = "fix these and check again";
  const counts = { ...omitted };
  return omitted.errors > 0
    ? { severity: "error", code: "NIFTY815", message, source, hint, omitted: counts }
    : { severity: "warning", code: "NIFTY816", message, source, hint, omitted: counts };
}

export class Reporter {
  readonly source: SourceFile;
  readonly diagnostics: Diagnostic[] = [];
  readonly omitted: Omitted = { errors: 0, warnings: 0 };
  readonly limit: number;
  /** Where the diagnostics since the last `startLine()` begin, kept or not. */
  lineOffsets = new Set<number | undefined>();

  constructor(source: SourceFile, limit: number = MAX_DIAGNOSTICS) {
    this.source = source;
    this.limit = limit;
  }

  /** Whether a further diagnostic would only be counted. */
  get full(): boolean {
    return this.diagnostics.length >= this.limit;
  }

  startLine(): void {
    this.lineOffsets = new Set();
  }

  /** Keeps `d` while under the bound, else counts it. */
  add(d: Diagnostic): void {
    this.lineOffsets.add(d.span?.start.offset);
    if (!this.full) this.diagnostics.push(d);
    else if (d.severity === "error") this.omitted.errors++;
    else this.omitted.warnings++;
  }

  error(span: Span, code: ErrorCode, message: string, hint?: Hint): void {
    const shown = this.full ? undefined : typeof hint === "function" ? hint() : hint;
    this.add({
      severity: "error",
      code,
      message,
      source: this.source,
      span,
      ...(shown ? { hint: shown } : {}),
    });
  }

  /** A warning about a line, or (span undefined) about the recipe as a whole: what it lacks is on no line. */
  warn(span: Span | undefined, code: WarningCode, message: string, hint?: Hint): void {
    const shown = this.full ? undefined : typeof hint === "function" ? hint() : hint;
    this.add({
      severity: "warning",
      code,
      message,
      source: this.source,
      ...(span ? { span } : {}),
      ...(shown ? { hint: shown } : {}),
    });
  }

  /** The diagnostics kept, then the line that counts the rest (if any). */
  all(): Diagnostic[] {
    const more = omittedDiagnostic(this.source, this.omitted);
    return more ? [...this.diagnostics, more] : this.diagnostics;
  }

  get errorCount(): number {
    return this.diagnostics.filter((d) => d.severity === "error").length + this.omitted.errors;
  }
}
