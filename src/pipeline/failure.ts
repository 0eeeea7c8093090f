import type { Diagnostic } from "../diagnostics/diagnostic.ts";

/** The recipe or its inputs are wrong: the diagnostics say where. */
export class BuildFailed extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super(diagnostics.find((d) => d.severity === "error")?.message ?? "build failed");
    this.diagnostics = diagnostics;
  }
}
