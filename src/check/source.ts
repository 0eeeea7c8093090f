// Recipe text → checked recipe or diagnostics: the whole front end in one call.
import { open, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import type { SourceFile } from "../core/source.ts";
import type { HostInputs } from "../core/host-inputs.ts";
import { readCapped } from "../core/read-capped.ts";
import { hasErrors } from "../diagnostics/diagnostic.ts";
import { MAX_DIAGNOSTICS, omittedDiagnostic } from "../diagnostics/reporter.ts";
import type { CheckResult } from "./check.ts";
import type { NameUses } from "./recipe-name.ts";

/** The longest recipe niftyc parses (see docs/security.md): parsing and checking hold it whole, with a syntax node per word. */
export const MAX_RECIPE_CHARS = 1 << 20;

export interface CompileOptions {
  args: ReadonlyMap<string, string>;
  strict: boolean;
  /** --allow-system-binds (NIFTY025). */
  allowSystemBinds?: boolean;
  /** --allow-writable-setuid (NIFTY233). */
  allowWritableSetuid?: boolean;
  /** What the outputs need the recipe's name to be (NIFTY809); default: what a default build makes. */
  nameUses?: NameUses;
  /** Absolute path of the recipe, when source.path is how it is shown: COPY sources are relative to its directory. */
  recipePath?: string;
}

/** Parse and check, reporting every problem of the file. Loads the parser. */
export async function checkSource(source: SourceFile, options: CompileOptions): Promise<CheckResult> {
  if (source.text.length > MAX_RECIPE_CHARS) return tooLong(source);
  return (await loadFrontEnd()).check(source, options);
}

/** The parse of a recipe, kept so it can be checked later (what checkSource does in two steps). */
export type Parsed = ReturnType<typeof import("../../grammar/parse.ts").parseNiftyfile>;

/**
 * checkSource in two synchronous steps, for a caller that checks many times
 * (the language server): `parse` gives the syntax tree alone, `checkParsed`
 * the very diagnostics checkSource would give for that text.
 */
export interface FrontEnd {
  parse(source: SourceFile): Parsed | undefined;
  checkParsed(source: SourceFile, parsed: Parsed | undefined, options: CompileOptions): CheckResult;
  check(source: SourceFile, options: CompileOptions): CheckResult;
}

let frontEnd: Promise<FrontEnd> | undefined;

/** The parser and checker, loaded once; `parse` answers undefined for a recipe over MAX_RECIPE_CHARS. */
export function loadFrontEnd(): Promise<FrontEnd> {
  frontEnd ??= Promise.all([import("../../grammar/parse.ts"), import("./check.ts")]).then(
    ([{ parseNiftyfile }, { checkTree }]) => {
      const parse = (source: SourceFile) =>
        source.text.length > MAX_RECIPE_CHARS ? undefined : parseNiftyfile(source, MAX_DIAGNOSTICS);
      const checkParsed = (source: SourceFile, parsed: Parsed | undefined, options: CompileOptions) =>
        parsed === undefined ? tooLong(source) : checkParse(checkTree, parsed, options);
      return { parse, checkParsed, check: (s, o) => checkParsed(s, parse(s), o) };
    },
  );
  return frontEnd;
}

/** NIFTY802 for a recipe over MAX_RECIPE_CHARS, as a check (and fmt, which formats only what check reads) reports it. */
export function tooLong(source: SourceFile): CheckResult {
  return {
    diagnostics: [
      {
        severity: "error",
        code: "NIFTY802",
        message: `the recipe has ${source.text.length.toLocaleString("en-US")} characters, more than the limit of ${MAX_RECIPE_CHARS.toLocaleString("en-US")}`,
        source: { path: source.path, text: "" },
        hint: "a recipe is a short list of instructions; put large content in files it COPYs",
      },
    ],
  };
}

function checkParse(
  checkTree: typeof import("./check.ts").checkTree,
  parsed: Parsed,
  options: CompileOptions,
): CheckResult {
  const source = parsed.tree.source;
  const checked = checkTree(parsed.tree, {
    args: options.args,
    strict: options.strict,
    allowSystemBinds: options.allowSystemBinds === true,
    allowWritableSetuid: options.allowWritableSetuid === true,
    ...(options.nameUses ? { nameUses: options.nameUses } : {}),
    ...(options.recipePath ? { recipeDir: dirname(options.recipePath) } : {}),
  });
  const syntax = options.strict
    ? parsed.diagnostics.map((d) => ({ ...d, severity: "error" as const }))
    : parsed.diagnostics;
  const found = [...syntax, ...checked.diagnostics].sort(
    (a, b) => (a.span?.start.offset ?? 0) - (b.span?.start.offset ?? 0),
  );
  const diagnostics = found.slice(0, MAX_DIAGNOSTICS);
  const omitted = { errors: 0, warnings: 0 };
  for (const d of found.slice(MAX_DIAGNOSTICS))
    omitted[options.strict || d.severity === "error" ? "errors" : "warnings"]++;
  omitted.errors += checked.omitted?.errors ?? 0;
  omitted.warnings += checked.omitted?.warnings ?? 0;
  omitted.errors += parsed.omitted.errors + (options.strict ? parsed.omitted.warnings : 0);
  omitted.warnings += options.strict ? 0 : parsed.omitted.warnings;
  const more = omittedDiagnostic(source, omitted);
  if (more) diagnostics.push(more);
  const failed = hasErrors(diagnostics);
  const tree = parsed.tree;
  if (failed || checked.recipe === undefined) return { diagnostics, tree };
  return { diagnostics, tree, recipe: checked.recipe };
}

/**
 * The most bytes of a recipe read: UTF-8 takes at most 3 bytes per UTF-16 unit, so more bytes are
 * more than MAX_RECIPE_CHARS characters, and reading stops there (/dev/zero, a FIFO that never ends).
 */
export const MAX_RECIPE_BYTES = 3 * MAX_RECIPE_CHARS;

/** NIFTY802 for a recipe whose bytes alone are over the limit: `what` is "the recipe x" or "standard input". */
export function tooManyBytes(what: string): NiftyError {
  return new NiftyError(
    "NIFTY802",
    `${what} has more than ${MAX_RECIPE_BYTES.toLocaleString("en-US")} bytes, more than the limit of ${MAX_RECIPE_CHARS.toLocaleString("en-US")} characters`,
    "a recipe is a short list of instructions; put large content in files it COPYs",
  );
}

/** The recipe at an absolute path, named `shown` in messages; reported to `inputs` as it was when read. */
export async function readRecipe(path: string, shown: string, inputs?: HostInputs): Promise<SourceFile> {
  let bytes: Buffer;
  try {
    const fh = await open(path, "r");
    try {
      if (inputs) inputs.file(path, await fh.stat({ bigint: true }));
      bytes = await readCapped(fh, MAX_RECIPE_BYTES);
    } finally {
      await fh.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw new NiftyError(
        "NIFTY208",
        `recipe ${shown} does not exist`,
        "recipes are files such as recipes/ssh.nifty",
      );
    throw new NiftyError("NIFTY208", `cannot read recipe ${shown}: ${code ?? (error as Error).message}`);
  }
  if (bytes.length > MAX_RECIPE_BYTES) throw tooManyBytes(`the recipe ${shown}`);
  return { path: shown, text: decodeRecipe(bytes, shown) };
}

/**
 * A recipe's bytes as text: invalid UTF-8 is refused, never silently read as U+FFFD.
 * `what` names it in the message (default "recipe <shown>").
 */
export function decodeRecipe(bytes: Uint8Array, shown: string, what = `recipe ${shown}`): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // The longest prefix with no invalid sequence (a character cut at its end is not one).
    let good = 0;
    for (let n = 1 << 20; n > 0 && good < bytes.length; n >>= 1) {
      while (good + n <= bytes.length && validSoFar(bytes.subarray(0, good + n))) good += n;
    }
    // A sequence the valid prefix leaves unfinished is where the bad bytes begin.
    let lead = good;
    while (lead > 0 && good - lead < 3 && (bytes[lead - 1]! & 0xc0) === 0x80) lead--;
    const first = bytes[lead - 1] ?? 0;
    const needs = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 0;
    if (lead > 0 && needs > good - (lead - 1)) good = lead - 1;
    const line = new TextDecoder("utf-8").decode(bytes.subarray(0, good)).split("\n").length;
    throw new NiftyError(
      "NIFTY801",
      `${what} is not valid UTF-8 (line ${line}, byte ${good + 1})`,
      "save the recipe as UTF-8 (iconv -f latin1 -t utf-8 converts a Latin-1 file)",
    );
  }
}

function validSoFar(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
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
    recipes.length === 0
      ? `${shown} is a directory with no recipe in it`
      : `${shown} holds ${recipes.length} recipes: ${recipes.join(", ")}`,
    recipes.length === 0
      ? "give a recipe file, or put a Niftyfile (or one .nifty file) in the directory"
      : `name one: ${join(shown, recipes[0]!)}`,
  );
}
