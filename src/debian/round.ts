// One round of the search: the closure built with a fixed set of learned
// constraints, the requests' relations followed breadth-first, choices
// deferred and then made, each package selected and linked to what needed it;
// a relation that needs another version learns its constraint and ends the
// round with a restart.
import { slotKey } from "./multiarch.ts";
import {
  archRestrictionAllows,
  formatRelation,
  satisfies,
  type Relation,
  type RelationGroup,
  type VersionConstraint,
} from "./relations.ts";
import { byteOrder, type Candidate } from "./universe.ts";
import type { AlternativeChoice, ProviderChoice, Reason, RelationField, Resolution } from "./resolution.ts";
import { closure, neededBy, type Node, type Pin, type Sel } from "./selection.ts";
import { Planner, type Decided, type Virtual } from "./choice.ts";
import {
  chainOf,
  conflictingConstraints,
  constraintSide,
  malformedRelation,
  noCandidateFits,
  noneInstallable,
  originsOf,
  pinSide,
  unknownPackage,
  wrongArchitecture,
  type ConstraintSide,
  type MakeError,
  type ResolveError,
} from "./explain.ts";

type Outcome<O> =
  | { kind: "restart"; name: string; pin: Pin }
  | { kind: "done"; errors: ResolveError<O>[]; resolution: Resolution };

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
export class Round<O> extends Planner<O> {
  private readonly queue: Sel<O>[] = [];
  private readonly deferred: Array<{ from: Node<O>; group: RelationGroup; field: RelationField }> = [];
  private readonly choices: ProviderChoice[] = [];
  private readonly alternativeChoices: AlternativeChoice[] = [];
  /** Built once the selection is final, so origins cover every path. */
  private readonly errorThunks: Array<() => ResolveError<O>> = [];

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

  private visit(sel: Sel<O>, field: RelationField, text: string): void {
    if (text === "") return;
    const groups = this.groupsOf(sel.cand.record, field, text);
    if (!groups.ok) {
      this.fail(sel, malformedRelation(sel.cand.record, field, groups.error));
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
        sizes: selectable.map((p, i) => ({
          alternative: formatRelation(p.alt),
          package: p.plan.cand.record.name,
          ...totals[i]!,
        })),
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
    const available = plans.flatMap((p) => (p.plan.kind === "unsatisfiable" ? p.plan.available : []));
    const failures = plans.map((p) => ({ alt: p.alt, unknown: p.plan.kind === "unknown" }));
    this.fail(from, noneInstallable(from, group, failures, available));
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
        this.fail(from, unknownPackage(this.universe, from, alt));
        return;
      case "unsatisfiable":
        this.fail(from, noCandidateFits(from, alt, plan.available));
        return;
    }
  }

  /** Link `from` to a selected package that already satisfies `alt`, if there is one. */
  private satisfiedBySelection(from: Node<O>, alt: Relation, field: RelationField): boolean {
    const found = this.satisfier(this.selectedByName, this.selectedProviders, alt, this.dependerArch(from));
    if (found === undefined) return false;
    if (found.byName && alt.constraint) found.sel.constraints.push({ constraint: alt.constraint, by: from });
    this.link(from, found.sel, alt, field);
    return true;
  }

  // ---- selecting

  private select(
    from: Node<O>,
    alt: Relation,
    field: RelationField,
    cand: Candidate,
    virtual?: Virtual,
  ): void {
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
    if (virtual === undefined && alt.constraint)
      sel.constraints.push({ constraint: alt.constraint, by: from });
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
      from.kind === "root"
        ? { kind: "requested", request: from.text }
        : { kind: "dependency", of: from.cand.record.name, field, relation: formatRelation(alt) };
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
    const knownPin =
      alt.constraint !== undefined &&
      pins.some(
        (p) => p.constraint.op === alt.constraint!.op && p.constraint.version === alt.constraint!.version,
      );
    if (
      occupant !== undefined &&
      (alt.constraint === undefined || satisfies(occupant.cand.record.version, alt.constraint) || knownPin)
    ) {
      // Only the architecture rule failed: no version constraint to learn.
      this.fail(from, wrongArchitecture(from, text, occupant));
      return;
    }
    const candidates = (this.universe.packages.get(name) ?? []).filter((c) =>
      this.archOk(c, alt, this.dependerArch(from)),
    );
    const meets = (constraints: readonly (VersionConstraint | undefined)[]) =>
      candidates.some((c) => constraints.every((k) => satisfies(c.record.version, k)));
    const all = [alt.constraint, ...earlier.map((e) => e.constraint), ...pins.map((p) => p.constraint)];
    if (alt.constraint !== undefined && !knownPin && meets(all)) {
      const by = from.kind === "root" ? from.text : `${from.cand.record.name} ${from.cand.record.version}`;
      throw new Restart(name, { constraint: alt.constraint, by });
    }
    const clash = earlier.find((e) => !meets([alt.constraint, e.constraint]));
    const pinClash =
      clash === undefined ? pins.find((p) => !meets([alt.constraint, p.constraint])) : undefined;
    const { roots, selected } = this;
    this.fail(from, (origins, chain) => {
      const sides: ConstraintSide<O>[] = [];
      if (clash !== undefined) {
        sides.push(constraintSide(roots, clash.by, { name, constraint: clash.constraint }));
      } else if (pinClash !== undefined) {
        sides.push(pinSide(roots, selected, name, pinClash));
      } else {
        for (const e of earlier) sides.push(constraintSide(roots, e.by, { name, constraint: e.constraint }));
        for (const p of pins) sides.push(pinSide(roots, selected, name, p));
      }
      return conflictingConstraints(from, name, text, occupant, sides, origins, chain);
    });
  }

  // ---- results

  private fail(at: Node<O>, make: MakeError<O>): void {
    this.errorThunks.push(() => make(originsOf(this.roots, at), chainOf(at)));
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
      .sort(
        (a, b) =>
          byteOrder(a.cand.record.name, b.cand.record.name) ||
          byteOrder(a.cand.record.architecture, b.cand.record.architecture),
      )
      .map((sel) => ({
        record: sel.cand.record,
        reasons: [...sel.reasons.values()].sort(compareReasons),
        requestedBy: [...(requestedBy.get(sel) ?? [])].sort(byteOrder),
      }));
    const providerChoices = [...this.choices].sort(
      (a, b) =>
        byteOrder(a.virtual, b.virtual) || byteOrder(a.neededBy, b.neededBy) || byteOrder(a.chosen, b.chosen),
    );
    const alternativeChoices = [...this.alternativeChoices].sort(
      (a, b) =>
        byteOrder(a.neededBy, b.neededBy) ||
        byteOrder(a.relation, b.relation) ||
        byteOrder(a.chosen, b.chosen),
    );
    return { packages, providerChoices, alternativeChoices };
  }
}

function compareReasons(a: Reason, b: Reason): number {
  if (a.kind !== b.kind) return a.kind === "requested" ? -1 : 1;
  if (a.kind === "requested" && b.kind === "requested") return byteOrder(a.request, b.request);
  if (a.kind === "dependency" && b.kind === "dependency")
    return byteOrder(a.of, b.of) || byteOrder(a.field, b.field) || byteOrder(a.relation, b.relation);
  return 0;
}
