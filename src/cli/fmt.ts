// `niftyc fmt [--check] [FILE…]`: rewrite recipes in the one layout
// (grammar/format.ts), or with --check print what would change and exit 1.
// A recipe with syntax errors is never rewritten. No file: standard input to
// standard output.
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { SourceFile } from "../core/source.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, parse, recipeLocation } from "./common.ts";
import { printDiagnostics } from "./print-diagnostics.ts";
import { FMT_HELP } from "./usage.ts";

export async function runFmt(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { check: { type: "boolean" } }, FMT_HELP);
  if (values.help) {
    io.stdout.write(FMT_HELP + "\n");
    return EXIT.ok;
  }
  const check = values.check === true;
  const { formatRecipe } = await import("../check/format.ts");
  const { MAX_RECIPE_CHARS, readRecipe, tooLong } = await import("../check/source.ts");
  // Over the limit a check refuses, fmt refuses too: NIFTY802, not a rewrite of what no build reads.
  const format = async (source: SourceFile) =>
    source.text.length > MAX_RECIPE_CHARS
      ? { errors: tooLong(source).diagnostics }
      : await formatRecipe(source);
  if (positionals.length === 0) {
    if (io.readStdin === undefined)
      throw new UsageError(
        "fmt without a file reads standard input, which this caller does not give",
        FMT_HELP,
      );
    const text = await io.readStdin();
    const formatted = await format({ path: "stdin", text });
    if (formatted.errors) return failed(formatted.errors, io);
    if (check) return printDiff(text, formatted.text, "stdin", io);
    io.stdout.write(formatted.text);
    return EXIT.ok;
  }
  const errors: Diagnostic[] = [];
  let changed = false;
  for (const path of positionals) {
    const { recipePath, shownPath } = await recipeLocation(io.cwd, path);
    const source = await readRecipe(recipePath, shownPath);
    const formatted = await format(source);
    if (formatted.errors) {
      for (const d of formatted.errors) errors.push(d);
      continue;
    }
    if (formatted.text === source.text) continue;
    changed = true;
    if (check) await printDiff(source.text, formatted.text, shownPath, io);
    else {
      const { writeFileAtomic } = await import("../core/atomic.ts");
      const { realpath, stat } = await import("node:fs/promises");
      // Through a symbolic link to the file it names: replacing the link would leave that file as it was.
      const file = await realpath(recipePath);
      await writeFileAtomic(file, formatted.text, { mode: (await stat(file)).mode & 0o7777 });
      io.stderr.write(`${shownPath}: formatted\n`);
    }
  }
  if (errors.length > 0) return failed(errors, io);
  return check && changed ? EXIT.input : EXIT.ok;
}

async function failed(errors: readonly Diagnostic[], io: CliIo): Promise<number> {
  await printDiagnostics(errors, io);
  const syntax = errors.every((d) => d.code !== "NIFTY802");
  io.stderr.write(
    `niftyc: not formatted: ${syntax ? "fix the syntax errors first" : "the recipe is too long"}\n`,
  );
  return EXIT.input;
}

async function printDiff(before: string, after: string, shown: string, io: CliIo): Promise<number> {
  const { unifiedDiff } = await import("../core/line-diff.ts");
  const diff = unifiedDiff(before, after, `${shown}`, `${shown} (formatted)`);
  io.stdout.write(diff);
  return diff === "" ? EXIT.ok : EXIT.input;
}
