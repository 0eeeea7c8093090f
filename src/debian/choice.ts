// The choice among ways to meet a relation: planning one against the universe
// and the selection (select a candidate, defer a choice, a conflict with the
// selection, unknown, unsatisfiable), and the smallest-closure rule that
// settles a choice, with its probes.
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
import { slotKey } from "./multiarch.ts";
import { archRestrictionAllows, satisfies, type Relation, type RelationGroup } from "./relations.ts";
import { byteOrder, type Candidate } from "./universe.ts";
import { MISSING_SIZE_KIB, ORDER_MARGIN, type ProviderChoice, type Tally } from "./resolution.ts";
import { Selection, Tentative, type Sel } from "./selection.ts";
import { describeCandidate } from "./explain.ts";

const HIGH_PRIORITIES: ReadonlySet<string> = new Set(["required", "important", "standard"]);

/** How a provider was picked, for its ProviderChoice. */
export interface Virtual {
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
export type Decided<O> = Exclude<Plan<O>, { kind: "choice" }>;

/**
 * How `plan` settles several providers: defer the choice, take the first by
 * Priority then name (inside a probe), or measure what each adds (a real choice).
 */
type Decide = "defer" | "by-order" | "smallest-closure";

/** What a probe measured: the tally without the package's name. */
type Total = Omit<Tally, "package">;

/** The selection, and what would satisfy a relation it does not. */
export class Planner<O> extends Selection<O> {
  /** Probe totals by candidate, good while the selection has `probedAt` packages (it only grows in a round). */
  private readonly probes = new Map<Candidate, Total>();
  private probedAt = 0;

  /**
   * What would satisfy `alt` for a depender of `dependerArch`, the selection
   * (and `tentative`, in a probe) not having it: the best real package of
   * that name; else a provider (the only one, or as `decide` says).
   */
  protected plan(
    dependerArch: string,
    alt: Relation,
    decide: "by-order" | "smallest-closure",
    tentative?: Tentative,
  ): Decided<O>;
  protected plan(dependerArch: string, alt: Relation, decide: Decide, tentative?: Tentative): Plan<O>;
  protected plan(dependerArch: string, alt: Relation, decide: Decide, tentative?: Tentative): Plan<O> {
    const reals = (this.universe.packages.get(alt.name) ?? []).filter((c) =>
      this.archOk(c, alt, dependerArch),
    );
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
    if (providers.length === 1)
      return {
        kind: "select",
        cand: providers[0]!,
        virtual: { among: [providers[0]!.record.name], rule: "only-provider" },
      };
    if (providers.length > 1) {
      if (decide === "defer") return { kind: "choice" };
      return this.pickProvider(providers, decide);
    }
    // Versions of that name would fit, but constraints learned earlier exclude them.
    if (fitting.length > 0) return { kind: "conflict", occupant: this.selectedByName.get(alt.name)?.[0] };
    const known =
      reals.length > 0 || this.universe.packages.has(alt.name) || this.universe.providers.has(alt.name);
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
    const sorted = [...providers].sort(
      (a, b) => Number(high(b)) - Number(high(a)) || byteOrder(a.record.name, b.record.name),
    );
    const among = [...providers]
      .sort((a, b) => byteOrder(a.record.name, b.record.name))
      .map((c) => c.record.name);
    const ordered = (c: Candidate) => (high(c) && !providers.every(high) ? "priority" : "name-order");
    if (decide === "by-order")
      return { kind: "select", cand: sorted[0]!, virtual: { among, rule: ordered(sorted[0]!) } };
    const { winner, byOrder, totals } = this.smallestClosure(sorted);
    const cand = sorted[winner]!;
    const sizes = sorted.map((c, i) => ({ package: c.record.name, ...totals[i]! }));
    return {
      kind: "select",
      cand,
      virtual: { among, rule: byOrder ? ordered(cand) : "smallest-closure", sizes },
    };
  }

  // ---- the smallest-closure rule

  /**
   * Of `options` (in the usual order), the index of the one taken: the first
   * that is not a dead end, unless a later one adds at most 1/ORDER_MARGIN of
   * what the one taken so far adds; the first when all are dead ends. Each
   * later option is summed only as far as it could win.
   */
  protected smallestClosure(options: readonly Candidate[]): {
    winner: number;
    byOrder: boolean;
    totals: Total[];
  } {
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
        for (const [field, text] of [
          ["Pre-Depends", record.preDepends],
          ["Depends", record.depends],
        ] as const) {
          if (text === "") continue;
          const groups = this.groupsOf(record, field, text);
          if (!groups.ok) return deadEnd();
          for (const group of groups.value) {
            const alts = group.filter((r) => archRestrictionAllows(r.archRestriction, this.native));
            if (alts.length === 0 || alts.some((alt) => satisfied(alt, record.architecture))) continue;
            const plan =
              alts.length === 1
                ? this.plan(record.architecture, alts[0]!, "defer", tentative)
                : ({ kind: "choice" } as const);
            if (plan.kind === "choice") pending.push({ arch: record.architecture, alts });
            else if (plan.kind !== "select") return deadEnd();
            else if (add(plan.cand)) return capped();
          }
        }
      }
      const choice = pending.shift();
      if (choice === undefined) return { kib, packages: tentative.slots.size };
      if (choice.alts.some((alt) => satisfied(alt, choice.arch))) continue;
      const pick = choice.alts
        .map((alt) => this.plan(choice.arch, alt, "by-order", tentative))
        .find((p) => p.kind === "select");
      if (pick === undefined) return deadEnd();
      if (add(pick.cand)) return capped();
    }
  }
}
