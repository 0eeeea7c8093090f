// A `--mirror NAME=URL` is used only for an archive of that name: one the recipe names no archive
// by (`--mirror debain=…`) would be silently unused, and debian taken from apt's sources instead.
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { specFor } from "../instructions/index.ts";
import type { Recipe } from "../instructions/recipe.ts";

/** The archives every recipe may use a mirror for: `debian:` FETCH sources, and Debian's security archive. */
const KNOWN_ARCHIVES = ["debian", "debian-security"];

/** NIFTY634 for each --mirror name that is no ARCHIVE line's and no known archive's. */
export function mirrorNameWarnings(
  recipe: Recipe,
  names: readonly string[] | undefined,
  source: SourceFile,
): Diagnostic[] {
  if (names === undefined || names.length === 0) return [];
  const declared = recipe.instructions.flatMap((i) => specFor(i).archive?.(i).name ?? []);
  const archives = [...new Set([...declared, ...KNOWN_ARCHIVES])];
  return names
    .filter((name) => !archives.includes(name))
    .map((name) => {
      const near = suggest(name, archives);
      return {
        severity: "warning" as const,
        code: "NIFTY634" as const,
        message: `--mirror ${name}=… is given but the recipe names no archive ${name}: it is not used`,
        source,
        hint: near
          ? `did you mean --mirror ${near}=…?`
          : `the archives here are ${archives.join(", ")}: name one of them, as its ARCHIVE line does`,
      };
    });
}
