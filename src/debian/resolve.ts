// The dependency closure of what a recipe asks for: the packages that
// satisfy every Depends and Pre-Depends of every package selected, starting
// from the requests and nothing else. The base system (Essential, Priority:
// required) comes in only when something depends on it.
//
// The resolver is greedy and deterministic:
// 1. every request is selected first, so alternatives prefer what was asked for;
// 2. relations with one possible answer are followed breadth-first;
// 3. only when none are left is a choice made (`a | b`, or a virtual name with
//    several providers), the oldest pending one first, and step 2 resumes:
//    a choice made late sees more of the selection and reuses it;
// 4. a relation that needs another version of a selected package adds its
//    constraint and starts over, so each name's candidate is always the highest
//    version meeting every constraint seen; constraints no version meets
//    together are an error naming both requesters.
//
// A choice (step 3) takes an alternative, or provider, the selection already
// has. Failing that, "smallest closure" measures each option by what its
// tentative closure adds to the selection as it is at that moment: the sum, in
// KiB, over the packages it would add (itself included) of their
// Installed-Size, a record without one counting as 1 KiB (MISSING_SIZE_KIB).
// Debian's order stands unless the saving is an order of magnitude: the first
// installable option in the usual order (the relation's order for `a | b`,
// Priority required/important/standard then name for providers) is taken,
// unless a later one adds at most 1/ORDER_MARGIN (a tenth) of what the one
// taken so far adds, which it then replaces. apt takes the first alternative
// because dpkg is always installed; an image has only what its closure brings,
// and readline-common's `dpkg | install-info` should bring install-info (253
// KiB on bookworm), not dpkg with tar and seven libraries (11,981 KiB). But
// fontconfig-config's `fonts-dejavu-core | ttf-bitstream-vera | ...` should
// keep the font Debian names first (2,960 KiB) over a smaller one (595 KiB):
// the order says which is the better answer, and only a large saving beats it.
// Sizes, not counts of packages: a count would take locales-all (2 packages
// with libc-l10n, 231,717 KiB) for `locales | locales-all` over locales (4
// packages with libc-l10n, libc-bin and debconf, 22,730 KiB), which is first
// anyway. The tentative closure is a probe that selects nothing: it follows
// Depends and Pre-Depends like steps 2 and 3, but a choice inside it takes the
// first installable alternative (the provider by Priority, then name) instead
// of probing again, so a probe costs one walk. A probe stops summing once it
// can no longer win (past a tenth of the total of the option taken so far),
// and its total is kept until the selection next grows, so an alternative
// probed again at the same state (a virtual name's providers, then the group
// it is in) is walked once. A probe that meets something not installable (an
// unknown name, no fitting version, another version of a selected package) is
// a dead end and is skipped: it is never taken, and a dead end first in the
// order leaves the default to the next option. When every option is one, the
// first is taken as before and its error, or restart, follows. Each choice is
// recorded with the totals compared (`alternativeChoices`, `providerChoices`).
import type { PackageRecord } from "./types.ts";
import { archSatisfies, slotKey } from "./multiarch.ts";
import {
  archRestrictionAllows,
  formatRelation,
  packageNameProblem,
  parseRelationField,
  satisfies,
  type Relation,
  type RelationGroup,
  type VersionConstraint,
} from "./relations.ts";
import { suiteLabel, type Candidate, type Universe } from "./universe.ts";
import { versionProblem } from "./version.ts";
import { editDistance } from "../diagnostics/suggest.ts";

/** One package the recipe asks for; `origin` (e.g. the recipe line) comes back in errors. */
export interface PackageRequest<O = unknown> {
  name: string;
  /** "any", "native" or an architecture, as in `name:arch`. */
  arch?: string;
  constraint?: VersionConstraint;
  origin: O;
}

export interface ResolveOptions {
  /** The native architecture of the image: "amd64". */
  arch: string;
}

export type RelationField = "Depends" | "Pre-Depends";

export type Reason =
  | { kind: "requested"; request: string }
  | { kind: "dependency"; of: string; field: RelationField; relation: string };

export interface ResolvedPackage {
  record: PackageRecord;
  /** Why it is in the closure: requested, and/or every selected package that depends on it. */
  reasons: Reason[];
  /** Names of the requests whose closure contains it. */
  requestedBy: string[];
}

/** A record without Installed-Size counts as this many KiB in the smallest-closure rule. */
export const MISSING_SIZE_KIB = 1;

/**
 * In the smallest-closure rule, a later option replaces the one taken so far
 * only when it adds at most 1/ORDER_MARGIN of that one's Installed-Size.
 */
export const ORDER_MARGIN = 10;

