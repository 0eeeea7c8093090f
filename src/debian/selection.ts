// The selection a round builds and the questions asked of it: the requests,
// merged, and the packages selected, each linked to what needed it; the
// constraints learned in earlier rounds; the selection (and a probe's
// tentative additions) indexed by name and by Provides; and whether a relation
// is already met by it, for the depender's architecture.
import type { PackageRecord } from "./types.ts";
import { archSatisfies } from "./multiarch.ts";
import { parseRelationField, satisfies, type Relation, type VersionConstraint } from "./relations.ts";
import type { Candidate, Universe } from "./universe.ts";
import type { Reason, RelationField } from "./resolution.ts";

/** A request, merged with identical ones. */
export interface Root<O> {
  kind: "root";
  text: string;
  relation: Relation;
  origins: O[];
  deps: Sel<O>[];
}

/** A selected package. */
export interface Sel<O> {
  kind: "sel";
  cand: Candidate;
  slot: string;
  reasons: Map<string, Reason>;
  /** Constraints on this name it was checked against, for conflict messages. */
  constraints: Array<{ constraint: VersionConstraint; by: Node<O> }>;
  /** The first node that pulled it in: one path back to a request. */
  parent: Node<O>;
  deps: Sel<O>[];
}

export type Node<O> = Root<O> | Sel<O>;

/** A constraint learned in an earlier round, applied from the start of the next. */
export interface Pin {
  constraint: VersionConstraint;
  by: string;
}

/** A selected or tentatively selected package, as `satisfier` looks at it. */
export interface Holder {
  cand: Candidate;
}

/** Packages a probe would add on top of the selection, indexed the way the selection is. */
export class Tentative {
  readonly slots = new Map<string, Candidate>();
  readonly byName = new Map<string, Holder[]>();
  readonly providers = new Map<string, Array<{ sel: Holder; version: string | undefined }>>();

  add(cand: Candidate, slot: string): void {
    this.slots.set(slot, cand);
    const holder = { cand };
    push(this.byName, cand.record.name, holder);
    for (const p of cand.provides) push(this.providers, p.name, { sel: holder, version: p.version });
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The packages a request's closure holds: its deps, theirs, and so on. */
export function closure<O>(root: Root<O>): Set<Sel<O>> {
  const seen = new Set<Sel<O>>();
  const stack = [...root.deps];
  for (let s = stack.pop(); s !== undefined; s = stack.pop()) {
    if (seen.has(s)) continue;
    seen.add(s);
    stack.push(...s.deps);
  }
  return seen;
}

/** The request text or package name, as choices record who needed them. */
export function neededBy<O>(node: Node<O>): string {
  return node.kind === "root" ? node.text : node.cand.record.name;
}

/** Each record's relation fields, parsed once per resolve call and shared by its rounds. */
export type ParsedFields = Map<PackageRecord, Map<RelationField, ReturnType<typeof parseRelationField>>>;

/** The selection of one round, and what it answers about relations. */
export class Selection<O> {
  protected readonly universe: Universe;
  protected readonly native: string;
  protected readonly roots: readonly Root<O>[];
  protected readonly pins: ReadonlyMap<string, readonly Pin[]>;
  private readonly parsed: ParsedFields;
  protected readonly selected = new Map<string, Sel<O>>();
  protected readonly selectedByName = new Map<string, Sel<O>[]>();
  protected readonly selectedProviders = new Map<
    string,
    Array<{ sel: Sel<O>; version: string | undefined }>
  >();

  constructor(
    universe: Universe,
    native: string,
    roots: readonly Root<O>[],
    pins: ReadonlyMap<string, readonly Pin[]>,
    parsed: ParsedFields,
  ) {
    this.universe = universe;
    this.native = native;
    this.roots = roots;
    this.pins = pins;
    this.parsed = parsed;
  }

  /** A record's relation field, parsed once per resolve call. */
  protected groupsOf(
    record: PackageRecord,
    field: RelationField,
    text: string,
  ): ReturnType<typeof parseRelationField> {
    let fields = this.parsed.get(record);
    if (fields === undefined) this.parsed.set(record, (fields = new Map()));
    let groups = fields.get(field);
    if (groups === undefined) fields.set(field, (groups = parseRelationField(text)));
    return groups;
  }

  protected dependerArch(from: Node<O>): string {
    return from.kind === "root" ? this.native : from.cand.record.architecture;
  }

  protected archOk(cand: Candidate, alt: Relation, dependerArch: string): boolean {
    return archSatisfies(cand.record, alt.arch, dependerArch, this.native);
  }

  protected pinsAllow(cand: Candidate): boolean {
    const pins = this.pins.get(cand.record.name);
    return pins === undefined || pins.every((p) => satisfies(cand.record.version, p.constraint));
  }

  /** The first of `byName` (by its name) or `providers` (by Provides) that satisfies `alt` for a depender of `dependerArch`. */
  protected satisfier<H extends Holder>(
    byName: ReadonlyMap<string, readonly H[]>,
    providers: ReadonlyMap<string, ReadonlyArray<{ sel: H; version: string | undefined }>>,
    alt: Relation,
    dependerArch: string,
  ): { sel: H; byName: boolean } | undefined {
    for (const sel of byName.get(alt.name) ?? []) {
      if (this.archOk(sel.cand, alt, dependerArch) && satisfies(sel.cand.record.version, alt.constraint))
        return { sel, byName: true };
    }
    for (const { sel, version } of providers.get(alt.name) ?? []) {
      if (!this.archOk(sel.cand, alt, dependerArch)) continue;
      if (alt.constraint && (version === undefined || !satisfies(version, alt.constraint))) continue;
      return { sel, byName: false };
    }
    return undefined;
  }
}
