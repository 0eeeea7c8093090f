// What the provenance says of a build beside its subjects, gathered when the
// build is planned: the recipe and lock by digest, the --arg values, the
// secrets' names, the platform built, niftyc's version and package-lock.json, and
// the SBOM's inputs (every FETCH and locked package by digest). Its JSON joins
// the key of the assembled outputs, so provenance.json is never restored for
// other inputs.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Recipe } from "../instructions/recipe.ts";
import { specFor } from "../instructions/index.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import type { ProvenanceInput } from "../emit/provenance.ts";
import type { sbomInputs } from "./sbom.ts";
import type { ResolvedPackages } from "./packages.ts";
import { readLockBytes } from "./lock-file.ts";
import { NiftyError } from "../diagnostics/errors.ts";

const sha256 = (bytes: Buffer | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

let packageLock: Promise<string> | undefined;

/** The digest of niftyc's own package-lock.json: which libraries this niftyc ran with. */
export function niftycPackageLock(): Promise<string> {
  packageLock ??= readFile(new URL("../../package-lock.json", import.meta.url)).then(sha256, () =>
    sha256(""),
  );
  return packageLock;
}

export interface ProvenanceSources {
  recipe: Recipe;
  recipeText: string;
  recipePath: string;
  shownPath: string;
  packages: ResolvedPackages | undefined;
  args: ReadonlyMap<string, string>;
  epoch: number;
  inputs: ReturnType<typeof sbomInputs>;
  /** The platform this build makes (linux/arm64): each platform's provenance names its own. */
  platform: string;
}

export async function provenanceInput(s: ProvenanceSources): Promise<ProvenanceInput> {
  const secrets = new Set<string>();
  for (const ins of s.recipe.instructions)
    for (const use of specFor(ins).secrets?.(ins) ?? []) secrets.add(use.id);
  let lock: ProvenanceInput["lock"];
  if (s.packages !== undefined) {
    const suffix = s.packages.lockPath.slice(s.recipePath.length);
    const shown = s.packages.lockPath.startsWith(s.recipePath)
      ? `${s.shownPath}${suffix}`
      : s.packages.lockPath;
    const bytes = await readLockBytes(s.packages.lockPath, shown);
    if (bytes === undefined) throw new NiftyError("NIFTY604", `${shown} was removed while the build ran`);
    lock = { path: shown, sha256: sha256(bytes) };
  }
  return {
    name: s.recipe.name,
    recipe: { path: s.shownPath, sha256: sha256(s.recipeText) },
    ...(lock ? { lock } : {}),
    args: Object.fromEntries([...s.args].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    secrets: [...secrets].sort(),
    platforms: [s.platform],
    epoch: s.epoch,
    niftyc: { version: NIFTYC_VERSION, packageLockSha256: await niftycPackageLock() },
    fetches: s.inputs.fetches,
    packages: s.inputs.packages,
  };
}
