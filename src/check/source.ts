// Recipe text → checked recipe or diagnostics: the whole front end in one call.
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
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

/** The recipe at an absolute path, named `shown` in messages. */
export async function readRecipe(path: string, shown: string): Promise<SourceFile> {
  try {
    return { path: shown, text: await readFile(path, "utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new NiftyError("NIFTY208", `recipe ${shown} does not exist`, "recipes are files such as recipes/ssh.nifty");
    throw new NiftyError("NIFTY208", `cannot read recipe ${shown}: ${code ?? (error as Error).message}`);
  }
}

/**
 * Where the recipe of a directory is: its Niftyfile, else its one *.nifty
 * file. `shown` names the directory in messages.
 */
export async function recipeInDirectory(dir: string, shown: string): Promise<string> {
  const names = await readdir(dir);
  if (names.includes("Niftyfile")) return join(dir, "Niftyfile");
  const recipes = names.filter((n) => n.endsWith(".nifty")).sort();
  if (recipes.length === 1) return join(dir, recipes[0]!);
  throw new NiftyError(
    "NIFTY209",
    recipes.length === 0 ? `${shown} is a directory with no recipe in it` : `${shown} holds ${recipes.length} recipes: ${recipes.join(", ")}`,
    recipes.length === 0 ? "give a recipe file, or put a Niftyfile (or one .nifty file) in the directory" : `name one: ${join(shown, recipes[0]!)}`,
  );
}
