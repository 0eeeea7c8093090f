// The universe over stored indices (package-index.ts), materialised only
// where a resolution looks: a name's candidates are decoded, validated and
// sorted the first time it is asked for, and a virtual name's provisions come
// from the providers table through those same candidates. Every answer is
// what buildUniverse gives for the same records (test/debian/lazy-universe.test.ts
// compares them on the real bookworm index).
import type { PackageIndex } from "./package-index.ts";
import { parseProvides, type Provided } from "./relations.ts";
import type { PackageRecord, SuiteRef } from "./types.ts";
import {
  byteOrder,
  compareCandidates,
  compareProvisions,
  suiteLabel,
  type Candidate,
  type Provision,
  type Universe,
  type UniverseProblem,
} from "./universe.ts";
import { compareVersions, versionProblem } from "./version.ts";

/** One suite's stored index; `keep` narrows a name's records in that suite (`lock --update NAME`). */
export interface StoredSuite {
  suite: SuiteRef;
  index: PackageIndex;
  keep?: (records: PackageRecord[]) => PackageRecord[];
}

/** A map whose values are computed on first `get`; iterating it computes every one. */
class LazyMap<V> implements ReadonlyMap<string, V> {
  readonly #known = new Map<string, V | undefined>();
  readonly #compute: (key: string) => V | undefined;
  readonly #candidates: () => Iterable<string>;

  constructor(compute: (key: string) => V | undefined, candidates: () => Iterable<string>) {
    this.#compute = compute;
    this.#candidates = candidates;
  }

  get(key: string): V | undefined {
    if (this.#known.has(key)) return this.#known.get(key);
    const value = this.#compute(key);
    this.#known.set(key, value);
    return value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  *entries(): MapIterator<[string, V]> {
    for (const key of new Set(this.#candidates())) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  *keys(): MapIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(f: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [key, value] of this.entries()) f(value, key, this);
  }

  get size(): number {
    let n = 0;
    for (const _ of this.entries()) n++;
    return n;
  }
}

/** A universe that reads the stored indices as the resolver asks. */
export function lazyUniverse(sources: readonly StoredSuite[]): Universe {
  const byRow = sources.map(() => new Map<number, Candidate>());
  const problems: UniverseProblem[] = [];

  /** The candidates of `name` in one suite, as buildUniverse makes them (problems noted). */
  const suiteCandidates = (s: number, name: string): Candidate[] => {
    const { suite, index, keep } = sources[s]!;
    const rows = index.rowsOf(name);
    if (rows.length === 0) return [];
    const records = rows.map((r) => index.record(r));
    const kept = keep ? new Set(keep(records)) : undefined;
    const out: Candidate[] = [];
    records.forEach((record, i) => {
      if (kept !== undefined && !kept.has(record)) return;
      const candidate = candidateOf(s, suite, record, problems);
      if (candidate === undefined) return;
      byRow[s]!.set(rows[i]!, candidate);
      out.push(candidate);
    });
    return out;
  };

  const packages = new LazyMap<readonly Candidate[]>(
    (name) => {
      const list = sources.flatMap((_, s) => suiteCandidates(s, name));
      return list.length === 0 ? undefined : list.sort(compareCandidates);
    },
    () => sources.flatMap((s) => [...s.index.names()]),
  );

  const providers = new LazyMap<readonly Provision[]>(
    (virtual) => {
      const list: Provision[] = [];
      sources.forEach(({ index }, s) => {
        for (const row of index.providerRowsOf(virtual)) {
          packages.get(index.nameOf(row));
          const candidate = byRow[s]!.get(row);
          for (const p of candidate?.provides ?? []) {
            if (p.name !== virtual) continue;
            list.push(
              p.version === undefined
                ? { provider: candidate! }
                : { provider: candidate!, version: p.version },
            );
          }
        }
      });
      return list.length === 0 ? undefined : list.sort(compareProvisions);
    },
    () => sources.flatMap((s) => [...virtualNames(s.index, packages)]),
  );

  return {
    suites: sources.map((s) => s.suite),
    packages,
    providers,
    /** Every record's problems: all names are visited, so only for reports (bench/resolve.ts). */
    get problems(): readonly UniverseProblem[] {
      for (const _ of packages.keys());
      return [...problems].sort(
        (a, b) =>
          byteOrder(a.package, b.package) ||
          compareVersions(a.version, b.version) ||
          byteOrder(suiteLabel(a.suite), suiteLabel(b.suite)) ||
          byteOrder(a.message, b.message),
      );
    },
  };
}

/** The virtual names an index offers: the provided names of every candidate (all are materialised). */
function* virtualNames(index: PackageIndex, packages: ReadonlyMap<string, readonly Candidate[]>) {
  for (const name of index.names())
    for (const c of packages.get(name) ?? []) for (const p of c.provides) yield p.name;
}

/** A record as buildUniverse takes it: left out for an invalid version, Provides ignored when unreadable. */
function candidateOf(
  suiteIndex: number,
  suite: SuiteRef,
  record: PackageRecord,
  problems: UniverseProblem[],
): Candidate | undefined {
  const problem = (message: string) =>
    problems.push({ suite, package: record.name, version: record.version, message });
  const bad = versionProblem(record.version);
  if (bad !== undefined) {
    problem(`${bad}; the record is left out`);
    return undefined;
  }
  let provides: readonly Provided[] = [];
  if (record.provides !== "") {
    const parsed = parseProvides(record.provides);
    if (parsed.ok) provides = parsed.value;
    else problem(`Provides: ${parsed.error.message}; ignored`);
  }
  return { record, suiteIndex, provides };
}
