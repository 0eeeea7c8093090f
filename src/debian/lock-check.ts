// A lock used as it is must say what the image gets. A lock is a file in the
// repository anyone can edit: its digests pin bytes, but nothing in them says
// those bytes are the package the stanza names, nor that every stanza is one
// the recipe needs. So a lock is checked three ways before it is used:
//   - each .deb's control (Package, Version, Architecture) is its stanza's;
//   - the closure: the resolver, given only the locked packages (their
//     relations from their own control files), reaches exactly the locked
//     set, each for the requests its Requested-By names;
//   - where the suite's signed index is already in the store, each stanza is
//     one of its records (Filename, Size, SHA256), so a stanza cannot name an
//     older version the index the lock was resolved against no longer has.
// Pure: the caller reads the controls and the index.
import type { Field } from "./fields.ts";
import { fieldValue } from "./fields.ts";
import type { Lock, LockedPackage } from "./lockfile.ts";
import { resolve } from "./resolve.ts";
import type { PackageRecord, SuiteRef } from "./types.ts";
import { buildUniverse } from "./universe.ts";

export type LockField =
  | "Package"
  | "Version"
  | "Architecture"
  | "Filename"
  | "Size"
  | "SHA256"
  | "Requested-By";

/** A lock stanza (by `name:architecture`, or "" for the header's Requests) that is not what it says. */
export interface LockProblem {
  key: string;
  field: LockField | "Requests";
  message: string;
}

export function lockKey(p: Pick<LockedPackage, "name" | "architecture">): string {
  return `${p.name}:${p.architecture}`;
}

/** The control fields that name a package, against its lock stanza. */
export function identityProblem(p: LockedPackage, control: readonly Field[]): LockProblem | undefined {
  const get = (name: string) => fieldValue(control as Field[], name)?.trim();
  const locked = [
    ["Package", p.name],
    ["Version", p.version],
    ["Architecture", p.architecture],
  ] as const;
  for (const [field, value] of locked) {
    const actual = get(field);
    if (actual === value) continue;
    const is = `${get("Package") ?? "?"} ${get("Version") ?? "?"} (${get("Architecture") ?? "?"})`;
    return {
      key: lockKey(p),
      field: field === "Package" ? "SHA256" : field,
      message:
        `the .deb this stanza pins (${p.sha256}) is ${is}, ` +
        `not ${p.name} ${p.version} (${p.architecture}): its ${field} is ${JSON.stringify(actual ?? "")}`,
    };
  }
  return undefined;
}

const folded = (v: string | undefined) => (v ?? "").replace(/\s*\n\s*/g, " ").trim();

/** The index record a locked package's control describes (relations from the control itself). */
export function recordFromControl(p: LockedPackage, control: readonly Field[]): PackageRecord {
  const get = (name: string) => fieldValue(control as Field[], name);
  const record: PackageRecord = {
    name: p.name,
    version: p.version,
    architecture: p.architecture,
    depends: folded(get("Depends")),
    preDepends: folded(get("Pre-Depends")),
    provides: folded(get("Provides")),
    filename: p.filename,
    size: p.size,
    sha256: p.sha256,
    from: p.from,
  };
  const multiArch = get("Multi-Arch")?.trim();
  if (multiArch === "same" || multiArch === "foreign" || multiArch === "allowed" || multiArch === "no")
    record.multiArch = multiArch;
  const essential = get("Essential");
  if (essential !== undefined) record.essential = essential.trim().toLowerCase() === "yes";
  const size = get("Installed-Size")?.trim();
  if (size !== undefined && /^\d+$/.test(size)) record.installedSize = Number(size);
  const priority = get("Priority")?.trim();
  if (priority !== undefined) record.priority = priority;
  return record;
}

/**
 * Whether the lock's requests, resolved over the locked packages alone, reach
 * exactly the locked packages, each requested by what its stanza says.
 */
export function closureProblems(lock: Lock, controls: ReadonlyMap<string, readonly Field[]>): LockProblem[] {
  const records = lock.packages.map((p) => recordFromControl(p, controls.get(lockKey(p)) ?? []));
  const same = (a: SuiteRef, b: SuiteRef) =>
    a.archive === b.archive && a.suite === b.suite && a.component === b.component;
  const universe = buildUniverse(
    lock.suites.map((s) => ({ suite: s, records: records.filter((r) => same(r.from, s)) })),
  );
  const result = resolve(
    universe,
    lock.requests.map((r) => ({ ...r, origin: undefined })),
    { arch: lock.architecture },
  );
  if (!result.ok) {
    return result.errors.map((e) => ({
      key: "",
      field: "Requests",
      message: `the locked packages do not meet the requests: ${e.message}`,
    }));
  }
  const reached = new Map(result.resolution.packages.map((p) => [lockKey(p.record), p]));
  const problems: LockProblem[] = [];
  for (const p of lock.packages) {
    const got = reached.get(lockKey(p));
    if (got === undefined || got.record.version !== p.version) {
      problems.push({
        key: lockKey(p),
        field: "Package",
        message:
          `${p.name} ${p.version} (${p.architecture}) is needed by no PACKAGE line: ` +
          "no request reaches it through the locked packages' Depends and Pre-Depends",
      });
      continue;
    }
    const want = [...got.requestedBy].sort().join(", ");
    if (want !== [...p.requestedBy].sort().join(", ")) {
      problems.push({
        key: lockKey(p),
        field: "Requested-By",
        message: `${p.name} is reached by ${want}, not by ${p.requestedBy.join(", ")} as the lock says`,
      });
    }
  }
  return problems;
}

/** The locked packages of `suite` that are not records of its signed index, as the lock pins them. */
export function indexProblems(
  packages: readonly LockedPackage[],
  records: readonly PackageRecord[],
): LockProblem[] {
  const byKey = new Map<string, PackageRecord[]>();
  for (const r of records) {
    const k = lockKey(r);
    const list = byKey.get(k);
    if (list === undefined) byKey.set(k, [r]);
    else list.push(r);
  }
  const problems: LockProblem[] = [];
  for (const p of packages) {
    const candidates = byKey.get(lockKey(p)) ?? [];
    const r = candidates.find((c) => c.version === p.version);
    const suite = `${p.from.archive} ${p.from.suite}`;
    if (r === undefined) {
      const field = candidates.length === 0 ? "Package" : "Version";
      const has =
        candidates.length === 0
          ? "has no such package"
          : `has ${candidates.map((c) => c.version).join(", ")}`;
      problems.push({
        key: lockKey(p),
        field,
        message:
          `${p.name} ${p.version} (${p.architecture}) is not in the signed index of ${suite} ` +
          `the lock was resolved against: it ${has}`,
      });
      continue;
    }
    for (const [field, locked, signed] of [
      ["Filename", p.filename, r.filename],
      ["Size", String(p.size), String(r.size)],
      ["SHA256", p.sha256, r.sha256],
    ] as const) {
      if (locked !== signed) {
        problems.push({
          key: lockKey(p),
          field,
          message: `${p.name} ${p.version}: the lock's ${field} ${locked} is not the signed index's ${signed} (${suite})`,
        });
        break;
      }
    }
  }
  return problems;
}
