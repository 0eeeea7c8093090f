// The stage between checking and planning for recipes with PACKAGE lines:
// the lockfile beside the recipe says which packages, pinned by digest. When
// it covers the recipe it is used as it is, without any index; otherwise the
// suites' signed indices are fetched and verified, the closure resolved, and
// the lock written (or, with --locked, the build refuses).
import { rm } from "node:fs/promises";
import type { SourceFile, Span } from "../core/source.ts";
import type { HostInputs } from "../core/host-inputs.ts";
import type { Limits } from "../core/limits.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { writeFileAtomic } from "../core/atomic.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Store } from "../cache/store.ts";
import { specFor } from "../instructions/index.ts";
import type { Recipe } from "../instructions/recipe.ts";
import type { ArchiveDecl, PackageAsk } from "../instructions/spec.ts";
import {
  lockCovers,
  lockFromResolution,
  lockRequestText,
  parseLock,
  serializeLock,
  serializeLocks,
} from "../debian/lockfile.ts";
import type { Lock, LockedPackage, LockedSuite, LockRequest, LockSection } from "../debian/lockfile.ts";
import type { LockProblem } from "../debian/lock-check.ts";
import type { Field } from "../debian/fields.ts";
import type { DebContents } from "../debian/deb.ts";
import { digestHex } from "../cache/store.ts";
import { hashText } from "./keys.ts";
import { readLockBytes } from "./lock-file.ts";
import { Gate, largestFirst } from "../core/gate.ts";
import type { PackageRecord, SuiteRef } from "../debian/types.ts";
import type { PackageIndex } from "../debian/package-index.ts";
import { asDiagnostic, BuildFailed } from "./failure.ts";
import type { BuildEvent, FetchProgressEvent } from "./types.ts";
import { platformOfDebian, type Platform } from "../image/platform.ts";

/** The default image's Debian architecture. */
export const ARCHITECTURE = "amd64";

/** The Debian architecture a build resolves for. */
function archOf(options: { platform?: Platform }): string {
  return options.platform?.debian ?? ARCHITECTURE;
}

/**
 * Where a platform's lock was kept before one file held every platform's section:
 * `<recipe>[.<suite>].<debian arch>.lock` (ssh.nifty.arm64.lock). Read when the lock lacks the
 * platform; `niftyc lock` (or a build that resolves the platform) merges it and removes it.
 */
export function legacyLockSuffix(suffix: string, platform: Platform | undefined): string | undefined {
  return platform === undefined || platform.debian === ARCHITECTURE
    ? undefined
    : `${suffix}.${platform.debian}`;
}

export interface PackageOptions {
  recipePath: string;
  /** The recipe as read, named as messages show it. */
  source: SourceFile;
  /** Refuse to change the lock (CI). */
  locked: boolean;
  /** Re-resolve: every package (true), or these names, from the current indices. */
  update?: true | readonly string[];
  offline: boolean;
  /** The time Valid-Until is checked against: read once by the CLI, never reaching an artifact. */
  now: Date;
  mirrors: () => Promise<Record<string, string[]>>;
  fetchTimeoutMs?: number;
  /** --limit: the InRelease's and the Packages index's sizes. */
  limits?: Limits;
  /**
   * A build: the lock check reads each .deb whole (its files into the store) as it arrives, which the
   * PACKAGE step would do next; `niftyc lock` reads only their controls.
   */
  readDebs?: boolean;
  emit: (event: BuildEvent) => void;
  /** Told how the lock was when read; a build that resolves against the archive is not one to recall. */
  hostInputs?: HostInputs;
  /** Between the recipe's name and ".lock": "" or, for suites an --arg chose, ".<suite>" (see `lockSuffix`). */
  lockSuffix?: string;
  /** The platform whose packages are resolved (default linux/amd64), into its own section of the lock. */
  platform?: Platform;
  /** `niftyc lock`: write the platform's section even when it is used as it is (merging an old per-platform file). */
  merge?: boolean;
  /** Leave writing the lock to the caller (`niftyc lock` writes every platform's section at once, once they agree). */
  deferWrite?: boolean;
}

export interface ResolvedPackages {
  /** This platform's section of the lock. */
  lock: Lock;
  lockPath: string;
  /** The lock file as messages name it. */
  lockShown: string;
  /** Whether this build wrote the lock (with deferWrite: whether the section is new or changed). */
  written: boolean;
  /** The old per-platform file the section came from, to remove once it is merged. */
  legacy?: { path: string; shown: string };
  /** Archive roots by archive name: the recipe's URL, else the mirrors. */
  mirrors: () => Promise<Record<string, string[]>>;
  /** The locked packages in the closure of these request texts. */
  closure(requests: readonly string[]): LockedPackage[];
  /** The .debs the lock check read whole in this build (`readDebs`), by digest: the PACKAGE step need not read them again. */
  read: ReadonlyMap<string, DebContents>;
}

