// Recipe text → checked recipe, cached by the text, the recipe's place (and
// how it is shown, which names it), --strict and the --arg values: a rebuild of an unchanged recipe neither loads the parser
// nor re-checks anything.
import { resolve } from "node:path";
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Store } from "../cache/store.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { checkSource, type CompileOptions } from "../check/source.ts";
import { hashText } from "./keys.ts";
import { BuildFailed } from "./failure.ts";
import { NIFTYC_VERSION } from "../core/version.ts";

/** Bumped whenever a typed instruction's shape changes, so older records are not read. */
const COMPILED_FORMAT = "compiled-recipe-v5"; // v5: COPY keeps its source's word; v4: PACKAGE each request's and FILES path's, USER its secret's

interface CompiledRecord {
  recipe: Recipe;
  warnings: Array<Omit<Diagnostic, "source">>;
}

export async function compile(
  store: Store,
  source: SourceFile,
  options: CompileOptions,
): Promise<{ recipe: Recipe; warnings: Diagnostic[] }> {
  const args = JSON.stringify([...options.args].sort(([a], [b]) => (a < b ? -1 : 1)));
  // source.path too: the recipe's name and path are taken from how it is shown, not from recipePath.
  const place = options.recipePath ?? resolve(source.path);
  const binds = String(options.allowSystemBinds === true);
  const setuid = String(options.allowWritableSetuid === true);
  const names = JSON.stringify(options.nameUses ?? null);
  const key = hashText(
    COMPILED_FORMAT,
    NIFTYC_VERSION,
    place,
    source.path,
    source.text,
    args,
    String(options.strict),
    binds,
    setuid,
    names,
  );
  const cached = await store.readJson<CompiledRecord>("recipes", key);
  if (cached !== undefined) {
    return { recipe: cached.recipe, warnings: cached.warnings.map((w) => ({ ...w, source })) };
  }
  const checked = await checkSource(source, options);
  if (checked.recipe === undefined) throw new BuildFailed(checked.diagnostics);
  const warnings = checked.diagnostics;
  await store.writeJson("recipes", key, {
    recipe: checked.recipe,
    warnings: warnings.map(({ source: _, ...rest }) => rest),
  } satisfies CompiledRecord);
  return { recipe: checked.recipe, warnings };
}

/** The recipe checked with its ARG defaults only (no --arg), or undefined when it does not check that way. */
export async function compileWithDefaults(
  store: Store,
  source: SourceFile,
  recipePath: string,
): Promise<Recipe | undefined> {
  try {
    return (await compile(store, source, { args: new Map(), strict: false, recipePath })).recipe;
  } catch (error) {
    if (error instanceof BuildFailed) return undefined;
    throw error;
  }
}
