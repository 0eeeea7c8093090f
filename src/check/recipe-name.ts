// The recipe's name comes from its file name and names the outputs: a machine (nspawn, systemd
// units) and an image repository (docker-archive, Docker files). The one rule, told by
// `niftyc check` and by a build before any step runs (NIFTY809), naming the recipe file.
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";

/** What the name will have to be: a machine name, an image repository name. */
export interface NameUses {
  machine: boolean;
  repository: boolean;
}

/** What a default build makes (nspawn, systemd, docker-archive and docker among its formats). */
export const EVERY_NAME_USE: NameUses = { machine: true, repository: true };

const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const REPOSITORY = /^[a-z0-9][a-z0-9._-]*$/;

/** Whether `name` can name a machine (nspawn, systemd units), as run, install and instances use it. */
export function isMachineName(name: string): boolean {
  return MACHINE_NAME.test(name);
}

export function recipeNameProblem(name: string, uses: NameUses, source: SourceFile): Diagnostic | undefined {
  const problem =
    uses.machine && !MACHINE_NAME.test(name)
      ? "a machine (nspawn, systemd: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters)"
      : uses.repository && !REPOSITORY.test(name)
        ? "a Docker image (repository names are lower-case letters, digits, '.', '_' and '-')"
        : undefined;
  if (problem === undefined) return undefined;
  return {
    severity: "error",
    code: "NIFTY809",
    message: `the recipe's name ${JSON.stringify(name)}, from its file name, cannot name ${problem}`,
    source,
    hint: `rename the recipe file (e.g. ${suggestedName(name)}.nifty), or leave out the formats that need the name`,
  };
}

/**
 * A name every format takes, close to the one given: accents dropped (ünï → uni), lower case,
 * each run of other characters one `-`, no separator at either end, at most 64 characters.
 */
export function suggestedName(name: string): string {
  const ascii = name.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  const trim = (s: string) => s.replace(/^[._-]+|[._-]+$/g, "");
  const suggested = trim(trim(ascii.replace(/[^a-z0-9._-]+/g, "-")).slice(0, 64));
  return MACHINE_NAME.test(suggested) && REPOSITORY.test(suggested) ? suggested : "nifty";
}