/**
 * Every platform's lock must hold the same version of each package it shares with another (as
 * apko does): NIFTY640 for each that differs, naming the versions and the platforms.
 */
export function sameVersions(locks: ReadonlyArray<{ platform: Platform; lock: Lock }>, shown: string): void {
  const versions = new Map<string, Map<string, string[]>>();
  for (const { platform, lock } of locks) {
    for (const p of lock.packages) {
      const byVersion = versions.get(p.name) ?? versions.set(p.name, new Map()).get(p.name)!;
      byVersion.set(p.version, [...(byVersion.get(p.version) ?? []), platform.name]);
    }
  }
  const differ = [...versions].filter(([, byVersion]) => byVersion.size > 1);
  if (differ.length === 0) return;
  const all = locks.map((l) => l.platform.name).join(",");
  throw new BuildFailed(
    differ.map(
      ([name, byVersion]): Diagnostic => ({
        severity: "error",
        code: "NIFTY640",
        message:
          `${name} has another version on each platform: ` +
          [...byVersion].map(([version, on]) => `${version} on ${on.join(", ")}`).join("; "),
        hint:
          `every platform gets the same version of a package: \`niftyc lock ${shown} --platform ${all} ` +
          `--update ${name}\` once the suites agree, or pin it: PACKAGE ${name} (= <version>)`,
      }),
    ),
  );
}

/** What the recipe declares: archives in order, and every PACKAGE line's requests. */
export function packageDeclarations(recipe: Recipe): { archives: ArchiveDecl[]; asks: PackageAsk[] } {
  return {
    archives: recipe.instructions.flatMap((i) => specFor(i).archive?.(i) ?? []),
    asks: recipe.instructions.flatMap((i) => specFor(i).packages?.(i) ?? []),
  };
}

export async function resolvePackages(
  recipe: Recipe,
  store: Store,
  options: PackageOptions,
): Promise<ResolvedPackages | undefined> {
  const { archives, asks } = packageDeclarations(recipe);
  if (asks.length === 0) return undefined;
  const suffix = options.lockSuffix ?? "";
  const lockPath = `${options.recipePath}${suffix}.lock`;
  const shown = `${options.source.path}${suffix}.lock`;
  const suites = archives.flatMap((a) => a.suites);
  const requests = uniqueRequests(asks.flatMap((a) => a.requests));
  let loaded: Promise<Record<string, string[]>> | undefined;
  const mirrors = (): Promise<Record<string, string[]>> =>
    (loaded ??= options.mirrors().then((known) => archiveMirrors(archives, known)));

  const file = await readLockFile(lockPath, shown, options.hostInputs);
  const found = await platformSection(file, options, suffix);
  const previous = found?.section.lock;
  const fit =
    previous !== undefined && options.update === undefined
      ? coverage(previous, requests, suites)
      : { covered: false as const, why: "update", names: [] };
  const legacy = found?.legacy ? { legacy: { path: found.path, shown: found.shown } } : {};
  const make = (
    lock: Lock,
    written: boolean,
    read: ReadonlyMap<string, DebContents> = new Map(),
  ): ResolvedPackages => ({
    lock,
    lockPath,
    lockShown: shown,
    written,
    mirrors,
    closure: (texts) => lock.packages.filter((p) => p.requestedBy.some((r) => texts.includes(r))),
    read,
    ...legacy,
  });
  if (fit.covered) {
    const read = await checkLock(store, found!, { ...options, mirrors });
    if (found!.legacy && options.merge) return make(previous!, await finishWrite(previous!, true), read);
    if (found!.legacy) options.emit({ type: "note", message: legacyNote(found!.shown, shown, options) });
    return make(previous!, false, read);
  }
  options.hostInputs?.distrust("the packages were resolved against the archive");
  if (options.locked) throw lockedError(options, asks, fit, { file, found, shown }, archives);
  // The previous lock's dates are the floor the suites are read against (NIFTY632).
  if (found !== undefined) await checkSuiteDates(store, found);
  const lock = await resolveLock(store, options, { archives, asks, suites, requests, mirrors, previous });
  // Made now from the verified indices: what checkLock would find, so a build that uses it as it is
  // need not read a package.
  await store.writeRecord("debian-lock-checked", (await lockCheckKey(store, lock)).key, true);
  // Resolved again to the very same lock (an --update with nothing newer): the file stays as it is.
  const same = previous !== undefined && serializeLock(previous) === serializeLock(lock);
  return make(same ? previous : lock, await finishWrite(lock, !same || found?.legacy === true));

  /** Write the section (unless the caller does), and say whether it changed. */
  async function finishWrite(section: Lock, changed: boolean): Promise<boolean> {
    if (!changed) return false;
    if (options.deferWrite) return true;
    const legacy = found?.legacy ? [{ path: found.path, shown: found.shown }] : [];
    return writeLockSections({ path: lockPath, shown }, [section], options.emit, legacy);
  }
}

