// `niftyc outdated`: for each locked package, whether the suites offer a
// newer version now, and whether a security suite does (those are the
// updates that should not wait). Pure: the caller reads the current indices.
import type { Lock } from "./lockfile.ts";
import { slotKey } from "./multiarch.ts";
import type { SuiteRef } from "./types.ts";
import type { Universe } from "./universe.ts";
import { compareVersions } from "./version.ts";

export interface OutdatedOptions {
  /** Suites to treat as security suites besides those whose name ends in "-security". */
  securitySuites?: readonly SuiteRef[];
}

export interface OutdatedRow {
  name: string;
  architecture: string;
  locked: string;
  lockedFrom: SuiteRef;
  /** The newest version the suites offer now (the earlier suite when two offer it). */
  newest: string;
  newestFrom: SuiteRef;
  /** A version newer than the locked one comes from a security suite (the newest or one between). */
  security: boolean;
  /** The newest such security version. */
  securityVersion?: string;
  securityFrom?: SuiteRef;
}

export interface OutdatedSummary {
  /** "security-updates" when any row has one: the CLI gives that its own exit status. */
  status: "current" | "updates" | "security-updates";
  locked: number;
  updates: number;
  securityUpdates: number;
}

function sameSuite(a: SuiteRef, b: SuiteRef): boolean {
  return a.archive === b.archive && a.suite === b.suite && a.component === b.component;
}

export function isSecuritySuite(suite: SuiteRef, options: OutdatedOptions = {}): boolean {
  return suite.suite.endsWith("-security") || (options.securitySuites ?? []).some((s) => sameSuite(s, suite));
}

/** Locked packages that have a newer version in `universe`, sorted by name then architecture. */
export function findOutdated(lock: Lock, universe: Universe, options: OutdatedOptions = {}): OutdatedRow[] {
  const rows: OutdatedRow[] = [];
  const native = lock.architecture;
  for (const p of lock.packages) {
    const slot = slotKey(p.name, p.architecture, native);
    // Candidates come best first, so the first newer one is the newest.
    const newer = (universe.packages.get(p.name) ?? []).filter(
      (c) =>
        slotKey(c.record.name, c.record.architecture, native) === slot &&
        compareVersions(c.record.version, p.version) > 0,
    );
    const newest = newer[0];
    if (newest === undefined) continue;
    const suiteOf = (i: number) => universe.suites[i] ?? newest.record.from;
    const fix = newer.find((c) => isSecuritySuite(suiteOf(c.suiteIndex), options));
    const row: OutdatedRow = {
      name: p.name,
      architecture: p.architecture,
      locked: p.version,
      lockedFrom: p.from,
      newest: newest.record.version,
      newestFrom: suiteOf(newest.suiteIndex),
      security: fix !== undefined,
    };
    if (fix !== undefined) {
      row.securityVersion = fix.record.version;
      row.securityFrom = suiteOf(fix.suiteIndex);
    }
    rows.push(row);
  }
  return rows.sort((a, b) =>
    a.name < b.name
      ? -1
      : a.name > b.name
        ? 1
        : a.architecture < b.architecture
          ? -1
          : a.architecture > b.architecture
            ? 1
            : 0,
  );
}

export function summarizeOutdated(lock: Lock, rows: readonly OutdatedRow[]): OutdatedSummary {
  const securityUpdates = rows.filter((r) => r.security).length;
  return {
    status: securityUpdates > 0 ? "security-updates" : rows.length > 0 ? "updates" : "current",
    locked: lock.packages.length,
    updates: rows.length,
    securityUpdates,
  };
}
