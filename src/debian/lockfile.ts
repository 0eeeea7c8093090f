// The lockfile next to a recipe: what its PACKAGE lines resolved to, pinned
// by digest, in deb822 so Debian people can read it and diffs stay small.
// It names suites by identity (archive, suite, component), never by mirror
// URL, and holds no time but the InRelease's own Date:, so the same
// resolution writes the same bytes on any machine.
//
//   # niftyc lock: …
//   Lock-Format: 1
//   Architecture: amd64
//   Suites:
//    debian bookworm main sha256:<InRelease digest> Sat, 11 Jul 2026 10:16:37 UTC
//   Requests:
//    dropbear-bin
//
//   Package: dropbear-bin
//   Version: 2022.83-1+deb12u3
//   Architecture: amd64
//   Suite: debian bookworm main
//   Filename: pool/main/d/dropbear/dropbear-bin_2022.83-1+deb12u3_amd64.deb
//   Size: 155520
//   SHA256: 44ac9aaa…
//   Requested-By: dropbear-bin
//
// Suites stay in resolution order (the earlier wins a version tie); requests
// are sorted by text, packages by name then architecture.
//
// One file holds every platform the recipe was locked for: a section per
// Debian architecture, sorted by its name. The first section is a whole lock
// as above (an amd64-only lock is just that); each further one starts with a
// header holding only what differs from the first's, its Architecture always,
// Suites or Requests when that platform was resolved against other InReleases
// or for other requests, then its stanzas:
//
//   Architecture: arm64
//
//   Package: dropbear-bin
//   …
import { formatStanza, parseStanzas, type Deb822Field, type Deb822Stanza } from "./deb822.ts";
import {
  formatRelation,
  packageNameProblem,
  parseRelationField,
  type VersionConstraint,
} from "./relations.ts";
import type { Resolution } from "./resolve.ts";
import type { SuiteRef } from "./types.ts";
import { suiteLabel } from "./universe.ts";
import { versionProblem } from "./version.ts";
import { suggest } from "../diagnostics/suggest.ts";

export const LOCK_FORMAT = "1";

const HEADER_COMMENT =
  "# niftyc lock: the Debian packages this recipe's PACKAGE lines resolved to.\n" +
  "# Written by niftyc; change the recipe and lock again rather than editing it.\n";

/** A suite the lock was resolved against, and the InRelease that described it then. */
export interface LockedSuite extends SuiteRef {
  /** The InRelease's `Date:` field, verbatim. */
  date: string;
  /** "sha256:<hex>" of that InRelease file. */
  inRelease: string;
}

/** One request the recipe makes, normalized: `name[:arch] [(op version)]`. */
export interface LockRequest {
  name: string;
  arch?: string;
  constraint?: VersionConstraint;
}

export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  from: SuiteRef;
  /** Pool path relative to the archive root. */
  filename: string;
  size: number;
  /** "sha256:<hex>" of the .deb. */
  sha256: string;
  /** Names of the requests whose closure holds it, sorted. */
  requestedBy: string[];
}

export interface Lock {
  architecture: string;
  /** In resolution order. */
  suites: LockedSuite[];
  /** Sorted by their text. */
  requests: LockRequest[];
  /** Sorted by name, then architecture. */
  packages: LockedPackage[];
}

export interface LockError {
  code: "malformed-lock";
  /** 1-based line in the lock file. */
  line: number;
  message: string;
}

/** Where each package's stanza and fields are in the lock's text, by `name:architecture`. */
export type LockLines = Map<string, { stanza: number; fields: Partial<Record<PackageField, number>> }>;
type PackageField = (typeof PACKAGE_FIELDS)[number];

/** One platform's section of a lock file, and where its stanzas and Requests are in the file. */
export interface LockSection {
  lock: Lock;
  lines: LockLines;
  /** The line of the Requests field that applies to it (its own, else the first section's). */
  requestsLine: number;
  /** The line of each suite in the Suites field that applies to it, by `archive suite component`. */
  suiteLines: Map<string, number>;
}

/** A lock file read: its first section as `lock` and `lines`, and every section in the file's order. */
export type LockParse =
  | { ok: true; lock: Lock; lines: LockLines; sections: LockSection[] }
  | { ok: false; errors: LockError[] };

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function lockRequestText(r: LockRequest): string {
  return formatRelation(r);
}