/** The note a build gives when it reads a platform's section from an old per-platform file. */
function legacyNote(legacy: string, shown: string, options: PackageOptions): string {
  const platform = options.platform!.name;
  return (
    `read ${legacy} as ${platform}'s section of ${shown}: ` +
    `\`niftyc lock ${options.source.path} --platform ${platform}\` merges it into ${shown} and removes it`
  );
}

/** --locked, and the lock does not cover the recipe: NIFTY641 when it lacks the platform, else NIFTY603. */
function lockedError(
  options: PackageOptions,
  asks: readonly PackageAsk[],
  fit: { why: string; names: string[]; suites?: true },
  at: { file: LockFile | undefined; found: FoundSection | undefined; shown: string },
  archives: readonly ArchiveDecl[],
): BuildFailed {
  // Point at the ARCHIVE line when the suites moved, at the line that asks for what the lock
  // lacks, else at the first PACKAGE line.
  const ask = asks.find((a) => a.requests.some((r) => fit.names.includes(lockRequestText(r)))) ?? asks[0]!;
  const where = { source: options.source, span: fit.suites && archives[0] ? archives[0].span : ask.span };
  if (at.file !== undefined && at.found === undefined) {
    const platform = options.platform?.name ?? "linux/amd64";
    const has = at.file.sections.map(
      (s) => platformOfDebian(s.lock.architecture)?.name ?? s.lock.architecture,
    );
    return new BuildFailed([
      {
        severity: "error",
        code: "NIFTY641",
        message: `--locked, but ${at.shown} has no section for ${platform} (it has ${has.join(", ")})`,
        ...where,
        hint: `run \`niftyc lock ${options.source.path} --platform ${platform}\` and commit the lock, or build without --locked`,
      },
    ]);
  }
  const why = at.found === undefined ? `there is no ${at.shown}` : `${at.found.shown} ${fit.why}`;
  return new BuildFailed([
    {
      severity: "error",
      code: "NIFTY603",
      message: `--locked, but ${why}`,
      ...where,
      hint: `run \`niftyc lock ${options.source.path}\` and commit the lock, or build without --locked`,
    },
  ]);
}

/**
 * Write the sections resolved with `deferWrite` (one recipe's lock, a platform each) at once: the
 * new or changed ones, once the platforms agree (`sameVersions`). Says whether the file changed.
 */
export async function writeResolvedSections(
  resolved: readonly ResolvedPackages[],
  emit: (event: BuildEvent) => void,
): Promise<boolean> {
  const changed = resolved.filter((r) => r.written);
  if (changed.length === 0) return false;
  const file = { path: changed[0]!.lockPath, shown: changed[0]!.lockShown };
  const legacy = changed.flatMap((r) => r.legacy ?? []);
  return writeLockSections(
    file,
    changed.map((r) => r.lock),
    emit,
    legacy,
  );
}

/**
 * Put these platforms' sections into the lock file, keeping every other section as it is, and
 * remove the old per-platform files they were merged from. Says whether the file changed.
 */
export async function writeLockSections(
  lock: { path: string; shown: string },
  sections: readonly Lock[],
  emit: (event: BuildEvent) => void,
  legacy: ReadonlyArray<{ path: string; shown: string }> = [],
): Promise<boolean> {
  const before = await readLockFile(lock.path, lock.shown);
  const mine = new Set(sections.map((s) => s.architecture));
  const kept = (before?.sections ?? []).map((s) => s.lock).filter((l) => !mine.has(l.architecture));
  const text = serializeLocks([...kept, ...sections]);
  const changed = before?.text !== text;
  if (changed) await writeFileAtomic(lock.path, text);
  for (const old of legacy) await rm(old.path, { force: true });
  for (const section of sections) {
    const was = before?.sections.find((s) => s.lock.architecture === section.architecture)?.lock;
    if (was !== undefined && serializeLock(was) === serializeLock(section)) continue;
    const count = section.packages.length;
    const on =
      sections.length > 1 || section.architecture !== ARCHITECTURE ? ` (${section.architecture})` : "";
    const packages = `${count} package${count === 1 ? "" : "s"}`;
    const from = section.suites.map((s) => s.suite).join(", ");
    emit({
      type: "note",
      message: `${was === undefined ? "wrote" : "updated"} ${lock.shown}${on}: ${packages} from ${from}`,
      wrote: true,
    });
  }
  for (const old of legacy)
    emit({ type: "note", message: `merged ${old.shown} into ${lock.shown} and removed it`, wrote: true });
  return changed || legacy.length > 0;
}

/**
 * Which lock a build uses, as the part between the recipe's name and ".lock". `<recipe>.lock`
 * pins the suites the ARCHIVE lines name with the recipe's ARG defaults; when `--arg` values make
 * them name other suites (ARG SUITE=bookworm, built with --arg SUITE=trixie), those have a lock of
 * their own, `<recipe>.<first suite>.lock`, so switching suites never rewrites the other's lock.
 * `defaults` checks the recipe without any --arg (undefined when it does not check that way).
 */
