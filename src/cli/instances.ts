// `niftyc instances`: N machines from one build, sharing one read-only tree.
// Parses its options, builds first when given a recipe, and prints; the work is
// in src/instances/.
import { stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError, type CliIo } from "./io.ts";
import { BUILD_FLAGS, EXIT, buildOptions, createBuildProgress, parse, printDiagnostics, readBuildDir, recipeLocation, relativeOrAbsolute, type Built, type ParsedValues } from "./common.ts";

export const INSTANCES_HELP = `Usage: niftyc instances <recipe | build-dir> --count N [options]

Writes what systemd needs to run N instances of one image: one shared tree
that every instance boots read-only with a private writable overlay (so all
share the same files and text pages), a template unit <name>@.service, one
environment file per instance and <name>.target to start or stop them all.
Instance i is machine <name>-i, which is also its hostname. Host keys made at
first boot (KEYGEN) land in each instance's overlay, so every instance has its own.

Options:
  --count N             how many instances (1–100000)
  --first K             number of the first instance (default 1): instances K … K+N-1
  --set NAME=EXPR       per-instance value of the recipe's ENV NAME (repeatable). EXPR is
                        arithmetic over i (the instance number), n (the count) and the
                        recipe's numeric ENV: whole numbers, + - * / % and parentheses.
                        In double quotes it is text, expressions in braces: '"web-{i}"'.
                        NAME must be an ENV of the recipe (only those reach the container).
  --out DIR             the instances directory (default out/<name>-instances)
  --replace             replace a shared tree of another build (stop its instances first)
  --json                print one JSON object with the result on stdout (absolute paths)
  -q, --quiet           no build progress on stderr (when given a recipe)

Given a recipe, it is built first (into out/<name>, as niftyc build does), with:
  --secret ID=FILE  --arg NAME=VALUE  --cache DIR  --mirror NAME=URL  --offline
  --timeout SECONDS  --limit NAME=VALUE  --strict

Example:
  niftyc instances out/ssh --count 1000 --set PORT=2200+i --out /var/lib/niftyc/ssh
  systemctl link /var/lib/niftyc/ssh/systemd/ssh@.service /var/lib/niftyc/ssh/systemd/ssh.target
  systemctl start ssh.target           (or one: systemctl start ssh@7; ssh -p 2207 luser@localhost)`;

function wholeNumber(value: string | undefined, flag: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new UsageError(`${flag} is required`, INSTANCES_HELP);
  }
  if (!/^\s*-?\d+\s*$/.test(value)) throw new UsageError(`${flag} takes a whole number, got ${JSON.stringify(value)}`, INSTANCES_HELP);
  return Number(value);
}

function pairs(list: readonly string[] | undefined, flag: string, what: string): Array<[string, string]> {
  return (list ?? []).map((item) => {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} takes ${what}, got ${JSON.stringify(item)}`, INSTANCES_HELP);
    return [item.slice(0, eq), item.slice(eq + 1)];
  });
}

type Values = ParsedValues;

async function buildRecipe(path: string, values: Values, io: CliIo): Promise<Built | number> {
  const { build, BuildFailed } = await import("../pipeline/build.ts");
  const shared = await buildOptions(values, io, INSTANCES_HELP);
  const progress = values.quiet === true ? undefined : await createBuildProgress(io);
  try {
    const result = await build({ ...shared, ...(await recipeLocation(io.cwd, path)), outDir: (name) => resolve(io.cwd, "out", name), ...(progress ? { onEvent: progress.onEvent } : {}) });
    progress?.stop();
    await printDiagnostics(result.warnings, io);
    return { name: result.config.name, digest: result.digest, config: result.config, rootfsTar: result.rootfs, buildDir: result.outDir };
  } catch (error) {
    progress?.stop();
    if (error instanceof BuildFailed) {
      await printDiagnostics(error.diagnostics, io);
      return EXIT.input;
    }
    throw error;
  }
}

export async function runInstances(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...BUILD_FLAGS, count: { type: "string" }, first: { type: "string" }, set: { type: "string", multiple: true }, out: { type: "string" }, replace: { type: "boolean" }, json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
    INSTANCES_HELP,
  );
  if (values.help) {
    io.stdout.write(INSTANCES_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? "instances needs a recipe or a build directory" : "instances takes one recipe or build directory", INSTANCES_HELP);
  const count = wholeNumber(values.count as string | undefined, "--count");
  const first = wholeNumber(values.first as string | undefined, "--first", 1);
  const sets = pairs(values.set as string[] | undefined, "--set", "NAME=EXPR").map(([name, expr]) => ({ name, expr }));

  const input = positionals[0]!;
  const inputPath = resolve(io.cwd, input);
  let isDir: boolean;
  try {
    isDir = (await stat(inputPath)).isDirectory();
  } catch {
    throw new NiftyError("NIFTY420", `${input} does not exist`, "give a recipe (.nifty) or a build directory (out/<name>)");
  }
  const built = isDir ? await readBuildDir(inputPath, input, "NIFTY420") : await buildRecipe(input, values, io);
  if (typeof built === "number") return built;

  const { planInstances } = await import("../instances/plan.ts");
  const { writeInstances } = await import("../instances/write.ts");
  const { NIFTYC_VERSION } = await import("../core/version.ts");
  const plan = planInstances({ config: built.config, count, first, sets });
  const dir = resolve(io.cwd, (values.out as string | undefined) ?? join("out", `${built.name}-instances`));
  const result = await writeInstances({ dir, config: built.config, plan, rootfsTar: built.rootfsTar, digest: built.digest, replace: values.replace === true, version: NIFTYC_VERSION });

  const show = (p: string): string => relative(io.cwd, p) || ".";
  if (values.json) {
    // Absolute paths: a program reading them may run anywhere.
    io.stdout.write(JSON.stringify({ name: built.name, digest: built.digest, dir, count, first, reusedRootfs: result.reusedRootfs, files: result.files }) + "\n");
    return EXIT.ok;
  }
  const last = first + count - 1;
  io.stdout.write(`wrote ${count} instance${count === 1 ? "" : "s"} of ${built.name} (${built.name}-${first}${count > 1 ? ` … ${built.name}-${last}` : ""}) in ${show(dir)}; shared tree ${result.reusedRootfs ? "kept" : "unpacked"}\n`);
  io.stdout.write(`  systemctl link ${result.files.unit} ${result.files.target}\n`);
  io.stdout.write(`  systemctl start ${built.name}.target      # or one: systemctl start ${built.name}@${first}\n`);
  return EXIT.ok;
}