function normalizeRequest(r: LockRequest): LockRequest {
  const out: LockRequest = { name: r.name };
  if (r.arch !== undefined) out.arch = r.arch;
  if (r.constraint !== undefined) out.constraint = { op: r.constraint.op, version: r.constraint.version };
  return out;
}

/** The canonical form of a lock: what parse(serialize(lock)) gives back. */
export function normalizeLock(lock: Lock): Lock {
  const requests = new Map<string, LockRequest>();
  for (const r of lock.requests) requests.set(lockRequestText(r), normalizeRequest(r));
  return {
    architecture: lock.architecture,
    suites: lock.suites.map((s) => ({
      archive: s.archive,
      suite: s.suite,
      component: s.component,
      date: s.date,
      inRelease: s.inRelease,
    })),
    requests: [...requests].sort(([a], [b]) => byteOrder(a, b)).map(([, r]) => r),
    packages: lock.packages
      .map((p) => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        from: { archive: p.from.archive, suite: p.from.suite, component: p.from.component },
        filename: p.filename,
        size: p.size,
        sha256: p.sha256,
        requestedBy: [...new Set(p.requestedBy)].sort(byteOrder),
      }))
      .sort((a, b) => byteOrder(a.name, b.name) || byteOrder(a.architecture, b.architecture)),
  };
}

/** The lock for a resolution. */
export function lockFromResolution(
  resolution: Resolution,
  context: { architecture: string; suites: readonly LockedSuite[]; requests: readonly LockRequest[] },
): Lock {
  return normalizeLock({
    architecture: context.architecture,
    suites: [...context.suites],
    requests: [...context.requests],
    packages: resolution.packages.map(({ record, requestedBy }) => ({
      name: record.name,
      version: record.version,
      architecture: record.architecture,
      from: record.from,
      filename: record.filename,
      size: record.size,
      sha256: record.sha256,
      requestedBy,
    })),
  });
}

function hex(digest: string): string {
  return digest.startsWith("sha256:") ? digest.slice("sha256:".length) : digest;
}

/**
 * The lock's text, canonical: the same lock (in any order) gives the same
 * bytes, and parseLock gives the normalized lock back. The lock's values
 * must be ones parseLock accepts (a resolution's are).
 */
export function serializeLock(lock: Lock): string {
  return serializeLocks([lock]);
}

/**
 * Several platforms' locks as one file: a section each, sorted by architecture, the first whole
 * and each other's header holding only what differs from it. One platform gives serializeLock's text.
 */
export function serializeLocks(locks: readonly Lock[]): string {
  const sorted = locks.map(normalizeLock).sort((a, b) => byteOrder(a.architecture, b.architecture));
  const [first, ...rest] = sorted;
  if (first === undefined) throw new Error("a lock file needs at least one platform's lock");
  for (const [i, l] of sorted.entries())
    if (i > 0 && sorted[i - 1]!.architecture === l.architecture)
      throw new Error(`two locks for architecture ${l.architecture}`);
  const header = headerValues(first);
  const sections = [
    [formatStanza([["Lock-Format", LOCK_FORMAT], ...header]), ...packageStanzas(first)],
    ...rest.map((l) => {
      const own = headerValues(l).filter(([, value], i) => i === 0 || header[i]![1] !== value);
      return [formatStanza(own), ...packageStanzas(l)];
    }),
  ];
  return HEADER_COMMENT + sections.flat().join("\n");
}

/** A section header's fields: Architecture, Suites, Requests. */
function headerValues(l: Lock): Array<[string, string]> {
  const list = (lines: readonly string[]) => lines.map((x) => `\n${x}`).join("");
  return [
    ["Architecture", l.architecture],
    ["Suites", list(l.suites.map((s) => `${suiteLabel(s)} ${s.inRelease} ${s.date}`))],
    ["Requests", list(l.requests.map(lockRequestText))],
  ];
}

function packageStanzas(l: Lock): string[] {
  return l.packages.map((p) =>
    formatStanza([
      ["Package", p.name],
      ["Version", p.version],
      ["Architecture", p.architecture],
      ["Suite", suiteLabel(p.from)],
      ["Filename", p.filename],
      ["Size", String(p.size)],
      ["SHA256", hex(p.sha256)],
      ["Requested-By", p.requestedBy.join(", ")],
    ]),
  );
}

// ---- parsing

