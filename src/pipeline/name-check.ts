// The recipe's name comes from its file name and names the outputs: a
// machine (nspawn, systemd units) and an image repository (docker-archive).
// A name those refuse is told before any step runs, naming the recipe file,
// instead of failing at the last stage.
import type { SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Format } from "./outputs.ts";

const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const REPOSITORY = /^[a-z0-9][a-z0-9._-]*$/;

export function recipeNameProblem(
  name: string,
  formats: ReadonlySet<Format>,
  source: SourceFile,
): Diagnostic | undefined {
  const problem =
    (formats.has("nspawn") || formats.has("systemd")) && !MACHINE_NAME.test(name)
      ? "a machine name (letters, digits, '.', '_' and '-', at most 64 characters)"
      : (formats.has("docker-archive") || formats.has("docker")) && !REPOSITORY.test(name)
        ? "a Docker image (repository names are lower-case letters, digits, '.', '_' and '-')"
        : undefined;
  if (problem === undefined) return undefined;
  return {
    severity: "error",
    code: "NIFTY809",
    message: `the recipe's name ${JSON.stringify(name)}, from its file name, cannot name ${problem}`,
    source,
    hint: `rename the recipe file (e.g. ${
      name
        .toLowerCase()
        .replace(/[^a-z0-9._-]/g, "-")
        .replace(/^[^a-z0-9]+/, "") || "nifty"
    }.nifty), or leave out the formats that need the name`,
  };
}
