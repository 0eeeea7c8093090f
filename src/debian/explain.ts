// The explanation of a failure: the errors a resolution can end in, why a
// relation could not be met, the requests whose closure met the problem and
// the path from one of them to it, the text of each error, names close to an
// unknown one, and the errors' order.
import type { PackageRecord } from "./types.ts";
import { formatRelation, type Relation, type RelationError } from "./relations.ts";
import { byteOrder, suiteLabel, type Candidate, type Universe } from "./universe.ts";
import type { RelationField } from "./resolution.ts";
import { closure, type Node, type Pin, type Root, type Sel } from "./selection.ts";
import { editDistance } from "../diagnostics/suggest.ts";

interface ErrorBase<O> {
  message: string;
  /** Origins of the requests whose closure met the problem. */
  origins: O[];
  /** Package names from a request to where the problem is. */
  chain: string[];
}

export interface ConstraintSide<O> {
  relation: string;
  /** The request text or "package version" that wrote the constraint. */
  by: string;
  origins: O[];
}

export type ResolveError<O = unknown> =
  | (ErrorBase<O> & { code: "invalid-request"; request: string })
  | (ErrorBase<O> & { code: "unknown-package"; name: string; suggestions: string[] })
  | (ErrorBase<O> & { code: "unsatisfiable"; relation: string; available: string[] })
  | (ErrorBase<O> & { code: "conflicting-constraints"; name: string; constraints: ConstraintSide<O>[] })
  | (ErrorBase<O> & {
      code: "malformed-relation";
      package: string;
      version: string;
      field: RelationField;
      text: string;
      offset: number;
    })
  | (ErrorBase<O> & { code: "too-complex"; restarts: number });

/** An error, built once the selection is final so that its origins cover every path. */
export type MakeError<O> = (origins: O[], chain: string[]) => ResolveError<O>;

