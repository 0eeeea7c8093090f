// `niftyc lock` and `niftyc outdated`: the lockfile without a build. Lock
// resolves (or moves forward) what the recipe's PACKAGE lines ask for and
// writes <recipe>.lock (<recipe>.<suite>.lock for suites an --arg chose), a
// section per platform; outdated compares the lock with the suites' current
// signed indices and says which packages have newer versions, and whether
// any of those come from a security suite.
import { NiftyError } from "../diagnostics/errors.ts";
import { openStore } from "../cache/store.ts";
import type { Lock } from "../debian/lockfile.ts";
import type { OutdatedRow, OutdatedSummary } from "../debian/outdated.ts";
import { compile, compileWithDefaults } from "./compile.ts";
import { readRecipe } from "../check/source.ts";
import { archiveMirrors, fetchIndices, lockSuffix, packageDeclarations } from "./packages.ts";
import { mirrorNameWarnings } from "./mirror-names.ts";
import { readLockSections, readPlatformLock, resolvePackages, writeResolvedSections } from "./packages.ts";
import type { BuildOptions } from "./types.ts";
import { DEFAULT_PLATFORM, platformOfDebian, type Platform } from "../image/platform.ts";
import { sameVersions } from "./packages.ts";
import { foreignQualifiers } from "../instructions/platform-select.ts";
import { BuildFailed } from "./failure.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";

export type LockOptions = Pick<
  BuildOptions,
  | "recipePath"
  | "shownPath"
  | "args"
  | "cacheDir"
  | "mirrors"
  | "mirrorNames"
  | "now"
  | "fetchTimeoutMs"
  | "strict"
  | "allowSystemBinds"
  | "allowWritableSetuid"
  | "onEvent"
  | "limits"
  | "platform"
  | "platforms"
>;

/** The platforms a lock command covers: --platform's, else every platform the lock has, else linux/amd64. */
async function platformsOf(
  options: LockOptions,
  lockFile: { path: string; shown: string },
): Promise<Platform[]> {
  if (options.platforms !== undefined || options.platform !== undefined)
    return [...(options.platforms ?? [options.platform!])];
  const sections = (await readLockSections(lockFile.path, lockFile.shown)) ?? [];
  const inFile = sections.flatMap((s) => platformOfDebian(s.lock.architecture) ?? []);
  return inFile.length > 0 ? inFile : [DEFAULT_PLATFORM];
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
    allowWritableSetuid: options.allowWritableSetuid === true,
    // A lock names no output: the recipe's name is the build's business.
    nameUses: { machine: false, repository: false },
    recipePath: options.recipePath,
  });
  const declared = packageDeclarations(recipe);
  // Said as notes: lock and outdated print no recipe warnings of their own. Kept under --quiet.
  for (const w of mirrorNameWarnings(recipe, options.mirrorNames, source))
    options.onEvent?.({ type: "note", message: `${w.message} [${w.code}]; ${w.hint}`, warning: true });
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
  const paths = { recipePath: options.recipePath, source };
  return { source, store, recipe, warnings, declared, suffix, lockFile, paths };
}

export interface LockResult {
  lock: Lock;
  lockPath: string;
  written: boolean;
  platform: string;
}

/**
 * Resolve every platform's section, and write them at once: `update` re-resolves every package
 * (true) or only those named. Several platforms must agree on every package's version (NIFTY640)
 * before the lock is written.
 */
export async function lockRecipe(
  options: LockOptions & { update?: true | readonly string[] },
): Promise<LockResult[]> {
  const opened = await openRecipe(options);
  const platforms = await platformsOf(options, opened.lockFile);
  refuseForeignQualifiers(opened, platforms);
  if (Array.isArray(options.update)) await requireLocked(options.update, opened, platforms);
  const resolved = [];
  for (const platform of platforms) resolved.push(await lockPlatform(options, opened, platform));
  sameVersions(
    resolved.map((r, i) => ({ platform: platforms[i]!, lock: r.lock })),
    opened.source.path,
  );
  await writeResolvedSections(resolved, options.onEvent ?? (() => {}));
  return resolved.map((r, i) => ({
    lock: r.lock,
    lockPath: r.lockPath,
    written: r.written,
    platform: platforms[i]!.name,
  }));
}

/**
 * `PACKAGE foo:arm64` for a platform whose image cannot hold it: NIFTY642 at the qualifier, as
 * `niftyc check` and the build say, before anything is resolved or written.
 */
function refuseForeignQualifiers(
  opened: Awaited<ReturnType<typeof openRecipe>>,
  platforms: readonly Platform[],
): void {
  const errors = new Map<string, Omit<Diagnostic, "source">>();
  for (const platform of platforms)
    for (const e of foreignQualifiers(opened.recipe, platform))
      errors.set(`${e.span?.start.offset} ${e.message}`, e);
  if (errors.size > 0)
    throw new BuildFailed([...errors.values()].map((e) => ({ ...e, source: opened.source })));
}

/** `--update NAME…`: every name must be in the section of at least one of the platforms. */
async function requireLocked(
  names: readonly string[],
  opened: Awaited<ReturnType<typeof openRecipe>>,
  platforms: readonly Platform[],
): Promise<void> {
  const known = new Set<string>();
  for (const platform of platforms) {
    const lock = await readPlatformLock(opened.paths, opened.suffix, platform);
    for (const p of lock?.packages ?? []) known.add(p.name);
  }
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length === 0) return;
  const what = `${unknown.join(", ")} ${unknown.length === 1 ? "is" : "are"} not in ${opened.lockFile.shown}`;
  const hint = "name packages the lock holds, or give --update alone to move every package";
  throw new NiftyError("NIFTY609", what, hint);
}

async function lockPlatform(
  options: LockOptions & { update?: true | readonly string[] },
  { source, store, recipe, suffix }: Awaited<ReturnType<typeof openRecipe>>,
  platform: Platform,
) {
  const resolved = await resolvePackages(recipe, store, {
    lockSuffix: suffix,
    recipePath: options.recipePath,
    source,
    locked: false,
    offline: false,
    now: options.now,
    mirrors: options.mirrors,
    emit: options.onEvent ?? (() => {}),
    merge: true,
    deferWrite: true,
    ...(options.update !== undefined ? { update: options.update } : {}),
    ...(options.fetchTimeoutMs ? { fetchTimeoutMs: options.fetchTimeoutMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    platform,
  });
  return resolved!;
}

/**
 * NIFTY603 for a platform outdated finds no lock for: the file is missing, or it lacks that
 * platform's section (a plain `niftyc lock` would lock only the platforms it has: --platform is named).
 */
async function notLocked(
  opened: Awaited<ReturnType<typeof openRecipe>>,
  platform: Platform,
): Promise<NiftyError> {
  const { path, shown } = opened.lockFile;
  const exists = (await readLockSections(path, shown)) !== undefined;
  const flag = exists || platform !== DEFAULT_PLATFORM ? ` --platform ${platform.name}` : "";
  const what = exists ? `${shown} has no section for ${platform.name} yet` : `${shown} does not exist yet`;
  return new NiftyError("NIFTY603", what, `run \`niftyc lock ${opened.source.path}${flag}\` first`);
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
  for (const platform of await platformsOf(options, opened.lockFile)) {
    const lock = await readPlatformLock(opened.paths, opened.suffix, platform, opened.store);
    if (lock === undefined) throw await notLocked(opened, platform);
    const mirrors = archiveMirrors(opened.declared.archives, await options.mirrors());
    const archives = opened.declared.archives;
    const net = { ...options, platform, source: opened.source };
    const { indices } = await fetchIndices(opened.store, archives, mirrors, net, lock);
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
