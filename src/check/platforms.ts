// What a build would say of a recipe's platforms, said at check time: for each platform asked
// (`niftyc check --platform …`), or else each its PLATFORM line lists, a platform the line does not
// list (NIFTY256) and a FETCH name with no line for that platform (NIFTY255), as forPlatform does.
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { DEFAULT_PLATFORM, findPlatform, type Platform } from "../image/platform.ts";
import { foreignQualifiers, forPlatform, recipePlatforms } from "../instructions/platform-select.ts";
import type { Recipe } from "../instructions/recipe.ts";

/** The platforms a check looks at: those asked, else the PLATFORM line's, else none (any may be built). */
export function checkedPlatforms(recipe: Recipe, asked: readonly Platform[] | undefined): Platform[] {
  if (asked !== undefined) return [...asked];
  const line = recipePlatforms(recipe);
  return (line?.platforms ?? []).map((name) => findPlatform(name)).filter((p) => p !== undefined);
}

/**
 * NIFTY255, NIFTY256 and NIFTY642 for each platform checkedPlatforms names, once each; with none,
 * the PACKAGE qualifiers are judged for the platform a plain build makes (linux/amd64).
 */
export function platformDiagnostics(
  recipe: Recipe,
  source: SourceFile,
  asked: readonly Platform[] | undefined,
): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  const platforms = checkedPlatforms(recipe, asked);
  const errors = platforms.flatMap((platform) => forPlatform(recipe, platform).errors);
  if (platforms.length === 0) errors.push(...foreignQualifiers(recipe, DEFAULT_PLATFORM));
  for (const error of errors) {
    const key = `${error.code} ${error.span?.start.offset} ${error.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...error, source });
  }
  return out;
}
