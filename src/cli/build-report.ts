// What `niftyc build` prints about a build: the step and note lines on
// stderr, the answer on stdout (a line and the outputs, or one JSON object).
// One renderer, so a build recalled by the up-to-date short cut
// (src/cli/build-stamp.ts) prints what the build itself printed.
import { relative } from "node:path";
import { forTerminal } from "../diagnostics/escape.ts";
import type { BuildResult } from "../pipeline/types.ts";
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { DiagnosticJson } from "../diagnostics/format.ts";
import type { CliIo } from "./io.ts";

/** The progress events a report repeats: a step's line, a note. */
export type ReportEvent =
  | { type: "step"; index: number; total: number; text: string; reused: boolean }
  | { type: "note"; message: string };

/** The line stderr shows for one event. */
export function eventLine(event: ReportEvent): string {
  if (event.type === "note") return `note: ${forTerminal(event.message)}\n`;
  const n = String(event.total).length;
  return `[${String(event.index + 1).padStart(n)}/${event.total}] ${forTerminal(event.text)}${event.reused ? "  (cached)" : ""}\n`;
}

/** Each platform of a multi-platform build: its directory, rootfs digest and OCI manifest. */
export interface ReportedPlatform {
  platform: string;
  outDir: string;
  digest: string;
  manifest: string;
}

/** What the answer is made of. */
export type ReportedResult = Pick<
  BuildResult,
  "digest" | "rootfs" | "outDir" | "outputs" | "reproducible" | "upToDate" | "steps" | "stages"
> & {
  name: string;
  stopSignal: BuildResult["config"]["stopSignal"];
  /** A multi-platform build: the index's digest and each platform (the rest is the first platform's). */
  index?: string;
  platforms?: ReportedPlatform[];
};

/** The answer on stdout: the JSON object (absolute paths: a program reading them may run anywhere), or a line and the outputs relative to `cwd`. */
export function resultText(
  result: ReportedResult,
  cwd: string,
  json: boolean,
  pushed?: { pushed: string },
  diagnostics: readonly DiagnosticJson[] = [],
): string {
  if (json) {
    const { digest, rootfs, outDir, outputs, reproducible, upToDate, stopSignal, steps, stages } = result;
    const several = result.platforms ? { index: result.index, platforms: result.platforms } : {};
    const answer = {
      digest,
      rootfs,
      outDir,
      outputs,
      reproducible,
      upToDate,
      stopSignal,
      steps,
      stages,
      ...several,
      // The warnings stderr showed, as check --json and a failed build's object give them.
      diagnostics,
    };
    return JSON.stringify({ ...answer, ...(pushed ? { pushed } : {}) }) + "\n";
  }
  if (result.platforms) {
    const index = result.index ?? "(no oci format)";
    let text = `built ${result.name} for ${result.platforms.length} platforms: image index ${index}\n`;
    for (const p of result.platforms) {
      text += `  ${p.platform}: ${p.digest}  ${relative(cwd, p.outDir) || "."}\n`;
    }
    if (result.index !== undefined) text += `  ${relative(cwd, `${result.outDir}/oci`)}\n`;
    if (pushed) text += `pushed ${pushed.pushed}\n`;
    return text;
  }
  let text = `${result.upToDate ? "up to date" : "built"} ${result.name}: ${result.digest}${result.reproducible ? "" : " (not reproducible)"}\n`;
  for (const path of Object.values(result.outputs)) text += `  ${relative(cwd, path) || "."}\n`;
  if (pushed) text += `pushed ${pushed.pushed}\n`;
  return text;
}

/** The warnings a build printed, as its up-to-date stamp keeps them: the recipe's text once. */
export interface StampedWarnings {
  source?: SourceFile;
  each: Array<Omit<Diagnostic, "source"> & { inRecipe?: true }>;
}

/** A stamp's warnings as diagnostics again, the recipe's source on those from it. */
export function unstamped(warnings: StampedWarnings | undefined): Diagnostic[] {
  return (warnings?.each ?? []).map(({ inRecipe, ...d }) =>
    inRecipe && warnings?.source ? { ...d, source: warnings.source } : d,
  );
}

/** Print a stamp's warnings as the build printed them. */
export async function printStampedWarnings(
  warnings: StampedWarnings | undefined,
  io: Pick<CliIo, "stderr" | "env">,
): Promise<void> {
  if (warnings === undefined || warnings.each.length === 0) return;
  const { printDiagnostics } = await import("./print-diagnostics.ts");
  await printDiagnostics(unstamped(warnings), io);
}

/** Warnings for --json: loads the formatter only when there are some (the up-to-date path stays small). */
export async function diagnosticsJson(ds: readonly Diagnostic[]): Promise<DiagnosticJson[]> {
  if (ds.length === 0) return [];
  const { diagnosticsToJson } = await import("../diagnostics/format.ts");
  return diagnosticsToJson(ds);
}
