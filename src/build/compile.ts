// Recipe text → checked recipe, cached by the text, the recipe's place and
// the --arg values: a rebuild of an unchanged recipe neither loads the parser
// nor re-checks anything.
import { resolve } from "node:path";
import type { SourceFile } from "../../grammar/syntax.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Store } from "../cache/store.ts";
import type { CheckResult, Recipe } from "../check/check.ts";
import { hashText } from "./keys.ts";
import { BuildFailed } from "./failure.ts";
import { NIFTYC_VERSION } from "../version.ts";

/** Bumped whenever a typed instruction's shape changes, so older records are not read. */
const COMPILED_FORMAT = "compiled-recipe-v2";

interface CompiledRecord {
  recipe: Recipe;
  warnings: Array<Omit<Diagnostic, "source">>;
}

export interface CompileOptions {
  args: ReadonlyMap<string, string>;
  strict: boolean;
}

/** Parse and check, reporting every problem of the file. Loads the parser. */
export async function checkSource(source: SourceFile, options: CompileOptions): Promise<CheckResult> {
  const { parseNiftyfile } = await import("../../grammar/parse.ts");
  const { checkTree } = await import("../check/check.ts");
  const parsed = parseNiftyfile(source);
  const checked = checkTree(parsed.tree, { args: options.args, strict: options.strict });
  const syntax = options.strict ? parsed.diagnostics.map((d) => ({ ...d, severity: "error" as const })) : parsed.diagnostics;
  const diagnostics = [...syntax, ...checked.diagnostics].sort((a, b) => (a.span?.start.offset ?? 0) - (b.span?.start.offset ?? 0));
  const failed = diagnostics.some((d) => d.severity === "error");
  return failed ? { diagnostics } : { diagnostics, ...(checked.recipe ? { recipe: checked.recipe } : {}) };
}

export async function compile(store: Store, source: SourceFile, options: CompileOptions): Promise<{ recipe: Recipe; warnings: Diagnostic[] }> {
  const args = JSON.stringify([...options.args].sort(([a], [b]) => (a < b ? -1 : 1)));
  const key = hashText(COMPILED_FORMAT, NIFTYC_VERSION, resolve(source.path), source.text, args, String(options.strict));
  const cached = await store.readJson<CompiledRecord>("recipes", key);
  if (cached !== undefined) {
    return { recipe: cached.recipe, warnings: cached.warnings.map((w) => ({ ...w, source })) };
  }
  const checked = await checkSource(source, options);
  if (checked.recipe === undefined) throw new BuildFailed(checked.diagnostics);
  const warnings = checked.diagnostics;
  await store.writeJson("recipes", key, { recipe: checked.recipe, warnings: warnings.map(({ source: _, ...rest }) => rest) } satisfies CompiledRecord);
  return { recipe: checked.recipe, warnings };
}
