import type { SourceFile, Span } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { NiftyError } from "../diagnostics/errors.ts";
import { StepError } from "../instructions/context.ts";

/** The recipe or its inputs are wrong: the diagnostics say where. */
export class BuildFailed extends Error {
  readonly diagnostics: Diagnostic[];
  /** Secrets the recipe needs and was not given, when that is all that is wrong: a terminal can ask for them. */
  readonly missingSecrets: string[];
  constructor(diagnostics: Diagnostic[], missingSecrets: string[] = []) {
    super(diagnostics.find((d) => d.severity === "error")?.message ?? "build failed");
    this.diagnostics = diagnostics;
    this.missingSecrets = missingSecrets;
  }
}

/** A NiftyError as the recipe's error at `span` (a step's own span when it has one). */
export function asDiagnostic(error: NiftyError, span: Span, source: SourceFile): Diagnostic {
  const where = error instanceof StepError ? error.span : span;
  return {
    severity: "error",
    code: error.code,
    message: error.message,
    source,
    span: where,
    ...(error.hint ? { hint: error.hint } : {}),
    ...(error.details ? { details: error.details } : {}),
  };
}