export async function lockSuffix(
  recipe: Recipe,
  args: ReadonlyMap<string, string> | undefined,
  defaults: () => Promise<Recipe | undefined>,
): Promise<string> {
  const suitesOf = (r: Recipe): SuiteRef[] => packageDeclarations(r).archives.flatMap((a) => a.suites);
  const suites = suitesOf(recipe);
  if (args === undefined || args.size === 0 || suites.length === 0) return "";
  const plain = await defaults();
  if (plain !== undefined && sameSuites(suitesOf(plain), suites)) return "";
  return `.${suites[0]!.suite.replace(/[^A-Za-z0-9.+~-]/g, "_")}`;
}

function uniqueRequests(requests: readonly LockRequest[]): LockRequest[] {
  return [...new Map(requests.map((r) => [lockRequestText(r), r])).values()];
}

function sameSuites(a: readonly SuiteRef[], b: readonly SuiteRef[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (s, i) => s.archive === b[i]!.archive && s.suite === b[i]!.suite && s.component === b[i]!.component,
    )
  );
}

/** Whether the lock still fits the recipe, and if not why, with the requests at fault. */
function coverage(
  lock: Lock,
  requests: readonly LockRequest[],
  suites: readonly SuiteRef[],
): { covered: true } | { covered: false; why: string; names: string[]; suites?: true } {
  if (!sameSuites(lock.suites, suites))
    return {
      covered: false,
      why: "was resolved against other suites than the recipe's ARCHIVE lines",
      names: [],
      suites: true,
    };
  const covers = lockCovers(lock, requests);
  if (covers.covered) return { covered: true };
  const changed = covers.changed.map((c) => c.name);
  const parts = [
    covers.missing.length ? `lacks ${covers.missing.join(", ")}` : "",
    covers.extra.length ? `still has ${covers.extra.join(", ")}` : "",
    changed.length ? `has other versions for ${changed.join(", ")}` : "",
  ].filter(Boolean);
  return {
    covered: false,
    why: parts.join("; "),
    names: [...covers.missing, ...covers.changed.flatMap((c) => c.requested)],
  };
}

/** The lock file at `path` (every section), or undefined when there is none; a malformed one is an error at its line. */
export async function readLockSections(
  path: string,
  shown: string,
  inputs?: HostInputs,
): Promise<LockSection[] | undefined> {
  return (await readLockFile(path, shown, inputs))?.sections;
}

/** The lock file's sections and its text. */
interface LockFile {
  sections: LockSection[];
  text: string;
}

/**
 * A platform's section of the recipe's lock (or of its old per-platform file), for `outdated`;
 * undefined when neither has it.
 */
export async function readPlatformLock(
  recipe: { recipePath: string; source: SourceFile },
  suffix: string,
  platform: Platform,
  store?: Store,
): Promise<Lock | undefined> {
  const path = `${recipe.recipePath}${suffix}.lock`;
  const file = await readLockFile(path, `${recipe.source.path}${suffix}.lock`);
  const found = await platformSection(file, { ...recipe, platform }, suffix);
  // With the store, the header's dates are checked: outdated reads the suites against them.
  if (found !== undefined && store !== undefined) await checkSuiteDates(store, found);
  return found?.section.lock;
}

/** One platform's section, and the file it was read from (an old per-platform file when `legacy`). */
interface FoundSection {
  section: LockSection;
  text: string;
  path: string;
  shown: string;
  legacy: boolean;
}

/** The platform's section of the lock, else of its old per-platform file (`legacyLockSuffix`), else undefined. */
async function platformSection(
  file: LockFile | undefined,
  options: Pick<PackageOptions, "recipePath" | "source" | "platform" | "hostInputs">,
  suffix: string,
): Promise<FoundSection | undefined> {
  const arch = archOf(options);
  const path = `${options.recipePath}${suffix}.lock`;
  const shown = `${options.source.path}${suffix}.lock`;
  const own = file?.sections.find((s) => s.lock.architecture === arch);
  if (own !== undefined) return { section: own, text: file!.text, path, shown, legacy: false };
  const old = legacyLockSuffix(suffix, options.platform);
  if (old === undefined) return undefined;
  const legacy = { path: `${options.recipePath}${old}.lock`, shown: `${options.source.path}${old}.lock` };
  const read = await readLockFile(legacy.path, legacy.shown, options.hostInputs);
  const section = read?.sections.find((s) => s.lock.architecture === arch);
  return section === undefined ? undefined : { section, text: read!.text, ...legacy, legacy: true };
}

