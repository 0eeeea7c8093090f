// Relation fields of binary packages (Debian Policy §7.1): Depends and
// Pre-Depends as AND-lists of OR-groups, Provides as a plain list. Parsed on
// demand (the resolver parses a package's fields only when it visits it), and
// returned as data: a malformed field in an index is the archive's problem,
// reported with the text and offset, never thrown.
import { compareVersions, versionProblem } from "./version.ts";

export type RelationOp = "<<" | "<=" | "=" | ">=" | ">>";

export interface VersionConstraint {
  op: RelationOp;
  version: string;
}

/** `[amd64 i386]` or `[!amd64]`: the relation applies only on (or not on) these architectures. */
export interface ArchRestriction {
  negated: boolean;
  arches: string[];
}

/** One package in a relation: `name[:arch] [(op version)] [[arches]] [<profiles>]`. */
export interface Relation {
  name: string;
  /** "any", "native" or an architecture name, when the relation qualifies one. */
  arch?: string;
  constraint?: VersionConstraint;
  archRestriction?: ArchRestriction;
}

/** `a | b`: any one alternative satisfies the group. */
export type RelationGroup = Relation[];

/** One `Provides` entry: a virtual name, with the version provided when `(= v)` is given. */
export interface Provided {
  name: string;
  version?: string;
}

export interface RelationError {
  code: "malformed-relation";
  message: string;
  /** The whole field text and the offset in it where the bad part starts. */
  text: string;
  offset: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: RelationError };

/** dpkg's rule for a package name (pkg_name_is_illegal): alphanumeric first, then alphanumerics and `-+._`. */
export function packageNameProblem(name: string): string | undefined {
  if (name === "") return "package name is empty";
  if (!/^[A-Za-z0-9]/.test(name)) return "package name must start with a letter or digit";
  const bad = /[^A-Za-z0-9+._-]/.exec(name);
  if (bad) return `character '${bad[0]}' not allowed in a package name (only letters, digits and '-+._')`;
  return undefined;
}

// name, :arch, (op version), [arches], then any number of <profiles>. Ops `<`
// and `>` are the obsolete spellings of <= and >= that dpkg still accepts.
const RELATION =
  /^([^\s:(\[<,|]+)(?::([^\s(\[<]*))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)?\s*([^\s)]*)\s*\))?\s*(?:\[([^\]]*)\])?\s*((?:<[^>]*>\s*)*)$/;

const BARE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._-]*$/;

const OPS: Readonly<Record<string, RelationOp>> = {
  "<<": "<<",
  "<=": "<=",
  "=": "=",
  ">=": ">=",
  ">>": ">>",
  "<": "<=",
  ">": ">=",
};

function fail<T>(text: string, offset: number, message: string): Parsed<T> {
  return { ok: false, error: { code: "malformed-relation", message, text, offset } };
}

/** Pieces of `text` between separators, with the offset where each starts. */
function pieces(text: string, sep: string): Array<{ part: string; offset: number }> {
  const out: Array<{ part: string; offset: number }> = [];
  let from = 0;
  for (;;) {
    const next = text.indexOf(sep, from);
    out.push({ part: text.slice(from, next < 0 ? text.length : next), offset: from });
    if (next < 0) return out;
    from = next + 1;
  }
}

function parseOne(text: string, part: string, offset: number): Parsed<Relation> {
  const lead = part.length - part.trimStart().length;
  const trimmed = part.trim();
  const at = offset + lead;
  if (trimmed === "") return fail(text, offset, "missing package name (an empty entry between separators)");
  // Most entries are a bare name: skip the full pattern (the universe reads every Provides).
  if (BARE_NAME.test(trimmed)) return { ok: true, value: { name: trimmed } };
  const m = RELATION.exec(trimmed);
  if (!m) return fail(text, at, `cannot read relation '${trimmed}': expected name[:arch] [(op version)]`);
  const name = m[1]!;
  const nameProblem = packageNameProblem(name);
  if (nameProblem) return fail(text, at, `${nameProblem}: '${name}'`);
  const rel: Relation = { name };
  if (m[2] !== undefined) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(m[2]))
      return fail(text, at, `invalid architecture qualifier ':${m[2]}' in '${trimmed}'`);
    rel.arch = m[2];
  }
  if (m[4] !== undefined) {
    const rawOp = m[3];
    if (rawOp === undefined)
      return fail(text, at, `missing relation operator in '${trimmed}' (one of << <= = >= >>)`);
    const version = m[4];
    const problem = versionProblem(version);
    if (problem) return fail(text, at, `${problem}: '${version}' in '${trimmed}'`);
    const op = OPS[rawOp];
    if (op === undefined) return fail(text, at, `unknown relation operator '${rawOp}' in '${trimmed}'`);
    rel.constraint = { op, version };
  }
  if (m[5] !== undefined) {
    const words = m[5]
      .trim()
      .split(/\s+/)
      .filter((w) => w !== "");
    if (words.length === 0) return fail(text, at, `empty architecture list in '${trimmed}'`);
    const negated = words[0]!.startsWith("!");
    if (words.some((w) => w.startsWith("!") !== negated))
      return fail(text, at, `architecture list mixes negated and plain entries in '${trimmed}'`);
    const arches = words.map((w) => (negated ? w.slice(1) : w));
    if (arches.some((a) => !/^[a-z0-9][a-z0-9-]*$/.test(a)))
      return fail(text, at, `invalid architecture in '[${m[5]}]'`);
    rel.archRestriction = { negated, arches };
  }
  // Build profiles (<!nocheck>) matter only when building from source: accepted and dropped.
  return { ok: true, value: rel };
}