/** What one option of a choice would add to the selection, as the smallest-closure rule measured it. */
export interface Tally {
  /** The package the option would select. */
  package: string;
  /**
   * Installed-Size, in KiB, of the packages its tentative closure adds, itself
   * included (MISSING_SIZE_KIB for a record without one). When `stopped` is
   * "cap", the most it could add and still win (the total of the option
   * winning before it, divided by ORDER_MARGIN and rounded down), which this
   * one passed; when "dead-end", what it added before meeting the dead end.
   */
  kib: number;
  /** How many packages those are; absent when `stopped` is "cap". */
  packages?: number;
  /** "cap": summing stopped once it could no longer win; "dead-end": its closure needs something not installable. */
  stopped?: "cap" | "dead-end";
}

/** How a virtual name was satisfied, so the report can say which provider was picked and why. */
export interface ProviderChoice {
  virtual: string;
  chosen: string;
  /** Every provider that could have satisfied it, by name. */
  among: string[];
  /**
   * "smallest-closure" when it adds at most 1/ORDER_MARGIN of the Installed-Size
   * of the provider the other rules put first (or of the one that beat that).
   */
  rule: "only-provider" | "priority" | "name-order" | "smallest-closure";
  /** With several providers: what each would add, in the order ties are broken. */
  sizes?: Tally[];
  /** The request text or package name that needed it. */
  neededBy: string;
}

/** How `a | b` was satisfied when more than one alternative could be installed and none was selected. */
export interface AlternativeChoice {
  /** The group as the resolver saw it (alternatives for other architectures left out). */
  relation: string;
  /** The alternative taken, and the package it selected. */
  alternative: string;
  chosen: string;
  /**
   * "first": the first installable alternative, none after it adding 1/ORDER_MARGIN
   * of its Installed-Size or less; "smallest-closure": a later one that does
   * (and that none after it beats by the same margin).
   */
  rule: "first" | "smallest-closure";
  /** Each installable alternative, in the relation's order, with what it would add. */
  sizes: Array<Tally & { alternative: string }>;
  /** The request text or package name that needed it. */
  neededBy: string;
}

export interface Resolution {
  /** Sorted by name, then architecture. */
  packages: ResolvedPackage[];
  /** Sorted by virtual name, then who needed it. */
  providerChoices: ProviderChoice[];
  /** Sorted by who needed it, then the relation. */
  alternativeChoices: AlternativeChoice[];
}

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
  | (ErrorBase<O> & { code: "malformed-relation"; package: string; version: string; field: RelationField; text: string; offset: number })
  | (ErrorBase<O> & { code: "too-complex"; restarts: number });

export type ResolveResult<O> = { ok: true; resolution: Resolution } | { ok: false; errors: ResolveError<O>[] };

/** Enough for any real archive: each restart adds a distinct constraint. */
const MAX_RESTARTS = 1000;

const HIGH_PRIORITIES: ReadonlySet<string> = new Set(["required", "important", "standard"]);