/** A diagnostic at a line of the lock. */
function lockDiagnostic(
  code: Diagnostic["code"],
  line: number,
  message: string,
  text: string,
  shown: string,
  hint: string,
): Diagnostic {
  const lines = text.split("\n");
  const width = Math.max(1, (lines[line - 1] ?? "").length);
  const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  const span = {
    start: { offset, line, column: 1 },
    end: { offset: offset + width, line, column: width + 1 },
  };
  return { severity: "error", code, message, source: { path: shown, text }, span, hint };
}

async function readLockFile(path: string, shown: string, inputs?: HostInputs): Promise<LockFile | undefined> {
  const bytes = await readLockBytes(path, shown, inputs && ((stats) => inputs.file(path, stats)));
  if (bytes === undefined) {
    inputs?.absent(path);
    return undefined;
  }
  const text = bytes.toString("utf8");
  const parsed = parseLock(text);
  if (parsed.ok) return { sections: parsed.sections, text };
  const hint = "the lock is written by niftyc: delete it and run `niftyc lock` again";
  throw new BuildFailed(
    parsed.errors.map((e) => lockDiagnostic("NIFTY604", e.line, e.message, text, shown, hint)),
  );
}

/**
 * A lock used as it is must name what the image gets (src/debian/lock-check.ts):
 * each .deb's control against its stanza, the closure from the requests, and
 * each stanza against its suite's signed index when that is in the store. A
 * lock found good is remembered by its text and the indices it was checked
 * against, so a warm build reads no package again.
 */
async function checkLock(
  store: Store,
  found: FoundSection,
  options: PackageOptions,
): Promise<ReadonlyMap<string, DebContents>> {
  const { lock } = found.section;
  const { key, indices } = await lockCheckKey(store, lock);
  const shared = { downloads: new Gate(DEBS_DOWNLOADED_AT_ONCE), read: new Map<string, DebContents>() };
  if ((await store.readRecord<boolean>("debian-lock-checked", key)) === true) return shared.read;
  await checkSuiteDates(store, found);
  const check = await import("../debian/lock-check.ts");
  const problems: Array<LockProblem & { code: "NIFTY629" | "NIFTY630" | "NIFTY631" }> = [];
  // The signed indices first: a stanza whose Filename, Size or SHA256 is not its signed record's (edited
  // by hand) is the lock's error, at its line, and its .deb is neither downloaded nor, offline, asked
  // for by a digest the archive never signed for it (which would blame the mirror for the lock's edit).
  const { openParsedIndex } = await import("../debian/index.ts");
  for (const [i, suite] of lock.suites.entries()) {
    const stored = indices[i] === undefined ? undefined : await openParsedIndex(store, indices[i]!, suite);
    if (stored === undefined) continue;
    const mine = lock.packages.filter((p) => sameSuites([p.from], [suite]));
    // Only the locked names' records are decoded: the check looks a stanza up by name and architecture.
    const records = [...new Set(mine.map((p) => p.name))].flatMap((name) => stored.packages.recordsOf(name));
    await stored.packages.close();
    problems.push(...check.indexProblems(mine, records).map((p) => ({ ...p, code: "NIFTY631" as const })));
  }
  const unsigned = new Set(
    problems.filter((p) => ["Filename", "Size", "SHA256"].includes(p.field)).map((p) => p.key),
  );
  // The other .debs are downloaded and read several at once, their problems listed in the lock's order.
  const read = lock.packages.filter((p) => !unsigned.has(check.lockKey(p)));
  const missing = options.offline ? await missingOffline(store, found, read) : [];
  if (missing.length > 0) throw new BuildFailed([...lockFailed(found, problems).diagnostics, ...missing]);
  let mirrors: ReturnType<PackageOptions["mirrors"]> | undefined;
  const once = { ...options, mirrors: () => (mirrors ??= options.mirrors()) };
  const reading = largestFirst(
    read,
    (p) => p.size,
    (p) => debControl(store, p, once, shared),
  );
  for (const pending of reading) pending.catch(() => {});
  const controls = new Map<string, Field[]>();
  for (const [i, p] of read.entries()) {
    const control = await reading[i]!;
    controls.set(check.lockKey(p), control);
    const wrong = check.identityProblem(p, control);
    if (wrong) problems.push({ ...wrong, code: "NIFTY629" });
  }
  if (problems.length === 0) {
    problems.push(...check.closureProblems(lock, controls).map((p) => ({ ...p, code: "NIFTY630" as const })));
  }
  if (problems.length > 0) throw lockFailed(found, problems);
  await store.writeRecord("debian-lock-checked", key, true);
  return shared.read;
}

/** The lock's problems, each at its line of the lock. */
function lockFailed(
  found: FoundSection,
  problems: ReadonlyArray<LockProblem & { code: "NIFTY629" | "NIFTY630" | "NIFTY631" }>,
): BuildFailed {
  const { lines, requestsLine } = found.section;
  const hint =
    "the lock no longer says what its packages are (edited by hand, or tampered with): " +
    "restore it from version control, or delete it and run `niftyc lock` again";
  const fieldLine = (p: LockProblem) =>
    (lines.get(p.key)?.fields as Record<string, number | undefined> | undefined)?.[p.field];
  const at = (p: LockProblem) =>
    p.key === "" ? requestsLine : (fieldLine(p) ?? lines.get(p.key)?.stanza ?? 1);
  return new BuildFailed(
    problems.map((p) => lockDiagnostic(p.code, at(p), p.message, found.text, found.shown, hint)),
  );
}