/** Parse a Depends / Pre-Depends field; "" (absent) is the empty list. */
export function parseRelationField(text: string): Parsed<RelationGroup[]> {
  if (text.trim() === "") return { ok: true, value: [] };
  const groups: RelationGroup[] = [];
  for (const g of pieces(text, ",")) {
    const group: RelationGroup = [];
    for (const alt of pieces(g.part, "|")) {
      const parsed = parseOne(text, alt.part, g.offset + alt.offset);
      if (!parsed.ok) return parsed;
      group.push(parsed.value);
    }
    groups.push(group);
  }
  return { ok: true, value: groups };
}

/** Parse a Provides field: names, each with an optional `(= version)`, no alternatives. */
export function parseProvides(text: string): Parsed<Provided[]> {
  if (text.trim() === "") return { ok: true, value: [] };
  const out: Provided[] = [];
  for (const { part, offset } of pieces(text, ",")) {
    const bar = part.indexOf("|");
    if (bar >= 0) return fail(text, offset + bar, "alternatives ('|') are not allowed in Provides");
    const parsed = parseOne(text, part, offset);
    if (!parsed.ok) return parsed;
    const rel = parsed.value;
    const at = offset + part.length - part.trimStart().length;
    if (rel.arch !== undefined || rel.archRestriction !== undefined) {
      return fail(text, at, `Provides takes no architecture: '${part.trim()}'`);
    }
    if (rel.constraint !== undefined && rel.constraint.op !== "=") {
      return fail(
        text,
        at,
        `Provides takes only '(= version)', not '${rel.constraint.op}': '${part.trim()}'`,
      );
    }
    out.push(rel.constraint ? { name: rel.name, version: rel.constraint.version } : { name: rel.name });
  }
  return { ok: true, value: out };
}

/** Whether `version` meets the constraint (no constraint: any version does). */
export function satisfies(version: string, constraint: VersionConstraint | undefined): boolean {
  if (constraint === undefined) return true;
  const c = compareVersions(version, constraint.version);
  switch (constraint.op) {
    case "<<":
      return c < 0;
    case "<=":
      return c <= 0;
    case "=":
      return c === 0;
    case ">=":
      return c >= 0;
    case ">>":
      return c > 0;
  }
}

/** The canonical text of a relation: `name[:arch] (op version)`, as Packages indices write it. */
export function formatRelation(rel: Pick<Relation, "name" | "arch" | "constraint">): string {
  const arch = rel.arch === undefined ? "" : `:${rel.arch}`;
  const constraint = rel.constraint === undefined ? "" : ` (${rel.constraint.op} ${rel.constraint.version})`;
  return `${rel.name}${arch}${constraint}`;
}

/**
 * Whether an `[arch list]` lets the relation apply on `arch`. Entries are
 * architecture names or `os-cpu` wildcards with `any` for either part
 * (`linux-any`, `any-amd64`); a plain Debian architecture name `cpu` is `linux-cpu`.
 */
export function archRestrictionAllows(restriction: ArchRestriction | undefined, arch: string): boolean {
  if (restriction === undefined) return true;
  const hit = restriction.arches.some((entry) => archMatches(entry, arch));
  return restriction.negated ? !hit : hit;
}

function archMatches(entry: string, arch: string): boolean {
  if (entry === arch || entry === "any") return true;
  const [os, cpu] = arch.includes("-") ? (arch.split("-", 2) as [string, string]) : ["linux", arch];
  const dash = entry.indexOf("-");
  if (dash < 0) return false;
  const eOs = entry.slice(0, dash);
  const eCpu = entry.slice(dash + 1);
  return (eOs === "any" || eOs === os) && (eCpu === "any" || eCpu === cpu);
}