export function sortErrors<O>(errors: ResolveError<O>[]): ResolveError<O>[] {
  const seen = new Set<string>();
  return errors
    .sort((a, b) => byteOrder(a.code, b.code) || byteOrder(a.message, b.message))
    .filter((e) => {
      const key = `${e.code}\0${e.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

function reaches<O>(root: Root<O>, node: Sel<O>): boolean {
  return closure(root).has(node);
}

/** The request's name, then the packages on the first path from it to `node`. */
export function chainOf<O>(node: Node<O>): string[] {
  const path: string[] = [];
  const seen = new Set<Node<O>>();
  let n: Node<O> = node;
  while (n.kind === "sel" && !seen.has(n)) {
    seen.add(n);
    path.push(n.cand.record.name);
    n = n.parent;
  }
  if (n.kind === "root") path.push(n.relation.name);
  // A request for "x" selects the package x: name it once.
  return path.reverse().filter((name, i, all) => i === 0 || name !== all[i - 1]);
}

export function describe<O>(node: Node<O>): string {
  return node.kind === "root"
    ? `request '${node.text}'`
    : `${node.cand.record.name} ${node.cand.record.version}`;
}

export function describeCandidate(c: Candidate): string {
  return `${c.record.name} ${c.record.version} ${c.record.architecture} (${suiteLabel(c.record.from)})`;
}

/** Up to three names, real or virtual, within max(1, ⌊len/3⌋) edits: nearest first, then by name. */
export function suggestNames(universe: Universe, word: string): string[] {
  const limit = Math.max(1, Math.floor(word.length / 3));
  const w = word.toLowerCase();
  const hits: Array<{ name: string; distance: number }> = [];
  const consider = (name: string) => {
    if (Math.abs(name.length - w.length) > limit) return;
    const distance = editDistance(w, name.toLowerCase());
    if (distance <= limit) hits.push({ name, distance });
  };
  for (const name of universe.packages.keys()) consider(name);
  for (const name of universe.providers.keys()) if (!universe.packages.has(name)) consider(name);
  return hits
    .sort((a, b) => a.distance - b.distance || byteOrder(a.name, b.name))
    .slice(0, 3)
    .map((h) => h.name);
}

/** Origins of every request whose closure reaches `node`. */
export function originsOf<O>(roots: readonly Root<O>[], node: Node<O>): O[] {
  if (node.kind === "root") return [...node.origins];
  const out: O[] = [];
  for (const root of roots) {
    if (reaches(root, node)) out.push(...root.origins);
  }
  return out;
}

/** A constraint on this round's selection, as the node `by` wrote it. */
export function constraintSide<O>(roots: readonly Root<O>[], by: Node<O>, rel: Relation): ConstraintSide<O> {
  return { relation: formatRelation(rel), by: describe(by), origins: originsOf(roots, by) };
}

/** A constraint learned in an earlier round: its writer may be selected in this one. */
export function pinSide<O>(
  roots: readonly Root<O>[],
  selected: ReadonlyMap<string, Sel<O>>,
  name: string,
  pin: Pin,
): ConstraintSide<O> {
  const writer = [...selected.values()].find(
    (s) => `${s.cand.record.name} ${s.cand.record.version}` === pin.by,
  );
  const root = roots.find((r) => r.text === pin.by);
  const origins = writer ? originsOf(roots, writer) : root ? root.origins : [];
  return { relation: formatRelation({ name, constraint: pin.constraint }), by: pin.by, origins };
}

/** No version of `name` meets `text` (from `from`) and the constraints of `sides` written before it. */
export function conflictingConstraints<O>(
  from: Node<O>,
  name: string,
  text: string,
  occupant: Sel<O> | undefined,
  sides: ConstraintSide<O>[],
  origins: O[],
  chain: string[],
): ResolveError<O> {
  sides.push({ relation: text, by: describe(from), origins });
  const others = sides
    .slice(0, -1)
    .map((s) => `${s.relation} (from ${s.by})`)
    .join(" and ");
  return {
    code: "conflicting-constraints",
    message: `no version of ${name} meets both ${others} and ${text} (from ${describe(from)})${occupant ? `; selected: ${describeCandidate(occupant.cand)}` : ""}`,
    name,
    constraints: sides,
    origins: [...new Set([...sides.flatMap((s) => s.origins)])],
    chain,
  };
}

/** `from` needs `text`, which a version of the selected `occupant` meets but not its architecture. */
export function wrongArchitecture<O>(from: Node<O>, text: string, occupant: Sel<O>): MakeError<O> {
  return (origins, chain) => ({
    code: "unsatisfiable",
    message: `${describe(from)} needs ${text}, but the selected ${describeCandidate(occupant.cand)} does not satisfy it (Multi-Arch: ${occupant.cand.record.multiArch ?? "no"})`,
    relation: text,
    available: [describeCandidate(occupant.cand)],
    origins,
    chain,
  });
}

/** `from` needs `alt`, and no version of that name fits; `available` are the ones that do not. */
export function noCandidateFits<O>(from: Node<O>, alt: Relation, available: string[]): MakeError<O> {
  const text = formatRelation(alt);
  const list = available.length > 0 ? `; available: ${available.join(", ")}` : "";
  return (origins, chain) => ({
    code: "unsatisfiable",
    message: `${describe(from)} needs ${text}, and no candidate fits${list}`,
    relation: text,
    available,
    origins,
    chain,
  });
}

/** `from` needs `a | b`, and each alternative is unknown or has no version that fits. */
export function noneInstallable<O>(
  from: Node<O>,
  group: readonly Relation[],
  failures: ReadonlyArray<{ alt: Relation; unknown: boolean }>,
  available: string[],
): MakeError<O> {
  const text = group.map(formatRelation).join(" | ");
  const why = failures
    .map((f) => `${formatRelation(f.alt)}: ${f.unknown ? "no such package" : "no version fits"}`)
    .join("; ");
  return (origins, chain) => ({
    code: "unsatisfiable",
    message: `${describe(from)} needs ${text}, and none can be installed (${why})`,
    relation: text,
    available,
    origins,
    chain,
  });
}

/** `from` needs a name no suite offers or provides; names close to it are suggested (`suggestions`, for the hint). */
export function unknownPackage<O>(universe: Universe, from: Node<O>, alt: Relation): MakeError<O> {
  const suggestions = suggestNames(universe, alt.name);
  const what =
    from.kind === "root"
      ? `unknown package '${alt.name}'`
      : `${describe(from)} depends on unknown package '${alt.name}'`;
  return (origins, chain) => ({
    code: "unknown-package",
    message: `${what}: no suite offers it or provides it`,
    name: alt.name,
    suggestions,
    origins,
    chain,
  });
}

/** A package whose relation field does not parse. */
export function malformedRelation<O>(
  record: PackageRecord,
  field: RelationField,
  error: RelationError,
): MakeError<O> {
  return (origins, chain) => ({
    code: "malformed-relation",
    message: `${record.name} ${record.version} (${suiteLabel(record.from)}) has a malformed ${field} field: ${error.message}`,
    package: record.name,
    version: record.version,
    field,
    text: error.text,
    offset: error.offset,
    origins,
    chain,
  });
}