/**
 * The header's date of each suite against the signed InRelease its digest names, where that is in
 * the store: a date edited by hand would otherwise pass a build and become the floor `outdated` and
 * `lock --update` refuse anything older than (a false NIFTY632 rollback).
 */
async function checkSuiteDates(store: Store, found: FoundSection): Promise<void> {
  const { signedReleaseDate, parseReleaseDate } = await import("../debian/release.ts");
  const wrong: Diagnostic[] = [];
  for (const s of found.section.lock.suites) {
    const blob = await store.stat(s.inRelease);
    if (blob === undefined) continue;
    const signed = await signedReleaseDate(blob.path).catch(() => undefined);
    if (signed === undefined || parseReleaseDate(s.date)?.getTime() === signed.getTime()) continue;
    const label = `${s.archive} ${s.suite} ${s.component}`;
    const line = found.section.suiteLines.get(label) ?? 1;
    const message =
      `the lock says the InRelease of ${s.archive} ${s.suite} is dated ${s.date}, ` +
      `but the signed InRelease it names (${s.inRelease}) is dated ${debianDate(signed)}`;
    const hint =
      "the lock's header was edited by hand: restore it from version control, or delete it and run `niftyc lock` again";
    wrong.push(lockDiagnostic("NIFTY633", line, message, found.text, found.shown, hint));
  }
  if (wrong.length > 0) throw new BuildFailed(wrong);
}

/**
 * NIFTY102 for each locked .deb the lock check would have to download (neither it nor its control
 * is in the store), at its SHA256 line of the lock: offline, an air-gapped user learns every file to
 * bring in one go, not one per build.
 */
async function missingOffline(
  store: Store,
  found: FoundSection,
  packages: readonly LockedPackage[],
): Promise<Diagnostic[]> {
  const absent = [];
  for (const p of packages) {
    if (await store.has(p.sha256)) continue;
    if ((await store.readRecord("deb-control", digestHex(p.sha256))) === undefined) absent.push(p);
  }
  const { lines } = found.section;
  const hint =
    `copy ${absent.length === 1 ? "the file" : `these ${absent.length} files`} to this machine (each from the ` +
    "archive's pool path named, with the sha256 its lock line gives), run `niftyc cache import <file>...`, " +
    "then build with --offline again";
  return absent.map((p) => {
    const at = lines.get(`${p.name}:${p.architecture}`);
    const message =
      `${p.name}_${p.version}_${p.architecture}.deb (${p.filename}, ${p.sha256}) is not in the cache, ` +
      "and offline mode forbids downloading it";
    return lockDiagnostic(
      "NIFTY102",
      at?.fields.SHA256 ?? at?.stanza ?? 1,
      message,
      found.text,
      found.shown,
      hint,
    );
  });
}

/** .debs downloaded at once: as many as the download pool keeps connections to a mirror. */
const DEBS_DOWNLOADED_AT_ONCE = 6;

/**
 * What a lock section's check is remembered by: its text as a lock of its own (an amd64-only lock's
 * whole file) and the signed indices in the store it was checked against. Another platform's
 * section added to the file leaves it as it was.
 */
async function lockCheckKey(
  store: Store,
  lock: Lock,
): Promise<{ key: string; indices: Array<string | undefined> }> {
  const text = serializeLock(lock);
  const indexOf = async (s: LockedSuite) => {
    const key = hashText(s.inRelease, s.component, lock.architecture);
    const record = await store.readRecord<{ index: string }>("debian-release-index", key);
    return record?.index;
  };
  const indices = await Promise.all(lock.suites.map(indexOf));
  return { key: hashText(text, ...indices.map((i) => i ?? "")), indices };
}

/**
 * A locked package's control stanza: from the store's record, else read from its .deb (downloaded
 * when absent). In a build (`readDebs`) the .deb is read whole there and then (its files into the
 * store, its contents kept by its digest, as the PACKAGE step reads it), so a cold build decompresses
 * one package while the next are downloaded, and the step finds every package read. A .deb whose
 * data cannot be read still gives its control: the step reports the data's problem at its line.
 */
