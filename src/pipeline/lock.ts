// `niftyc lock` and `niftyc outdated`: the lockfile without a build. Lock
// resolves (or moves forward) what the recipe's PACKAGE lines ask for and
// writes <recipe>.lock (<recipe>.<suite>.lock for suites an --arg chose);
// outdated compares the lock with the suites' current
// signed indices and says which packages have newer versions, and whether
// any of those come from a security suite.
import { NiftyError } from "../diagnostics/errors.ts";
import { openStore } from "../cache/store.ts";
import type { Lock } from "../debian/lockfile.ts";
import type { OutdatedRow, OutdatedSummary } from "../debian/outdated.ts";
import { compile, compileWithDefaults } from "./compile.ts";
import { readRecipe } from "../check/source.ts";
import { archiveMirrors, fetchIndices, lockSuffix, packageDeclarations } from "./packages.ts";
import { readLock, resolvePackages } from "./packages.ts";
import type { BuildOptions } from "./types.ts";

export type LockOptions = Pick<
  BuildOptions,
  | "recipePath"
  | "shownPath"
  | "args"
  | "cacheDir"
  | "mirrors"
  | "now"
  | "fetchTimeoutMs"
  | "strict"
  | "allowSystemBinds"
  | "onEvent"
  | "limits"
>;

/** The recipe, checked, with its store and what it declares; a recipe without PACKAGE lines has nothing to lock. */
async function openRecipe(options: LockOptions) {
  const shown = options.shownPath ?? options.recipePath;
  const source = await readRecipe(options.recipePath, shown);
  const store = await openStore(options.cacheDir);
  const { recipe, warnings } = await compile(store, source, {
    args: options.args ?? new Map(),
    strict: options.strict ?? false,
    allowSystemBinds: options.allowSystemBinds === true,
    recipePath: options.recipePath,
  });
  const declared = packageDeclarations(recipe);
  if (declared.asks.length === 0)
    throw new NiftyError(
      "NIFTY608",
      `${shown} has no PACKAGE lines: there is nothing to lock`,
      "a lock pins the Debian packages PACKAGE lines ask for; FETCH lines pin their own digests",
    );
  // Suites an --arg chose have a lock of their own (lockSuffix).
  const defaults = () => compileWithDefaults(store, source, options.recipePath);
  const suffix = await lockSuffix(recipe, options.args, defaults);
  const lockFile = { path: `${options.recipePath}${suffix}.lock`, shown: `${source.path}${suffix}.lock` };
  return { source, store, recipe, warnings, declared, suffix, lockFile };
}

/** Resolve and write the lock: `update` re-resolves every package (true) or only those named. */
export async function lockRecipe(
  options: LockOptions & { update?: true | readonly string[] },
): Promise<{ lock: Lock; lockPath: string; written: boolean }> {
  const { source, store, recipe, suffix, lockFile } = await openRecipe(options);
  if (Array.isArray(options.update)) {
    const known = new Set((await readLock(lockFile.path, lockFile.shown))?.packages.map((p) => p.name) ?? []);
    const unknown = options.update.filter((name) => !known.has(name));
    if (unknown.length > 0) {
      const what = `${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not in ${lockFile.shown}`;
      const hint = "name packages the lock holds, or give --update alone to move every package";
      throw new NiftyError("NIFTY609", what, hint);
    }
  }
  const resolved = await resolvePackages(recipe, store, {
    lockSuffix: suffix,
    recipePath: options.recipePath,
    source,
    locked: false,
    offline: false,
    now: options.now,
    mirrors: options.mirrors,
    emit: options.onEvent ?? (() => {}),
    ...(options.update !== undefined ? { update: options.update } : {}),
    ...(options.fetchTimeoutMs ? { fetchTimeoutMs: options.fetchTimeoutMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  return { lock: resolved!.lock, lockPath: resolved!.lockPath, written: resolved!.written };
}

export interface OutdatedReport {
  rows: OutdatedRow[];
  summary: OutdatedSummary;
}

/** Newer versions of the locked packages in the suites as they are now. */
export async function outdatedRecipe(options: LockOptions): Promise<OutdatedReport> {
  const { source, store, declared, lockFile } = await openRecipe(options);
  const lock = await readLock(lockFile.path, lockFile.shown);
  if (lock === undefined)
    throw new NiftyError(
      "NIFTY603",
      `${source.path} has no lock yet`,
      `run \`niftyc lock ${source.path}\` first`,
    );
  const { buildUniverse } = await import("../debian/universe.ts");
  const { findOutdated, summarizeOutdated } = await import("../debian/outdated.ts");
  const { indices } = await fetchIndices(
    store,
    declared.archives,
    archiveMirrors(declared.archives, await options.mirrors()),
    options,
    lock,
  );
  const rows = findOutdated(lock, buildUniverse(indices));
  return { rows, summary: summarizeOutdated(lock, rows) };
}