const HEADER_FIELDS = ["Lock-Format", "Architecture", "Suites", "Requests"] as const;
/** A further section's header: Architecture, and Suites or Requests where they differ from the first's. */
const SECTION_FIELDS = ["Architecture", "Suites", "Requests"] as const;
const PACKAGE_FIELDS = [
  "Package",
  "Version",
  "Architecture",
  "Suite",
  "Filename",
  "Size",
  "SHA256",
  "Requested-By",
] as const;
const ARCH = /^[a-z0-9][a-z0-9-]*$/;
const WORD = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** The lines of a field's value with the file line of each; a list's empty first line is skipped. */
function valueLines(f: Deb822Field): Array<{ text: string; line: number }> {
  const texts = f.value.split("\n");
  const lines = f.lines ?? [f.line];
  return texts
    .map((text, i) => ({ text, line: lines[i] ?? f.line }))
    .filter((x, i) => !(i === 0 && x.text === "" && texts.length > 1));
}

class LockReader {
  readonly errors: LockError[] = [];

  error(line: number, message: string): void {
    this.errors.push({ code: "malformed-lock", line, message });
  }

  /** The stanza's fields by canonical name; unknown ones are errors with a did-you-mean. */
  fields<K extends string>(
    stanza: Deb822Stanza,
    known: readonly K[],
    what: string,
    required: readonly K[] = known,
  ): Map<K, Deb822Field> {
    const out = new Map<K, Deb822Field>();
    for (const f of stanza.fields) {
      const name = known.find((k) => k.toLowerCase() === f.name.toLowerCase());
      if (name !== undefined) {
        out.set(name, f);
        continue;
      }
      const near = suggest(f.name, known);
      this.error(f.line, `unknown field '${f.name}' in ${what}${near ? ` (did you mean '${near}'?)` : ""}`);
    }
    for (const k of required) if (!out.has(k)) this.error(stanza.line, `${what} has no ${k} field`);
    return out;
  }

  /** A single-line value, or an error. */
  single(f: Deb822Field | undefined, check: (v: string) => string | undefined): string | undefined {
    if (f === undefined) return undefined;
    if (f.value.includes("\n")) {
      this.error(f.line, `${f.name} takes one line`);
      return undefined;
    }
    const problem = f.value === "" ? "is empty" : check(f.value);
    if (problem !== undefined) {
      this.error(f.line, `${f.name} ${problem}`);
      return undefined;
    }
    return f.value;
  }
}

function suiteProblem(words: readonly string[]): string | undefined {
  if (words.length < 5) return "expected 'archive suite component sha256:<hex> <InRelease Date>'";
  const [archive, suite, component, digest] = words as [string, string, string, string];
  for (const [what, w] of [
    ["archive", archive],
    ["suite", suite],
    ["component", component],
  ] as const) {
    if (!WORD.test(w)) return `invalid ${what} name '${w}'`;
  }
  if (!digest.startsWith("sha256:") || !HEX64.test(digest.slice(7)))
    return `InRelease digest '${digest}' is not sha256:<64 lowercase hex digits>`;
  return undefined;
}

function filenameProblem(v: string): string | undefined {
  if (v.includes("://")) return `is a URL ('${v}'); the lock holds pool paths, never a mirror's URL`;
  if (/\s/.test(v)) return "has whitespace";
  return poolPathProblem(v);
}

/**
 * Why a pool path (an index's or a lock's Filename) could name something
 * outside the archive root once made into a URL, or undefined. A URL parser
 * reads `%2e%2e` as `..` and `\` as `/`, so the path is judged as the URL
 * will read it: decoded, backslashes as slashes; `?` and `#` would end it.
 */
