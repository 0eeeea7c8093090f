// What a resolution answers: the packages of the closure, each with why it is
// there and which requests brought it, and the choices made on the way
// (which alternative of `a | b`, which provider of a virtual name) with the
// sizes the smallest-closure rule compared, and that rule's two constants.
import type { PackageRecord } from "./types.ts";

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
