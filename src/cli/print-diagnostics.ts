// Diagnostics on stderr as the CLI prints them: coloured at a terminal that wants colour, with
// the summary line. Apart from the rest of the CLI's helpers, so that the up-to-date short cut
// (build-report.ts) can print a stamp's warnings without loading them.
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { CliIo } from "./io.ts";

export function useColor(stream: CliIo["stderr"], env: CliIo["env"]): boolean {
  // no-color.org: any non-empty NO_COLOR turns colour off.
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== "dumb";
}

export async function printDiagnostics(
  diagnostics: readonly Diagnostic[],
  io: Pick<CliIo, "stderr" | "env">,
): Promise<void> {
  if (diagnostics.length === 0) return;
  const { formatDiagnostic, formatSummary } = await import("../diagnostics/format.ts");
  const color = useColor(io.stderr, io.env);
  for (const d of diagnostics) io.stderr.write(formatDiagnostic(d, { color }) + "\n");
  io.stderr.write(formatSummary(diagnostics) + "\n");
}