async function debControl(
  store: Store,
  p: LockedPackage,
  options: PackageOptions,
  shared: { downloads: Gate; read: Map<string, DebContents> },
): Promise<Field[]> {
  const known = await store.readRecord<Field[]>("deb-control", digestHex(p.sha256));
  if (known !== undefined) return known;
  if (!(await store.has(p.sha256))) {
    // The reader threads start while the first .debs download (a thread takes about 50 ms to start).
    if (options.readDebs) (await import("../cache/threads.ts")).startThreads();
    const { fetchDeb } = await import("../debian/index.ts");
    const mirrors = await options.mirrors();
    const timeout = options.fetchTimeoutMs ? { timeoutMs: options.fetchTimeoutMs } : {};
    await shared.downloads.run(() => fetchDeb(store, p, { mirrors, offline: options.offline, ...timeout }));
  }
  const { readDeb, readDebControl } = await import("../debian/deb.ts");
  const what = `${p.name} ${p.version} (${p.architecture})`;
  const whole = options.readDebs
    ? await readDeb(store, p.sha256, what, options.limits).catch(() => undefined)
    : undefined;
  if (whole !== undefined) {
    const { fromCache: _, ...contents } = whole;
    shared.read.set(p.sha256, contents);
  }
  const control =
    whole?.control ??
    (await readDebControl(store.blobPath(p.sha256), `the .deb of ${p.name} ${p.version} (${p.sha256})`));
  await store.writeRecord("deb-control", digestHex(p.sha256), control);
  return control;
}

interface ResolveInput {
  archives: ArchiveDecl[];
  asks: PackageAsk[];
  suites: SuiteRef[];
  requests: LockRequest[];
  mirrors: () => Promise<Record<string, string[]>>;
  previous: Lock | undefined;
}

/** Fetch and verify every suite's index, resolve the closure, and make the lock. */
async function resolveLock(store: Store, options: PackageOptions, input: ResolveInput): Promise<Lock> {
  const { lazyUniverse } = await import("../debian/lazy-universe.ts");
  const { resolve } = await import("../debian/resolve.ts");
  if (options.offline) {
    throw new NiftyError(
      "NIFTY603",
      input.previous === undefined &&
        options.platform !== undefined &&
        options.platform.name !== "linux/amd64"
        ? `--offline, but the lock has no section for ${options.platform.name}, so the archive's indices are needed`
        : "--offline, but the lock does not cover the recipe's PACKAGE lines, so the archive's indices are needed",
      // lock without --platform resolves only the platforms the lock has already.
      `resolve once with the network: \`niftyc lock ${options.source.path}${options.platform !== undefined && options.platform.name !== "linux/amd64" ? ` --platform ${options.platform.name}` : ""}\``,
    );
  }
  const { locked, indices } = await fetchIndices(
    store,
    input.archives,
    await input.mirrors(),
    options,
    input.previous,
  );
  const keep = keepLocked(input.previous, options.update);
  const universe = lazyUniverse(
    indices.map((i) => ({ suite: i.suite, index: i.packages, ...(keep ? { keep } : {}) })),
  );
  // A request's own word, where the line's words are known.
  const spans = new Map(
    input.asks.flatMap((a) =>
      a.requests.map((r) => [lockRequestText(r), a.requestSpan?.[lockRequestText(r)] ?? a.span] as const),
    ),
  );
  const arch = archOf(options);
  const asked = input.requests.map((r) => ({ ...r, origin: spans.get(lockRequestText(r))! }));
  const result = resolve(universe, asked, { arch });
  // The stored indices' files: resolve has read every row it needs.
  await Promise.all(indices.map((i) => i.packages.close()));
  if (!result.ok) {
    const source = options.source;
    // Which platform could not be resolved, when it is not the default one.
    const on = options.platform && arch !== ARCHITECTURE ? `${options.platform.name} (${arch}): ` : "";
    throw new BuildFailed(
      result.errors.map(
        (e): Diagnostic => ({
          severity: "error",
          code:
            e.code === "unknown-package"
              ? "NIFTY600"
              : e.code === "conflicting-constraints"
                ? "NIFTY602"
                : "NIFTY601",
          message: `${on}${e.message}`,
          source,
          span: (e.origins[0] as Span | undefined) ?? input.asks[0]!.span,
          ...(e.code === "unknown-package" && e.suggestions.length > 0
            ? { hint: `did you mean ${e.suggestions.join(", ")}?` }
            : e.code === "unknown-package"
              ? {
                  hint: `no suite of ${input.suites.map((s) => `${s.archive} ${s.suite}`).join(", ")} has it; check the name, or add the suite that has it to ARCHIVE`,
                }
              : {}),
        }),
      ),
    );
  }
  return lockFromResolution(result.resolution, {
    architecture: arch,
    suites: locked,
    requests: input.requests,
  });
}