/** The canonical text of a request, as the lockfile records it. */
export function requestText(r: Pick<PackageRequest, "name" | "arch" | "constraint">): string {
  return formatRelation(r);
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A request, merged with identical ones. */
interface Root<O> {
  kind: "root";
  text: string;
  relation: Relation;
  origins: O[];
  deps: Sel<O>[];
}

/** A selected package. */
interface Sel<O> {
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

type Node<O> = Root<O> | Sel<O>;

/** A constraint learned in an earlier round, applied from the start of the next. */
interface Pin {
  constraint: VersionConstraint;
  by: string;
}

/** How a provider was picked, for its ProviderChoice. */
interface Virtual {
  among: string[];
  rule: ProviderChoice["rule"];
  sizes?: Tally[];
}

type Plan<O> =
  | { kind: "select"; cand: Candidate; virtual?: Virtual }
  | { kind: "choice" }
  | { kind: "conflict"; occupant: Sel<O> | undefined }
  | { kind: "unknown" }
  | { kind: "unsatisfiable"; available: string[] };

/** A plan once choices are made. */
type Decided<O> = Exclude<Plan<O>, { kind: "choice" }>;

/**
 * How `plan` settles several providers: defer the choice, take the first by
 * Priority then name (inside a probe), or measure what each adds (a real choice).
 */
type Decide = "defer" | "by-order" | "smallest-closure";

/** What a probe measured: the tally without the package's name. */
type Total = Omit<Tally, "package">;

/** A selected or tentatively selected package, as `satisfier` looks at it. */
interface Holder {
  cand: Candidate;
}

/** Packages a probe would add on top of the selection, indexed the way the selection is. */
class Tentative {
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

/**
 * Resolve the closure of `requests` in `universe` for `options.arch`. Output
 * and errors are the same whatever the order of the requests or the records.
 */
export function resolve<O>(universe: Universe, requests: readonly PackageRequest<O>[], options: ResolveOptions): ResolveResult<O> {
  const requestErrors: ResolveError<O>[] = [];
  const byText = new Map<string, Root<O>>();
  for (const r of requests) {
    const text = requestText(r);
    const problem = requestProblem(r);
    if (problem !== undefined) {
      requestErrors.push({ code: "invalid-request", message: `invalid package request '${text}': ${problem}`, request: text, origins: [r.origin], chain: [] });
      continue;
    }
    const relation: Relation = { name: r.name };
    if (r.arch !== undefined) relation.arch = r.arch;
    if (r.constraint !== undefined) relation.constraint = r.constraint;
    const root = byText.get(text);
    if (root) root.origins.push(r.origin);
    else byText.set(text, { kind: "root", text, relation, origins: [r.origin], deps: [] });
  }
  const roots = [...byText.values()].sort((a, b) => byteOrder(a.text, b.text));
  const parsed = new Map<PackageRecord, Map<RelationField, ReturnType<typeof parseRelationField>>>();
  const pins = new Map<string, Pin[]>();
  for (let round = 0; round <= MAX_RESTARTS; round++) {
    for (const root of roots) root.deps = [];
    const outcome = new Round(universe, options.arch, roots, pins, parsed).run();
    if (outcome.kind === "restart") {
      const list = pins.get(outcome.name);
      if (list) list.push(outcome.pin);
      else pins.set(outcome.name, [outcome.pin]);
      continue;
    }
    const errors = [...requestErrors, ...outcome.errors];
    if (errors.length > 0) return { ok: false, errors: sortErrors(errors) };
    return { ok: true, resolution: outcome.resolution };
  }
  const origins = roots.flatMap((r) => r.origins);
  return {
    ok: false,
    errors: [{ code: "too-complex", message: `gave up after ${MAX_RESTARTS} restarts: version constraints keep changing the selection`, restarts: MAX_RESTARTS, origins, chain: [] }],
  };
}

function requestProblem(r: PackageRequest<unknown>): string | undefined {
  const name = packageNameProblem(r.name);
  if (name !== undefined) return name;
  if (r.arch !== undefined && !/^[a-z0-9][a-z0-9-]*$/.test(r.arch)) return `invalid architecture qualifier ':${r.arch}'`;
  if (r.constraint !== undefined) return versionProblem(r.constraint.version);
  return undefined;
}

function sortErrors<O>(errors: ResolveError<O>[]): ResolveError<O>[] {
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

type Outcome<O> = { kind: "restart"; name: string; pin: Pin } | { kind: "done"; errors: ResolveError<O>[]; resolution: Resolution };

/** Restart signal, thrown from deep inside a round and caught by run(). */
class Restart {
  name: string;
  pin: Pin;
  constructor(name: string, pin: Pin) {
    this.name = name;
    this.pin = pin;
  }
}

/** One attempt at the closure with a fixed set of learned constraints. */
class Round<O> {
  private readonly universe: Universe;
  private readonly native: string;
  private readonly roots: readonly Root<O>[];
  private readonly pins: ReadonlyMap<string, readonly Pin[]>;
  private readonly parsed: Map<PackageRecord, Map<RelationField, ReturnType<typeof parseRelationField>>>;
  private readonly selected = new Map<string, Sel<O>>();
  private readonly selectedByName = new Map<string, Sel<O>[]>();
  private readonly selectedProviders = new Map<string, Array<{ sel: Sel<O>; version: string | undefined }>>();
  private readonly queue: Sel<O>[] = [];
  private readonly deferred: Array<{ from: Node<O>; group: RelationGroup; field: RelationField }> = [];
  private readonly choices: ProviderChoice[] = [];
  private readonly alternativeChoices: AlternativeChoice[] = [];
  /** Probe totals by candidate, good while the selection has `probedAt` packages (it only grows in a round). */
  private readonly probes = new Map<Candidate, Total>();
  private probedAt = 0;
  /** Built once the selection is final, so origins cover every path. */
  private readonly errorThunks: Array<() => ResolveError<O>> = [];

  constructor(
    universe: Universe,
    native: string,
    roots: readonly Root<O>[],
    pins: ReadonlyMap<string, readonly Pin[]>,
    parsed: Map<PackageRecord, Map<RelationField, ReturnType<typeof parseRelationField>>>,
  ) {
    this.universe = universe;
    this.native = native;
    this.roots = roots;
    this.pins = pins;
    this.parsed = parsed;
  }

  run(): Outcome<O> {
    try {
      for (const root of this.roots) this.need(root, [root.relation], "Depends");
      this.drain();
      for (let next = this.deferred.shift(); next !== undefined; next = this.deferred.shift()) {
        this.choose(next.from, next.group, next.field);
        this.drain();
      }
    } catch (e) {
      if (e instanceof Restart) return { kind: "restart", name: e.name, pin: e.pin };
      throw e;
    }
    return { kind: "done", errors: this.errorThunks.map((f) => f()), resolution: this.resolution() };
  }

  // ---- walking

  private drain(): void {
    for (let sel = this.queue.shift(); sel !== undefined; sel = this.queue.shift()) {
      this.visit(sel, "Pre-Depends", sel.cand.record.preDepends);
      this.visit(sel, "Depends", sel.cand.record.depends);
    }
  }

  /** A record's relation field, parsed once per resolve call. */
  private groupsOf(record: PackageRecord, field: RelationField, text: string): ReturnType<typeof parseRelationField> {
    let fields = this.parsed.get(record);
    if (fields === undefined) this.parsed.set(record, (fields = new Map()));
    let groups = fields.get(field);
    if (groups === undefined) fields.set(field, (groups = parseRelationField(text)));
    return groups;
  }

  private visit(sel: Sel<O>, field: RelationField, text: string): void {
    if (text === "") return;
    const groups = this.groupsOf(sel.cand.record, field, text);
    if (!groups.ok) {
      const { error } = groups;
      const record = sel.cand.record;
      this.fail(sel, (origins, chain) => ({
        code: "malformed-relation",
        message: `${record.name} ${record.version} (${suiteLabel(record.from)}) has a malformed ${field} field: ${error.message}`,
        package: record.name,
        version: record.version,
        field,
        text: error.text,
        offset: error.offset,
        origins,
        chain,
      }));
      return;
    }
    for (const group of groups.value) this.need(sel, group, field);
  }

  /** A relation group of `from`: satisfied already, selected now, or deferred as a choice. */
  private need(from: Node<O>, group: RelationGroup, field: RelationField): void {
    const alts = group.filter((r) => archRestrictionAllows(r.archRestriction, this.native));
    if (alts.length === 0) return;
    for (const alt of alts) {
      if (this.satisfiedBySelection(from, alt, field)) return;
    }
    if (alts.length > 1) {
      this.deferred.push({ from, group: alts, field });
      return;
    }
    const alt = alts[0]!;
    const plan = this.plan(this.dependerArch(from), alt, "defer");
    if (plan.kind === "choice") this.deferred.push({ from, group: alts, field });
    else this.act(from, alt, field, plan);
  }

  /**
   * A pending choice: an alternative the selection has; else, of those that
   * can be selected without changing the selection, the first, unless a later
   * one adds at most 1/ORDER_MARGIN of its Installed-Size; else the first that
   * needs another version of a selected one.
   */
  private choose(from: Node<O>, group: RelationGroup, field: RelationField): void {
    for (const alt of group) {
      if (this.satisfiedBySelection(from, alt, field)) return;
    }
    const arch = this.dependerArch(from);
    const plans = group.map((alt) => ({ alt, plan: this.plan(arch, alt, "smallest-closure") }));
    const selectable = plans.flatMap((p) => (p.plan.kind === "select" ? [{ alt: p.alt, plan: p.plan }] : []));
    if (selectable.length > 1) {
      const { winner, byOrder, totals } = this.smallestClosure(selectable.map((p) => p.plan.cand));
      const pick = selectable[winner]!;
      this.alternativeChoices.push({
        relation: group.map(formatRelation).join(" | "),
        alternative: formatRelation(pick.alt),
        chosen: pick.plan.cand.record.name,
        rule: byOrder ? "first" : "smallest-closure",
        sizes: selectable.map((p, i) => ({ alternative: formatRelation(p.alt), package: p.plan.cand.record.name, ...totals[i]! })),
        neededBy: neededBy(from),
      });
      this.act(from, pick.alt, field, pick.plan);
      return;
    }
    const pick = selectable[0] ?? plans.find((p) => p.plan.kind === "conflict");
    if (pick !== undefined) {
      this.act(from, pick.alt, field, pick.plan);
      return;
    }
    if (plans.length === 1) {
      this.act(from, plans[0]!.alt, field, plans[0]!.plan);
      return;
    }
    const text = group.map(formatRelation).join(" | ");
    const available = plans.flatMap((p) => (p.plan.kind === "unsatisfiable" ? p.plan.available : []));
    const why = plans.map((p) => `${formatRelation(p.alt)}: ${p.plan.kind === "unknown" ? "no such package" : "no version fits"}`).join("; ");
    this.fail(from, (origins, chain) => ({
      code: "unsatisfiable",
      message: `${describe(from)} needs ${text}, and none can be installed (${why})`,
      relation: text,
      available,
      origins,
      chain,
    }));
  }

  private act(from: Node<O>, alt: Relation, field: RelationField, plan: Decided<O>): void {
    switch (plan.kind) {
      case "select":
        this.select(from, alt, field, plan.cand, plan.virtual);
        return;
      case "conflict":
        this.conflict(from, alt, plan.occupant);
        return;
      case "unknown":
        this.unknown(from, alt);
        return;
      case "unsatisfiable": {
        const text = formatRelation(alt);
        const list = plan.available.length > 0 ? `; available: ${plan.available.join(", ")}` : "";
        this.fail(from, (origins, chain) => ({
          code: "unsatisfiable",
          message: `${describe(from)} needs ${text}, and no candidate fits${list}`,
          relation: text,
          available: plan.available,
          origins,
          chain,
        }));
        return;
      }
    }
  }

  // ---- the selection

  private dependerArch(from: Node<O>): string {
    return from.kind === "root" ? this.native : from.cand.record.architecture;
  }

  private archOk(cand: Candidate, alt: Relation, dependerArch: string): boolean {
    return archSatisfies(cand.record, alt.arch, dependerArch, this.native);
  }

  private pinsAllow(cand: Candidate): boolean {
    const pins = this.pins.get(cand.record.name);
    return pins === undefined || pins.every((p) => satisfies(cand.record.version, p.constraint));
  }

  /** Link `from` to a selected package that already satisfies `alt`, if there is one. */
  private satisfiedBySelection(from: Node<O>, alt: Relation, field: RelationField): boolean {
    const found = this.satisfier(this.selectedByName, this.selectedProviders, alt, this.dependerArch(from));
    if (found === undefined) return false;
    if (found.byName && alt.constraint) found.sel.constraints.push({ constraint: alt.constraint, by: from });
    this.link(from, found.sel, alt, field);
    return true;
  }

  /** The first of `byName` (by its name) or `providers` (by Provides) that satisfies `alt` for a depender of `dependerArch`. */
  private satisfier<H extends Holder>(
    byName: ReadonlyMap<string, readonly H[]>,
    providers: ReadonlyMap<string, ReadonlyArray<{ sel: H; version: string | undefined }>>,
    alt: Relation,
    dependerArch: string,
  ): { sel: H; byName: boolean } | undefined {
    for (const sel of byName.get(alt.name) ?? []) {
      if (this.archOk(sel.cand, alt, dependerArch) && satisfies(sel.cand.record.version, alt.constraint)) return { sel, byName: true };
    }
    for (const { sel, version } of providers.get(alt.name) ?? []) {
      if (!this.archOk(sel.cand, alt, dependerArch)) continue;
      if (alt.constraint && (version === undefined || !satisfies(version, alt.constraint))) continue;
      return { sel, byName: false };
    }
    return undefined;
  }

  /**
   * What would satisfy `alt` for a depender of `dependerArch`, the selection
   * (and `tentative`, in a probe) not having it: the best real package of
   * that name; else a provider (the only one, or as `decide` says).
   */
  private plan(dependerArch: string, alt: Relation, decide: "by-order" | "smallest-closure", tentative?: Tentative): Decided<O>;
  private plan(dependerArch: string, alt: Relation, decide: Decide, tentative?: Tentative): Plan<O>;
  private plan(dependerArch: string, alt: Relation, decide: Decide, tentative?: Tentative): Plan<O> {
    const reals = (this.universe.packages.get(alt.name) ?? []).filter((c) => this.archOk(c, alt, dependerArch));
    const fitting = reals.filter((c) => satisfies(c.record.version, alt.constraint));
    const best = fitting.find((c) => this.pinsAllow(c));
    if (best !== undefined) {
      const slot = slotKey(best.record.name, best.record.architecture, this.native);
      const occupant = this.selected.get(slot);
      if (occupant !== undefined || tentative?.slots.has(slot)) return { kind: "conflict", occupant };
      return { kind: "select", cand: best };
    }

    const byProvider = new Map<string, Candidate>();
    for (const p of this.universe.providers.get(alt.name) ?? []) {
      const c = p.provider;
      if (byProvider.has(c.record.name) || !this.archOk(c, alt, dependerArch) || !this.pinsAllow(c)) continue;
      if (alt.constraint && (p.version === undefined || !satisfies(p.version, alt.constraint))) continue;
      // A provider selected at another version does not provide this: that version would have matched.
      const slot = slotKey(c.record.name, c.record.architecture, this.native);
      if (this.selected.has(slot) || tentative?.slots.has(slot)) continue;
      byProvider.set(c.record.name, c);
    }
    const providers = [...byProvider.values()];
    if (providers.length === 1) return { kind: "select", cand: providers[0]!, virtual: { among: [providers[0]!.record.name], rule: "only-provider" } };
    if (providers.length > 1) {
      if (decide === "defer") return { kind: "choice" };
      return this.pickProvider(providers, decide);
    }
    // Versions of that name would fit, but constraints learned earlier exclude them.
    if (fitting.length > 0) return { kind: "conflict", occupant: this.selectedByName.get(alt.name)?.[0] };
    const known = reals.length > 0 || this.universe.packages.has(alt.name) || this.universe.providers.has(alt.name);
    if (!known) return { kind: "unknown" };
    const all = this.universe.packages.get(alt.name) ?? [];
    return { kind: "unsatisfiable", available: all.map((c) => describeCandidate(c)) };
  }

  /**
   * Several providers, in the order Priority required/important/standard
   * first, then name; "smallest-closure" takes the first of them unless a
   * later one adds at most 1/ORDER_MARGIN of its Installed-Size.
   */
  private pickProvider(providers: readonly Candidate[], decide: "by-order" | "smallest-closure"): Decided<O> {
    const high = (c: Candidate) => HIGH_PRIORITIES.has(c.record.priority ?? "");
    const sorted = [...providers].sort((a, b) => Number(high(b)) - Number(high(a)) || byteOrder(a.record.name, b.record.name));
    const among = [...providers].sort((a, b) => byteOrder(a.record.name, b.record.name)).map((c) => c.record.name);
    const ordered = (c: Candidate) => (high(c) && !providers.every(high) ? "priority" : "name-order");
    if (decide === "by-order") return { kind: "select", cand: sorted[0]!, virtual: { among, rule: ordered(sorted[0]!) } };
    const { winner, byOrder, totals } = this.smallestClosure(sorted);
    const cand = sorted[winner]!;
    const sizes = sorted.map((c, i) => ({ package: c.record.name, ...totals[i]! }));
    return { kind: "select", cand, virtual: { among, rule: byOrder ? ordered(cand) : "smallest-closure", sizes } };
  }

  // ---- the smallest-closure rule

  /**
   * Of `options` (in the usual order), the index of the one taken: the first
   * that is not a dead end, unless a later one adds at most 1/ORDER_MARGIN of
   * what the one taken so far adds; the first when all are dead ends. Each
   * later option is summed only as far as it could win.
   */
  private smallestClosure(options: readonly Candidate[]): { winner: number; byOrder: boolean; totals: Total[] } {
    let winner = 0;
    let first: number | undefined;
    // The most a later option may add and still win; Installed-Size is whole KiB.
    let limit = Infinity;
    const totals: Total[] = [];
    options.forEach((cand, i) => {
      const total = this.probe(cand, limit);
      totals.push(total);
      if (total.stopped === undefined && total.kib <= limit) {
        limit = Math.floor(total.kib / ORDER_MARGIN);
        winner = i;
        first ??= i;
      }
    });
    return { winner, byOrder: winner === (first ?? 0), totals };
  }

  /**
   * The Installed-Size (KiB) selecting `cand` would add to the selection,
   * itself included, summed no further than past `limit`. Selects nothing; a choice
   * met on the way takes the first installable alternative (providers by order).
   */
  private probe(cand: Candidate, limit: number): Total {
    if (this.probedAt !== this.selected.size) {
      this.probes.clear();
      this.probedAt = this.selected.size;
    }
    // The walk is the same whatever the limit, which only stops it: a total
    // kept from a walk that went at least as far answers as a new walk would.
    const known = this.probes.get(cand);
    if (known !== undefined && (known.stopped !== "cap" || limit <= known.kib)) {
      return known.kib <= limit ? known : { kib: limit, stopped: "cap" };
    }
    const total = this.walk(cand, limit);
    this.probes.set(cand, total);
    return total;
  }

  private walk(start: Candidate, limit: number): Total {
    const tentative = new Tentative();
    const queue: Candidate[] = [];
    const pending: Array<{ arch: string; alts: RelationGroup }> = [];
    let kib = 0;
    const add = (cand: Candidate): boolean => {
      tentative.add(cand, slotKey(cand.record.name, cand.record.architecture, this.native));
      queue.push(cand);
      kib += cand.record.installedSize ?? MISSING_SIZE_KIB;
      return kib > limit;
    };
    const satisfied = (alt: Relation, arch: string) =>
      this.satisfier(this.selectedByName, this.selectedProviders, alt, arch) !== undefined ||
      this.satisfier(tentative.byName, tentative.providers, alt, arch) !== undefined;
    const capped = (): Total => ({ kib: limit, stopped: "cap" });
    const deadEnd = (): Total => ({ kib, packages: tentative.slots.size, stopped: "dead-end" });

    if (add(start)) return capped();
    let next = 0;
    for (;;) {
      for (; next < queue.length; next++) {
        const record = queue[next]!.record;
        for (const [field, text] of [["Pre-Depends", record.preDepends], ["Depends", record.depends]] as const) {
          if (text === "") continue;
          const groups = this.groupsOf(record, field, text);
          if (!groups.ok) return deadEnd();
          for (const group of groups.value) {
            const alts = group.filter((r) => archRestrictionAllows(r.archRestriction, this.native));
            if (alts.length === 0 || alts.some((alt) => satisfied(alt, record.architecture))) continue;
            const plan = alts.length === 1 ? this.plan(record.architecture, alts[0]!, "defer", tentative) : ({ kind: "choice" } as const);
            if (plan.kind === "choice") pending.push({ arch: record.architecture, alts });
            else if (plan.kind !== "select") return deadEnd();
            else if (add(plan.cand)) return capped();
          }
        }
      }
      const choice = pending.shift();
      if (choice === undefined) return { kib, packages: tentative.slots.size };
      if (choice.alts.some((alt) => satisfied(alt, choice.arch))) continue;
      const pick = choice.alts.map((alt) => this.plan(choice.arch, alt, "by-order", tentative)).find((p) => p.kind === "select");
      if (pick === undefined) return deadEnd();
      if (add(pick.cand)) return capped();
    }
  }

  // ---- selecting

  private select(from: Node<O>, alt: Relation, field: RelationField, cand: Candidate, virtual?: Virtual): void {
    const record = cand.record;
    const sel: Sel<O> = {
      kind: "sel",
      cand,
      slot: slotKey(record.name, record.architecture, this.native),
      reasons: new Map(),
      constraints: [],
      parent: from,
      deps: [],
    };
    this.selected.set(sel.slot, sel);
    const named = this.selectedByName.get(record.name);
    if (named) named.push(sel);
    else this.selectedByName.set(record.name, [sel]);
    for (const p of cand.provides) {
      const list = this.selectedProviders.get(p.name);
      const entry = { sel, version: p.version };
      if (list) list.push(entry);
      else this.selectedProviders.set(p.name, [entry]);
    }
    if (virtual === undefined && alt.constraint) sel.constraints.push({ constraint: alt.constraint, by: from });
    if (virtual !== undefined) {
      this.choices.push({
        virtual: alt.name,
        chosen: record.name,
        among: virtual.among,
        rule: virtual.rule,
        ...(virtual.sizes !== undefined ? { sizes: virtual.sizes } : {}),
        neededBy: neededBy(from),
      });
    }
    this.link(from, sel, alt, field);
    this.queue.push(sel);
  }

  private link(from: Node<O>, to: Sel<O>, alt: Relation, field: RelationField): void {
    if (!from.deps.includes(to)) from.deps.push(to);
    const reason: Reason =
      from.kind === "root" ? { kind: "requested", request: from.text } : { kind: "dependency", of: from.cand.record.name, field, relation: formatRelation(alt) };
    const key = JSON.stringify(reason);
    if (!to.reasons.has(key)) to.reasons.set(key, reason);
  }

  /**
   * `alt` needs another version of a selected package (`occupant`), or one
   * that constraints learned earlier exclude: learn its constraint and
   * restart, or report the clash.
   */
  private conflict(from: Node<O>, alt: Relation, occupant: Sel<O> | undefined): void {
    const name = alt.name;
    const pins = this.pins.get(name) ?? [];
    const earlier = occupant?.constraints ?? [];
    const text = formatRelation(alt);
    const knownPin = alt.constraint !== undefined && pins.some((p) => p.constraint.op === alt.constraint!.op && p.constraint.version === alt.constraint!.version);
    if (occupant !== undefined && (alt.constraint === undefined || satisfies(occupant.cand.record.version, alt.constraint) || knownPin)) {
      // Only the architecture rule failed: no version constraint to learn.
      this.fail(from, (origins, chain) => ({
        code: "unsatisfiable",
        message: `${describe(from)} needs ${text}, but the selected ${describeCandidate(occupant.cand)} does not satisfy it (Multi-Arch: ${occupant.cand.record.multiArch ?? "no"})`,
        relation: text,
        available: [describeCandidate(occupant.cand)],
        origins,
        chain,
      }));
      return;
    }
    const candidates = (this.universe.packages.get(name) ?? []).filter((c) => this.archOk(c, alt, this.dependerArch(from)));
    const meets = (constraints: readonly (VersionConstraint | undefined)[]) =>
      candidates.some((c) => constraints.every((k) => satisfies(c.record.version, k)));
    const all = [alt.constraint, ...earlier.map((e) => e.constraint), ...pins.map((p) => p.constraint)];
    if (alt.constraint !== undefined && !knownPin && meets(all)) {
      const by = from.kind === "root" ? from.text : `${from.cand.record.name} ${from.cand.record.version}`;
      throw new Restart(name, { constraint: alt.constraint, by });
    }
    const clash = earlier.find((e) => !meets([alt.constraint, e.constraint]));
    const pinClash = clash === undefined ? pins.find((p) => !meets([alt.constraint, p.constraint])) : undefined;
    this.fail(from, (origins, chain) => {
      const sides: ConstraintSide<O>[] = [];
      if (clash !== undefined) sides.push(this.side(clash.by, { name, constraint: clash.constraint }));
      else if (pinClash !== undefined) sides.push(this.pinSide(name, pinClash));
      else {
        for (const e of earlier) sides.push(this.side(e.by, { name, constraint: e.constraint }));
        for (const p of pins) sides.push(this.pinSide(name, p));
      }
      sides.push({ relation: text, by: describe(from), origins });
      const others = sides.slice(0, -1).map((s) => `${s.relation} (from ${s.by})`).join(" and ");
      return {
        code: "conflicting-constraints",
        message: `no version of ${name} meets both ${others} and ${text} (from ${describe(from)})${occupant ? `; selected: ${describeCandidate(occupant.cand)}` : ""}`,
        name,
        constraints: sides,
        origins: [...new Set([...sides.flatMap((s) => s.origins)])],
        chain,
      };
    });
  }

  private side(by: Node<O>, rel: Relation): ConstraintSide<O> {
    return { relation: formatRelation(rel), by: describe(by), origins: this.originsOf(by) };
  }

  /** A constraint learned in an earlier round: its writer may be selected in this one. */
  private pinSide(name: string, pin: Pin): ConstraintSide<O> {
    const writer = [...this.selected.values()].find((s) => `${s.cand.record.name} ${s.cand.record.version}` === pin.by);
    const root = this.roots.find((r) => r.text === pin.by);
    const origins = writer ? this.originsOf(writer) : root ? root.origins : [];
    return { relation: formatRelation({ name, constraint: pin.constraint }), by: pin.by, origins };
  }

  private unknown(from: Node<O>, alt: Relation): void {
    const suggestions = suggestNames(this.universe, alt.name);
    const hint = suggestions.length > 0 ? `; did you mean ${suggestions.join(", ")}?` : "";
    const what = from.kind === "root" ? `unknown package '${alt.name}'` : `${describe(from)} depends on unknown package '${alt.name}'`;
    this.fail(from, (origins, chain) => ({
      code: "unknown-package",
      message: `${what}: no suite offers it or provides it${hint}`,
      name: alt.name,
      suggestions,
      origins,
      chain,
    }));
  }

  // ---- results

  private fail(at: Node<O>, make: (origins: O[], chain: string[]) => ResolveError<O>): void {
    this.errorThunks.push(() => make(this.originsOf(at), chainOf(at)));
  }

  /** Origins of every request whose closure reaches `node`. */
  private originsOf(node: Node<O>): O[] {
    if (node.kind === "root") return [...node.origins];
    const out: O[] = [];
    for (const root of this.roots) {
      if (reaches(root, node)) out.push(...root.origins);
    }
    return out;
  }

  private resolution(): Resolution {
    const requestedBy = new Map<Sel<O>, Set<string>>();
    for (const root of this.roots) {
      for (const sel of closure(root)) {
        let set = requestedBy.get(sel);
        if (set === undefined) requestedBy.set(sel, (set = new Set()));
        set.add(root.relation.name);
      }
    }
    const packages = [...this.selected.values()]
      .sort((a, b) => byteOrder(a.cand.record.name, b.cand.record.name) || byteOrder(a.cand.record.architecture, b.cand.record.architecture))
      .map((sel) => ({
        record: sel.cand.record,
        reasons: [...sel.reasons.values()].sort(compareReasons),
        requestedBy: [...(requestedBy.get(sel) ?? [])].sort(byteOrder),
      }));
    const providerChoices = [...this.choices].sort((a, b) => byteOrder(a.virtual, b.virtual) || byteOrder(a.neededBy, b.neededBy) || byteOrder(a.chosen, b.chosen));
    const alternativeChoices = [...this.alternativeChoices].sort(
      (a, b) => byteOrder(a.neededBy, b.neededBy) || byteOrder(a.relation, b.relation) || byteOrder(a.chosen, b.chosen),
    );
    return { packages, providerChoices, alternativeChoices };
  }
}

function closure<O>(root: Root<O>): Set<Sel<O>> {
  const seen = new Set<Sel<O>>();
  const stack = [...root.deps];
  for (let s = stack.pop(); s !== undefined; s = stack.pop()) {
    if (seen.has(s)) continue;
    seen.add(s);
    stack.push(...s.deps);
  }
  return seen;
}

function reaches<O>(root: Root<O>, node: Sel<O>): boolean {
  return closure(root).has(node);
}

/** The request's name, then the packages on the first path from it to `node`. */
function chainOf<O>(node: Node<O>): string[] {
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

/** The request text or package name, as choices record who needed them. */
function neededBy<O>(node: Node<O>): string {
  return node.kind === "root" ? node.text : node.cand.record.name;
}

function describe<O>(node: Node<O>): string {
  return node.kind === "root" ? `request '${node.text}'` : `${node.cand.record.name} ${node.cand.record.version}`;
}

function describeCandidate(c: Candidate): string {
  return `${c.record.name} ${c.record.version} ${c.record.architecture} (${suiteLabel(c.record.from)})`;
}

function compareReasons(a: Reason, b: Reason): number {
  if (a.kind !== b.kind) return a.kind === "requested" ? -1 : 1;
  if (a.kind === "requested" && b.kind === "requested") return byteOrder(a.request, b.request);
  if (a.kind === "dependency" && b.kind === "dependency") return byteOrder(a.of, b.of) || byteOrder(a.field, b.field) || byteOrder(a.relation, b.relation);
  return 0;
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