export function poolPathProblem(v: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(v)) return `${JSON.stringify(v)} has a control character`;
  const separator = /[\\?#]/.exec(v)?.[0];
  if (separator !== undefined) return `'${v}' has a '${separator}', which a URL reads as a separator`;
  let decoded: string;
  try {
    decoded = decodeURIComponent(v);
  } catch {
    return `'${v}' has a malformed %-escape`;
  }
  const shown = decoded === v ? `'${v}'` : `'${v}' (read in a URL as '${decoded}')`;
  if (/[\\?#\x00-\x1f\x7f]/.test(decoded)) return `${shown} has an escaped separator or control character`;
  if (v === "" || decoded.startsWith("/")) {
    return `is absolute or empty (${shown}); write the pool path relative to the archive root`;
  }
  if (decoded.split("/").some((part) => part === "" || part === "." || part === "..")) {
    return `${shown} has an empty, '.' or '..' part`;
  }
  return undefined;
}

/** What a section's header says, its own fields or the first section's. */
interface SectionHeader {
  architecture: string | undefined;
  suites: HeaderSuites;
  requests: HeaderRequests;
  requestsLine: number;
}

/** Read a lock's text; every problem comes back with its line. */
export function parseLock(text: string): LockParse {
  const r = new LockReader();
  const { stanzas, problems } = parseStanzas(text);
  for (const p of problems) r.error(p.line, p.message);
  const [headerStanza, ...rest] = stanzas;
  if (!isLockHeader(r, headerStanza)) return { ok: false, errors: r.errors };
  const header = r.fields(headerStanza, HEADER_FIELDS, "the header");
  const first: SectionHeader = {
    architecture: readArchitecture(r, header.get("Architecture")),
    suites: readSuites(r, header.get("Suites")),
    requests: readRequests(r, header.get("Requests")),
    requestsLine: header.get("Requests")?.line ?? headerStanza.line,
  };
  const sections: LockSection[] = [];
  const seen = new Map<string, number>();
  for (const { stanza, packageStanzas } of splitSections(headerStanza, rest)) {
    const own = stanza === headerStanza ? first : readSectionHeader(r, stanza, first);
    const { packages, lines } = readPackages(r, packageStanzas, own.suites, own.requests);
    if (own.architecture === undefined) continue;
    const earlier = seen.get(own.architecture);
    if (earlier !== undefined) {
      r.error(stanza.line, `architecture ${own.architecture} has a section already (at line ${earlier})`);
      continue;
    }
    seen.set(own.architecture, stanza.line);
    const lock = normalizeLock({
      architecture: own.architecture,
      suites: own.suites.suites,
      requests: own.requests.requests,
      packages,
    });
    sections.push({ lock, lines, requestsLine: own.requestsLine, suiteLines: own.suites.lines });
  }
  if (r.errors.length > 0) return { ok: false, errors: r.errors.sort((a, b) => a.line - b.line) };
  return { ok: true, lock: sections[0]!.lock, lines: sections[0]!.lines, sections };
}

/**
 * The stanzas after the first header, in sections: a stanza whose fields are all a section
 * header's starts one (one with any other field is a package stanza, with its own errors).
 */
function splitSections(
  headerStanza: Deb822Stanza,
  rest: readonly Deb822Stanza[],
): Array<{ stanza: Deb822Stanza; packageStanzas: Deb822Stanza[] }> {
  const names = new Set<string>([...SECTION_FIELDS, "Lock-Format"].map((n) => n.toLowerCase()));
  const out: ReturnType<typeof splitSections> = [{ stanza: headerStanza, packageStanzas: [] }];
  for (const stanza of rest) {
    if (stanza.fields.every((f) => names.has(f.name.toLowerCase()))) out.push({ stanza, packageStanzas: [] });
    else out.at(-1)!.packageStanzas.push(stanza);
  }
  return out;
}

function readArchitecture(r: LockReader, f: Deb822Field | undefined): string | undefined {
  return r.single(f, (v) => (ARCH.test(v) ? undefined : `'${v}' is not an architecture name`));
}

/** A further section's header: its Architecture, and the first section's Suites and Requests unless it has its own. */
function readSectionHeader(r: LockReader, stanza: Deb822Stanza, first: SectionHeader): SectionHeader {
  const what = `the section header at line ${stanza.line}`;
  const f = r.fields(stanza, SECTION_FIELDS, what, ["Architecture"]);
  const suites = f.get("Suites");
  const requests = f.get("Requests");
  return {
    architecture: readArchitecture(r, f.get("Architecture")),
    suites: suites === undefined ? first.suites : readSuites(r, suites),
    requests: requests === undefined ? first.requests : readRequests(r, requests),
    requestsLine: requests?.line ?? first.requestsLine,
  };
}

/** Whether the first stanza is a header of the Lock-Format this niftyc reads; if not, says why. */
function isLockHeader(r: LockReader, headerStanza: Deb822Stanza | undefined): headerStanza is Deb822Stanza {
  if (headerStanza === undefined) {
    r.error(1, "empty lock: expected a header stanza starting with Lock-Format");
    return false;
  }
  const formatField = headerStanza.fields.find((f) => f.name.toLowerCase() === "lock-format");
  if (formatField === undefined) {
    r.error(headerStanza.line, "not a niftyc lock: the first stanza has no Lock-Format field");
    return false;
  }
  if (formatField.value !== LOCK_FORMAT) {
    r.error(
      formatField.line,
      `unsupported Lock-Format '${formatField.value}' (this niftyc reads ${LOCK_FORMAT})`,
    );
    return false;
  }
  return true;
}

/** The header's Suites, the labels they go by, and whether a line of them was broken. */
interface HeaderSuites {
  suites: LockedSuite[];
  labels: Set<string>;
  /** Each suite's line, by its label. */
  lines: Map<string, number>;
  broken: boolean;
}

function readSuites(r: LockReader, suitesField: Deb822Field | undefined): HeaderSuites {
  const suites: LockedSuite[] = [];
  const suiteLabels = new Set<string>();
  const suiteLines = new Map<string, number>();
  let suitesBroken = false;
  if (suitesField !== undefined) {
    for (const { text: raw, line } of valueLines(suitesField)) {
      const lineText = raw.trim();
      if (lineText === "") continue;
      const words = lineText.split(/\s+/);
      const problem = suiteProblem(words);
      if (problem !== undefined) {
        r.error(line, `Suites: ${problem}`);
        // Packages naming the suite this line meant are not wrong too: one error per mistake.
        suitesBroken = true;
        continue;
      }
      const [archive, suite, component, inRelease] = words as [string, string, string, string];
      const label = `${archive} ${suite} ${component}`;
      if (suiteLabels.has(label)) {
        r.error(line, `Suites: '${label}' is listed twice`);
        continue;
      }
      suiteLabels.add(label);
      suiteLines.set(label, line);
      // The date is the rest of the line, spaces and all, as the InRelease wrote it.
      const date = /^(?:\S+\s+){4}(.*)$/.exec(lineText)![1]!;
      suites.push({ archive, suite, component, date, inRelease });
    }
    if (
      suites.length === 0 &&
      !r.errors.some((e) => e.line > suitesField.line && e.message.startsWith("Suites:"))
    ) {
      r.error(suitesField.line, "Suites lists no suite");
    }
  }
  return { suites, labels: suiteLabels, lines: suiteLines, broken: suitesBroken };
}

/** The header's Requests, their names, and whether the list is missing or broken. */
interface HeaderRequests {
  requests: LockRequest[];
  names: Set<string>;
  broken: boolean;
}

function readRequests(r: LockReader, requestsField: Deb822Field | undefined): HeaderRequests {
  const requests: LockRequest[] = [];
  const requestTexts = new Set<string>();
  const requestNames = new Set<string>();
  // With the Requests list missing or broken, Requested-By names cannot be checked: one error per mistake.
  let requestsBroken = requestsField === undefined;
  if (requestsField !== undefined) {
    for (const { text: lineText, line } of valueLines(requestsField)) {
      if (lineText === "") continue;
      const parsed = parseRelationField(lineText);
      if (!parsed.ok) {
        r.error(line, `Requests: ${parsed.error.message}`);
        requestsBroken = true;
        continue;
      }
      const [group, ...more] = parsed.value;
      if (
        group === undefined ||
        group.length !== 1 ||
        more.length > 0 ||
        group[0]!.archRestriction !== undefined
      ) {
        r.error(
          line,
          `Requests: one package per line, without alternatives or [architectures]: '${lineText}'`,
        );
        requestsBroken = true;
        continue;
      }
      const request = normalizeRequest(group[0]!);
      const canonical = lockRequestText(request);
      if (requestTexts.has(canonical)) {
        r.error(line, `Requests: '${canonical}' is listed twice`);
        continue;
      }
      requestTexts.add(canonical);
      requestNames.add(request.name);
      requests.push(request);
    }
  }
  return { requests, names: requestNames, broken: requestsBroken };
}

/** The package stanzas, each checked against the header; a package locked twice is an error. */
function readPackages(
  r: LockReader,
  packageStanzas: readonly Deb822Stanza[],
  suites: HeaderSuites,
  requests: HeaderRequests,
): { packages: LockedPackage[]; lines: LockLines } {
  const packages: LockedPackage[] = [];
  const lines: LockLines = new Map();
  const seen = new Map<string, number>();
  for (const stanza of packageStanzas) {
    const read = readPackageStanza(r, stanza, suites, requests);
    if (read === undefined) continue;
    const { pkg, f } = read;
    const { name, architecture: arch } = pkg;
    const key = `${name}:${arch}`;
    const first = seen.get(key);
    if (first !== undefined) {
      r.error(stanza.line, `package ${name} (${arch}) is locked twice (first at line ${first})`);
      continue;
    }
    seen.set(key, stanza.line);
    lines.set(key, {
      stanza: stanza.line,
      fields: Object.fromEntries([...f].map(([k, field]) => [k, field.line])),
    });
    packages.push(pkg);
  }
  return { packages, lines };
}

/** One package stanza as a locked package with its fields, or undefined once its errors are said. */
function readPackageStanza(
  r: LockReader,
  stanza: Deb822Stanza,
  suites: HeaderSuites,
  requests: HeaderRequests,
): { pkg: LockedPackage; f: Map<PackageField, Deb822Field> } | undefined {
  const { labels: suiteLabels, broken: suitesBroken } = suites;
  const { names: requestNames, broken: requestsBroken } = requests;
  const f = r.fields(stanza, PACKAGE_FIELDS, `the package stanza at line ${stanza.line}`);
  const name = r.single(f.get("Package"), packageNameProblem);
  const version = r.single(f.get("Version"), (v) => versionProblem(v));
  const arch = r.single(f.get("Architecture"), (v) =>
    ARCH.test(v) ? undefined : `'${v}' is not an architecture name`,
  );
  const suite = r.single(f.get("Suite"), (v) =>
    suiteLabels.has(v) || (suitesBroken && v.split(" ").length === 3)
      ? undefined
      : `'${v}' is not one of the header's Suites`,
  );
  const filename = r.single(f.get("Filename"), filenameProblem);
  const size = r.single(f.get("Size"), (v) =>
    /^(0|[1-9][0-9]*)$/.test(v) && Number.isSafeInteger(Number(v))
      ? undefined
      : `'${v}' is not a size in bytes`,
  );
  const sha256 = r.single(f.get("SHA256"), (v) =>
    HEX64.test(v) ? undefined : `'${v}' is not 64 lowercase hex digits`,
  );
  const requestedByField = f.get("Requested-By");
  const requestedBy = r.single(requestedByField, (v) => {
    const names = v.split(",").map((n) => n.trim());
    const stray = names.find((n) => n === "" || (!requestsBroken && !requestNames.has(n)));
    if (stray === "") return "has an empty name in its list";
    return stray === undefined ? undefined : `'${stray}' is not the name of a request in the header`;
  });
  const read = [name, version, arch, suite, filename, size, sha256, requestedBy];
  if (read.some((v) => v === undefined)) return undefined;
  const [archive, suiteName, component] = suite!.split(" ") as [string, string, string];
  const pkg: LockedPackage = {
    name: name!,
    version: version!,
    architecture: arch!,
    from: { archive, suite: suiteName, component },
    filename: filename!,
    size: Number(size),
    sha256: `sha256:${sha256}`,
    requestedBy: requestedBy!.split(",").map((n) => n.trim()),
  };
  return { pkg, f };
}

// ---- coverage

export interface Coverage {
  /** The lock was made for exactly these requests. */
  covered: boolean;
  /** Requested, and no request of that name is locked. */
  missing: string[];
  /** Locked, and no request of that name is made any more. */
  extra: string[];
  /** A name both sides have, asked for differently (constraint or architecture). */
  changed: Array<{ name: string; locked: string[]; requested: string[] }>;
}

/** Whether `lock` covers `requests` exactly, and if not, what differs (by request text). */
export function lockCovers(lock: Lock, requests: readonly LockRequest[]): Coverage {
  const group = (list: readonly LockRequest[]) => {
    const byName = new Map<string, Set<string>>();
    for (const r of list) {
      let set = byName.get(r.name);
      if (set === undefined) byName.set(r.name, (set = new Set()));
      set.add(lockRequestText(r));
    }
    return byName;
  };
  const locked = group(lock.requests);
  const wanted = group(requests);
  const sorted = (s: Iterable<string>) => [...s].sort(byteOrder);
  const missing: string[] = [];
  const extra: string[] = [];
  const changed: Coverage["changed"] = [];
  for (const name of sorted(new Set([...locked.keys(), ...wanted.keys()]))) {
    const l = locked.get(name);
    const w = wanted.get(name);
    if (l === undefined) missing.push(...sorted(w!));
    else if (w === undefined) extra.push(...sorted(l));
    else if (l.size !== w.size || [...l].some((x) => !w.has(x)))
      changed.push({ name, locked: sorted(l), requested: sorted(w) });
  }
  return {
    covered: missing.length === 0 && extra.length === 0 && changed.length === 0,
    missing,
    extra,
    changed,
  };
}