/** Every suite's verified InRelease and parsed index, in the recipe's order. */
export async function fetchIndices(
  store: Store,
  archives: readonly ArchiveDecl[],
  mirrors: Record<string, string[]>,
  options: Pick<PackageOptions, "now" | "fetchTimeoutMs" | "limits" | "platform"> & {
    emit?: PackageOptions["emit"];
    /** The recipe: a suite's failure is shown at its ARCHIVE line. */
    source?: SourceFile;
  },
  previous?: Lock,
): Promise<{ locked: LockedSuite[]; indices: Array<{ suite: SuiteRef; packages: PackageIndex }> }> {
  const { fetchRelease, parseReleaseDate } = await import("../debian/release.ts");
  const { loadPackages } = await import("../debian/index.ts");
  const net = options.fetchTimeoutMs ? { timeoutMs: options.fetchTimeoutMs } : {};
  const release = (archive: ArchiveDecl, ref: SuiteRef) => {
    const was = previous?.suites.find((s) => sameSuites([s], [ref]));
    const notBefore = was === undefined ? undefined : parseReleaseDate(was.date);
    const keyring = archive.keyring ? { keyring: archive.keyring } : {};
    const limit = options.limits ? { maxBytes: options.limits.inReleaseBytes } : {};
    const floor = notBefore ? { notBefore } : {};
    return fetchRelease(store, ref, { mirrors, now: options.now, ...floor, ...keyring, ...limit, ...net });
  };
  // Every suite's InRelease fetched and verified, and its index loaded, at once: each parse goes
  // straight into the compact stored form, so reading several together no longer holds several
  // sets of records. Taken (and a failure reported) in the recipe's order.
  const refs = archives.flatMap((archive) => archive.suites.map((ref) => ({ archive, ref })));
  const indexLimit = options.limits ? { maxBytes: options.limits.indexBytes } : {};
  // A download's progress, for a live line on a terminal (a log shows none: no "fetched" line is
  // sent, so a build's log stays as it was).
  const emit = options.emit;
  const progress = emit
    ? { onProgress: (p: FetchProgressEvent) => emit({ type: "fetch-progress", progress: p }) }
    : {};
  const load = async (archive: ArchiveDecl, ref: SuiteRef) => {
    const verified = await release(archive, ref);
    const loaded = await loadPackages(store, verified, archOf(options), {
      ...net,
      ...indexLimit,
      ...progress,
    });
    // Which index this signed InRelease names: a lock resolved against it is checked against it (checkLock).
    const indexKey = hashText(verified.inRelease, ref.component, archOf(options));
    const known = await store.readRecord<{ index: string }>("debian-release-index", indexKey);
    // Written once per InRelease: a warm resolve does not pay a synced write to say it again.
    if (known?.index !== loaded.index.sha256)
      await store.writeRecord("debian-release-index", indexKey, { index: loaded.index.sha256 });
    return { verified, loaded };
  };
  const pending = refs.map(({ archive, ref }) => load(archive, ref));
  for (const p of pending) p.catch(() => {});
  // One suite failed: the others' stored indices are let go of before the failure is reported.
  Promise.all(pending).catch(async () => {
    for (const r of await Promise.allSettled(pending))
      if (r.status === "fulfilled") await r.value.loaded.packages.close();
  });
  const locked: LockedSuite[] = [];
  const indices: Array<{ suite: SuiteRef; packages: PackageIndex }> = [];
  for (const [i, { archive, ref }] of refs.entries()) {
    const { verified, loaded } = await pending[i]!.catch((error: unknown) => {
      throw atArchiveLine(error, archive, options.source);
    });
    indices.push({ suite: ref, packages: loaded.packages });
    locked.push({ ...ref, date: debianDate(verified.date), inRelease: verified.inRelease });
  }
  return { locked, indices };
}

/** A suite's InRelease or index that could not be had, shown at the ARCHIVE line that names the suite. */
function atArchiveLine(error: unknown, archive: ArchiveDecl, source: SourceFile | undefined): unknown {
  if (source === undefined || !(error instanceof NiftyError)) return error;
  return new BuildFailed([asDiagnostic(error, archive.span, source)]);
}

/** Archive roots by name: the mirrors, with each ARCHIVE line's own URL first. */
export function archiveMirrors(
  archives: readonly ArchiveDecl[],
  known: Record<string, string[]>,
): Record<string, string[]> {
  const out = { ...known };
  for (const a of archives) if (a.url !== undefined) out[a.name] = [a.url];
  return out;
}

/**
 * `lock --update NAME…` moves only those packages: every other locked package
 * keeps its version, where the suite still has it (a name's records in one suite at a time).
 */
function keepLocked(
  previous: Lock | undefined,
  update: PackageOptions["update"],
): ((records: PackageRecord[]) => PackageRecord[]) | undefined {
  if (previous === undefined || update === undefined || update === true) return undefined;
  const pinned = new Map(
    previous.packages.filter((p) => !update.includes(p.name)).map((p) => [p.name, p.version]),
  );
  return (records) => {
    const version = pinned.get(records[0]?.name ?? "");
    if (version === undefined || !records.some((r) => r.version === version)) return records;
    return records.filter((r) => r.version === version);
  };
}

/** A Release Date: as Debian writes it ("Sat, 11 Jul 2026 10:16:37 UTC"). */
function debianDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, "UTC");
}
