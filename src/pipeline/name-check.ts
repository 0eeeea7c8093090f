// The recipe's name against the formats a build makes: the rule is src/check/recipe-name.ts's,
// which `niftyc check` applies too.
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { recipeNameProblem as nameProblem, type NameUses } from "../check/recipe-name.ts";
import type { Format } from "./outputs.ts";

/** What the formats need the recipe's name to be. */
export function nameUses(formats: ReadonlySet<Format>): NameUses {
  return {
    machine: formats.has("nspawn") || formats.has("systemd"),
    repository: formats.has("docker-archive") || formats.has("docker"),
  };
}

export function recipeNameProblem(
  name: string,
  formats: ReadonlySet<Format>,
  source: SourceFile,
): Diagnostic | undefined {
  return nameProblem(name, nameUses(formats), source);
}
