// The candidate universe: every package version the configured suites offer,
// indexed by name and by what it provides. Built in one pass over the records
// (63,000 stanzas for bookworm main); only Provides is parsed here, because the
// provides map needs it. Depends are parsed later, for the packages a
// resolution visits. Orders are total, so the universe is the same whatever
// order the records came in.
import type { PackageRecord, SuiteRef } from "./types.ts";
import { parseProvides, type Provided } from "./relations.ts";
import { compareVersions, versionProblem } from "./version.ts";

/** One suite's records, as the index reader returns them. */
export interface SuiteIndex {
  suite: SuiteRef;
  records: readonly PackageRecord[];
}

export interface Candidate {
  record: PackageRecord;
  /** Position of the record's suite in `Universe.suites`: the earlier suite wins a version tie. */
  suiteIndex: number;
  provides: readonly Provided[];
}

/** A candidate offering a virtual name, with the version it provides (`Provides: foo (= 1.2)`). */
export interface Provision {
  provider: Candidate;
  version?: string;
}

/** A record the universe left out (invalid version) or whose Provides it could not read. */
export interface UniverseProblem {
  suite: SuiteRef;
  package: string;
  version: string;
  message: string;
}

export interface Universe {
  /** In the caller's order, which breaks ties between equal versions. */
  suites: readonly SuiteRef[];
  /** Name → candidates, best first: highest version, then suite order. */
  packages: ReadonlyMap<string, readonly Candidate[]>;
  /** Virtual name → provisions, by provider name, then the provider's candidate order. */
  providers: ReadonlyMap<string, readonly Provision[]>;
  problems: readonly UniverseProblem[];
}

/** "debian bookworm main", for messages and the lockfile. */
export function suiteLabel(ref: SuiteRef): string {
  return `${ref.archive} ${ref.suite} ${ref.component}`;
}

/** Code-unit order, the same whatever the locale; the resolver sorts with it too. */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Best first; the fields after version and suite only make duplicates' order total. */
export function compareCandidates(a: Candidate, b: Candidate): number {
  return (
    compareVersions(b.record.version, a.record.version) ||
    a.suiteIndex - b.suiteIndex ||
    byteOrder(a.record.architecture, b.record.architecture) ||
    byteOrder(a.record.filename, b.record.filename) ||
    byteOrder(a.record.sha256, b.record.sha256)
  );
}

export function compareProvisions(a: Provision, b: Provision): number {
  return (
    byteOrder(a.provider.record.name, b.provider.record.name) ||
    compareCandidates(a.provider, b.provider) ||
    byteOrder(a.version ?? "", b.version ?? "")
  );
}

export function buildUniverse(indices: readonly SuiteIndex[]): Universe {
  const packages = new Map<string, Candidate[]>();
  const providers = new Map<string, Provision[]>();
  const problems: UniverseProblem[] = [];
  indices.forEach(({ suite, records }, suiteIndex) => {
    for (const record of records) {
      const bad = versionProblem(record.version);
      if (bad !== undefined) {
        problems.push({
          suite,
          package: record.name,
          version: record.version,
          message: `${bad}; the record is left out`,
        });
        continue;
      }
      let provides: readonly Provided[] = [];
      if (record.provides !== "") {
        const parsed = parseProvides(record.provides);
        if (parsed.ok) provides = parsed.value;
        else
          problems.push({
            suite,
            package: record.name,
            version: record.version,
            message: `Provides: ${parsed.error.message}; ignored`,
          });
      }
      const candidate: Candidate = { record, suiteIndex, provides };
      const list = packages.get(record.name);
      if (list === undefined) packages.set(record.name, [candidate]);
      else list.push(candidate);
      for (const p of provides) {
        const provision: Provision =
          p.version === undefined ? { provider: candidate } : { provider: candidate, version: p.version };
        const plist = providers.get(p.name);
        if (plist === undefined) providers.set(p.name, [provision]);
        else plist.push(provision);
      }
    }
  });
  for (const list of packages.values()) if (list.length > 1) list.sort(compareCandidates);
  for (const list of providers.values()) if (list.length > 1) list.sort(compareProvisions);
  problems.sort(
    (a, b) =>
      byteOrder(a.package, b.package) ||
      compareVersions(a.version, b.version) ||
      byteOrder(suiteLabel(a.suite), suiteLabel(b.suite)) ||
      byteOrder(a.message, b.message),
  );
  return { suites: indices.map((i) => i.suite), packages, providers, problems };
}
