import type { Diagnostic } from "../diagnostics/diagnostic.ts";

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
