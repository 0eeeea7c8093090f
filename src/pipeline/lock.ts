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
import { DEFAULT_PLATFORM, type Platform } from "../image/platform.ts";
import { platformLockSuffix, sameVersions } from "./packages.ts";

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
  | "platform"
  | "platforms"
>;

/** The platforms a lock command covers: --platform's, else linux/amd64. */
function platformsOf(options: LockOptions): readonly Platform[] {
  return options.platforms ?? [options.platform ?? DEFAULT_PLATFORM];
}

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
  const lockOf = (p: Platform) => {
    const own = platformLockSuffix(suffix, p);
    return { path: `${options.recipePath}${own}.lock`, shown: `${source.path}${own}.lock` };
  };
  return { source, store, recipe, warnings, declared, suffix, lockOf };
}

export interface LockResult {
  lock: Lock;
  lockPath: string;
  written: boolean;
  platform: string;
}

/**
 * Resolve and write each platform's lock: `update` re-resolves every package (true) or only those
 * named. Several platforms must agree on every package's version (NIFTY640).
 */
export async function lockRecipe(
  options: LockOptions & { update?: true | readonly string[] },
): Promise<LockResult[]> {
  const opened = await openRecipe(options);
  const results: LockResult[] = [];
  for (const platform of platformsOf(options)) {
    results.push({ ...(await lockPlatform(options, opened, platform)), platform: platform.name });
  }
  const locks = results.map((r, i) => ({ platform: platformsOf(options)[i]!, lock: r.lock }));
  sameVersions(locks, opened.source.path);
  return results;
}

async function lockPlatform(
  options: LockOptions & { update?: true | readonly string[] },
  { source, store, recipe, suffix, lockOf }: Awaited<ReturnType<typeof openRecipe>>,
  platform: Platform,
): Promise<Omit<LockResult, "platform">> {
  const lockFile = lockOf(platform);
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
    platform,
  });
  return { lock: resolved!.lock, lockPath: resolved!.lockPath, written: resolved!.written };
}

export interface OutdatedReport {
  rows: OutdatedRow[];
  summary: OutdatedSummary;
}

/** Newer versions of the locked packages in the suites as they are now: every platform's lock in turn. */
export async function outdatedRecipe(options: LockOptions): Promise<OutdatedReport> {
  const opened = await openRecipe(options);
  const { lazyUniverse } = await import("../debian/lazy-universe.ts");
  const { findOutdated, summarizeOutdated } = await import("../debian/outdated.ts");
  const rows: OutdatedRow[] = [];
  const summaries: OutdatedSummary[] = [];
  for (const platform of platformsOf(options)) {
    const lockFile = opened.lockOf(platform);
    const lock = await readLock(lockFile.path, lockFile.shown);
    if (lock === undefined) {
      const flag = platform === DEFAULT_PLATFORM ? "" : ` --platform ${platform.name}`;
      const hint = `run \`niftyc lock ${opened.source.path}${flag}\` first`;
      throw new NiftyError("NIFTY603", `${lockFile.shown} does not exist yet`, hint);
    }
    const mirrors = archiveMirrors(opened.declared.archives, await options.mirrors());
    const archives = opened.declared.archives;
    const { indices } = await fetchIndices(opened.store, archives, mirrors, { ...options, platform }, lock);
    const found = findOutdated(
      lock,
      lazyUniverse(indices.map((i) => ({ suite: i.suite, index: i.packages }))),
    );
    await Promise.all(indices.map((i) => i.packages.close()));
    rows.push(...found);
    summaries.push(summarizeOutdated(lock, found));
  }
  const worst =
    summaries.find((s) => s.status === "security-updates") ?? summaries.find((s) => s.status === "updates");
  const sum = (k: "locked" | "updates" | "securityUpdates") => summaries.reduce((n, s) => n + s[k], 0);
  const status = worst?.status ?? "current";
  const summary = {
    status,
    locked: sum("locked"),
    updates: sum("updates"),
    securityUpdates: sum("securityUpdates"),
  };
  return { rows, summary };
}
