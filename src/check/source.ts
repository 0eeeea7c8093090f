// Recipe text → checked recipe or diagnostics: the whole front end in one call.
import { dirname } from "node:path";
import type { SourceFile } from "../core/source.ts";
import { hasErrors } from "../diagnostics/diagnostic.ts";
import type { CheckResult } from "./check.ts";

export interface CompileOptions {
  args: ReadonlyMap<string, string>;
  strict: boolean;
  /** Absolute path of the recipe, when source.path is how it is shown: COPY sources are relative to its directory. */
  recipePath?: string;
}

/** Parse and check, reporting every problem of the file. Loads the parser. */
export async function checkSource(source: SourceFile, options: CompileOptions): Promise<CheckResult> {
  const { parseNiftyfile } = await import("../../grammar/parse.ts");
  const { checkTree } = await import("./check.ts");
  const parsed = parseNiftyfile(source);
  const checked = checkTree(parsed.tree, { args: options.args, strict: options.strict, ...(options.recipePath ? { recipeDir: dirname(options.recipePath) } : {}) });
  const syntax = options.strict ? parsed.diagnostics.map((d) => ({ ...d, severity: "error" as const })) : parsed.diagnostics;
  const diagnostics = [...syntax, ...checked.diagnostics].sort((a, b) => (a.span?.start.offset ?? 0) - (b.span?.start.offset ?? 0));
  const failed = hasErrors(diagnostics);
  return failed ? { diagnostics } : { diagnostics, ...(checked.recipe ? { recipe: checked.recipe } : {}) };
}
