// What a build for one platform sees of a recipe: the platforms its PLATFORM line supports, and
// the FETCH lines for that platform (FETCH … PLATFORM <platform>) or for every platform.
import type { Span } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Platform } from "../image/platform.ts";
import type { Recipe } from "./recipe.ts";
import type { PlatformInstruction } from "./platform.ts";
import { EVERY_PLATFORM } from "./package.ts";
// What lockfile.ts's lockRequestText is, taken from relations.ts: checking a recipe loads no lock code.
import { formatRelation as lockRequestText } from "../debian/relations.ts";

/** The platforms a recipe's PLATFORM line names, with the line; undefined when it has none. */
export function recipePlatforms(recipe: Recipe): PlatformInstruction | undefined {
  return recipe.instructions.find((i): i is PlatformInstruction => i.kind === "PLATFORM");
}

/**
 * The recipe as a build for `target` sees it: FETCH lines for other platforms left out. A platform
 * the PLATFORM line does not list is NIFTY256; a FETCH name with lines for some platforms but not
 * this one is NIFTY255 at its first line; a PACKAGE qualifier naming another architecture is NIFTY642.
 */
export function forPlatform(
  recipe: Recipe,
  target: Platform,
): { recipe: Recipe; errors: Omit<Diagnostic, "source">[] } {
  const errors: Omit<Diagnostic, "source">[] = [];
  const line = recipePlatforms(recipe);
  if (line !== undefined && !line.platforms.includes(target.name)) {
    errors.push({
      severity: "error",
      code: "NIFTY256",
      span: line.span,
      message: `the recipe does not support platform ${target.name} (its PLATFORM line lists ${line.platforms.join(", ")})`,
      hint: `build for ${line.platforms.join(" or ")}, or add ${target.name} to the PLATFORM line`,
    });
  }
  const perPlatform = new Map<string, { first: Span; platforms: string[] }>();
  for (const i of recipe.instructions) {
    if (i.kind !== "FETCH" || i.platform === undefined) continue;
    const seen =
      perPlatform.get(i.name) ?? perPlatform.set(i.name, { first: i.span, platforms: [] }).get(i.name)!;
    seen.platforms.push(i.platform);
  }
  for (const [name, seen] of perPlatform) {
    if (seen.platforms.includes(target.name)) continue;
    errors.push({
      severity: "error",
      code: "NIFTY255",
      span: seen.first,
      message: `FETCH ${name} has no source and digest for platform ${target.name} (it has ${seen.platforms.join(", ")})`,
      hint: `add FETCH ${name} <source> sha256:<digest> PLATFORM ${target.name}, or build without that platform`,
    });
  }
  errors.push(...foreignQualifiers(recipe, target));
  const instructions = recipe.instructions.filter(
    (i) => i.kind !== "FETCH" || i.platform === undefined || i.platform === target.name,
  );
  return { recipe: { ...recipe, instructions }, errors };
}

/**
 * `PACKAGE foo:arm64` in a build for another platform: an image holds its own architecture's
 * packages and `all` ones, so a qualifier must be `:native`, `:any` or the platform's own.
 */
export function foreignQualifiers(recipe: Recipe, target: Platform): Omit<Diagnostic, "source">[] {
  const errors: Omit<Diagnostic, "source">[] = [];
  for (const i of recipe.instructions) {
    if (i.kind !== "PACKAGE") continue;
    for (const r of i.requests) {
      if (r.arch === undefined || EVERY_PLATFORM.includes(r.arch) || r.arch === target.debian) continue;
      errors.push({
        severity: "error",
        code: "NIFTY642",
        span: i.qualifierSpan?.[lockRequestText(r)] ?? i.span,
        message:
          `PACKAGE ${r.name}:${r.arch} cannot go in the ${target.name} image (${target.debian}): ` +
          "an image holds its own architecture's packages and Architecture: all ones",
        hint: `write ${r.name} without :${r.arch}: each platform resolves the name for itself`,
      });
    }
  }
  return errors;
}
