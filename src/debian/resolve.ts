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
// This file holds the requests and the restarts; beside it are a round of the
// search (round.ts), planning a relation and the smallest-closure rule for a
// choice (choice.ts), the selection and its indices (selection.ts), the
// explanation of a failure (explain.ts) and the answer's shape (resolution.ts).
import { formatRelation, packageNameProblem, type Relation, type VersionConstraint } from "./relations.ts";
import { byteOrder, type Universe } from "./universe.ts";
import { versionProblem } from "./version.ts";
import type { Resolution } from "./resolution.ts";
import type { ParsedFields, Pin, Root } from "./selection.ts";
import { sortErrors, type ResolveError } from "./explain.ts";
import { Round } from "./round.ts";

export { MISSING_SIZE_KIB, ORDER_MARGIN, type Resolution, type Tally } from "./resolution.ts";
export type { ResolveError } from "./explain.ts";

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

export type ResolveResult<O> =
  | { ok: true; resolution: Resolution }
  | { ok: false; errors: ResolveError<O>[] };

/** Enough for any real archive: each restart adds a distinct constraint. */
const MAX_RESTARTS = 1000;

/** The canonical text of a request, as the lockfile records it. */
export function requestText(r: Pick<PackageRequest, "name" | "arch" | "constraint">): string {
  return formatRelation(r);
}

/**
 * Resolve the closure of `requests` in `universe` for `options.arch`. Output
 * and errors are the same whatever the order of the requests or the records.
 */
export function resolve<O>(
  universe: Universe,
  requests: readonly PackageRequest<O>[],
  options: ResolveOptions,
): ResolveResult<O> {
  const requestErrors: ResolveError<O>[] = [];
  const byText = new Map<string, Root<O>>();
  for (const r of requests) {
    const text = requestText(r);
    const problem = requestProblem(r);
    if (problem !== undefined) {
      requestErrors.push({
        code: "invalid-request",
        message: `invalid package request '${text}': ${problem}`,
        request: text,
        origins: [r.origin],
        chain: [],
      });
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
  const parsed: ParsedFields = new Map();
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
    errors: [
      {
        code: "too-complex",
        message: `gave up after ${MAX_RESTARTS} restarts: version constraints keep changing the selection`,
        restarts: MAX_RESTARTS,
        origins,
        chain: [],
      },
    ],
  };
}

function requestProblem(r: PackageRequest<unknown>): string | undefined {
  const name = packageNameProblem(r.name);
  if (name !== undefined) return name;
  if (r.arch !== undefined && !/^[a-z0-9][a-z0-9-]*$/.test(r.arch))
    return `invalid architecture qualifier ':${r.arch}'`;
  if (r.constraint !== undefined) return versionProblem(r.constraint.version);
  return undefined;
}
