// `niftyc lock` and `niftyc outdated`: the recipe's Debian packages without
// a build. Parses options, calls src/pipeline/lock.ts, prints.
import { forTerminal } from "../diagnostics/escape.ts";
import { UsageError, type CliIo } from "./io.ts";
import {
  EXIT,
  buildOptions,
  createBuildProgress,
  parse,
  recipeLocation,
  relativeOrAbsolute,
} from "./common.ts";
import { printDiagnostics } from "./print-diagnostics.ts";

export const LOCK_HELP = `Usage: niftyc lock <recipe> [--update [PACKAGE...]] [options]

Resolves the Debian packages the recipe's PACKAGE lines ask for, from the signed
indices of its ARCHIVE suites, and writes <recipe>.lock beside it: every package of
the closure with its version, pool path, size and sha256, and the InRelease each
suite was resolved against. Commit the lock: builds then use it without fetching any
index, and \`niftyc build --locked\` (for CI) refuses a lock that does not cover the recipe.

A lock that already covers the recipe is left as it is, unless:
  --update              re-resolve every package against the suites as they are now
  --update PKG...       move only these packages (every other keeps its locked version)

Options:
  --cache DIR           content store (default $NIFTY_CACHE or ./cache)
  --mirror NAME=URL     archive root for an ARCHIVE name, e.g. debian=http://deb.example/debian
  --arg NAME=VALUE      value for an ARG of the recipe (repeatable)
  --platform LIST       the platforms to lock, e.g. linux/amd64,linux/arm64 (default linux/amd64): each has
                        its own section of <recipe>.lock, every package at the same version on each
                        (NIFTY640); without it, every platform the lock has (else linux/amd64)
  --timeout SECONDS     network timeout (default 30): connecting and each wait for data may take this
                        long, and a whole request must end within it plus 1 s per 16 KiB received
  --json                print the lock's packages as JSON on stdout (an array, one per platform, for several)
  -q, --quiet           no progress; the note that the lock was written stays

Example:
  niftyc lock recipes/ssh.nifty && git add recipes/ssh.nifty.lock`;

export const OUTDATED_HELP = `Usage: niftyc outdated <recipe> [options]

Compares <recipe>.lock with the current signed indices of the recipe's suites: for
every locked package with a newer version, the version and the suite it is in, and
whether a newer version comes from a security suite (a suite named *-security).

Exit status: 0 nothing newer, or only non-security updates; 3 security updates
exist (a scheduled CI job can fail on them); 1 the recipe, lock or archive is wrong.
Then: niftyc lock <recipe> --update [PACKAGE...] to move the lock forward.

Options:
  --cache DIR           content store (default $NIFTY_CACHE or ./cache)
  --mirror NAME=URL     archive root for an ARCHIVE name (repeatable)
  --arg NAME=VALUE      value for an ARG of the recipe (repeatable)
  --platform LIST       compare these platforms' sections of the lock (default: every platform it has);
                        a package of another platform than amd64 is shown as NAME:ARCH
  --timeout SECONDS     network timeout (default 30): connecting and each wait for data may take this
                        long, and a whole request must end within it plus 1 s per 16 KiB received
  --json                the report as JSON on stdout`;

const FLAGS = {
  cache: { type: "string" },
  arg: { type: "string", multiple: true },
  mirror: { type: "string", multiple: true },
  timeout: { type: "string" },
  json: { type: "boolean" },
  platform: { type: "string" },
} as const;

async function withDiagnostics(io: CliIo, work: () => Promise<number>): Promise<number> {
  const { BuildFailed } = await import("../pipeline/failure.ts");
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof BuildFailed)) throw error;
    await printDiagnostics(error.diagnostics, io);
    return EXIT.input;
  }
}

function note(io: CliIo) {
  return (event: { type: string; message?: string }) => {
    if (event.type === "note") io.stderr.write(`note: ${forTerminal(event.message ?? "")}\n`);
  };
}

export async function runLock(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { ...FLAGS, update: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
    LOCK_HELP,
  );
  if (values.help) {
    io.stdout.write(LOCK_HELP + "\n");
    return EXIT.ok;
  }
  const [recipe, ...names] = positionals;
  if (recipe === undefined) throw new UsageError("lock needs a recipe", LOCK_HELP);
  if (names.length > 0 && values.update !== true)
    throw new UsageError(`package names (${names.join(" ")}) go after --update`, LOCK_HELP);
  const shared = await buildOptions(values, io, LOCK_HELP);
  const { lockRecipe } = await import("../pipeline/lock.ts");
  return withDiagnostics(io, async () => {
    const update: { update?: true | string[] } =
      values.update === true ? { update: names.length > 0 ? names : true } : {};
    const location = await recipeLocation(io.cwd, recipe);
    // On a terminal, a live line for each index downloaded (the long part of a first lock); in a log, the notes only.
    // --quiet: only the note that the lock was written, as build --quiet keeps it.
    const quiet = values.quiet === true;
    const progress = io.stderr.isTTY === true || quiet ? await createBuildProgress(io, quiet) : undefined;
    const results = await lockRecipe({
      ...shared,
      ...location,
      onEvent: progress?.onEvent ?? note(io),
      ...update,
    }).finally(() => progress?.stop());
    const json = results.map((result) => ({
      lock: relativeOrAbsolute(io.cwd, result.lockPath),
      platform: result.platform,
      written: result.written,
      packages: result.lock.packages,
    }));
    // One platform: the object it always was; several: one per platform.
    const one = ({ platform: _, ...rest }: (typeof json)[number]) => rest;
    if (values.json) io.stdout.write(JSON.stringify(json.length === 1 ? one(json[0]!) : json) + "\n");
    else {
      for (const [i, result] of results.entries()) {
        // A written lock was announced by the build's note ("wrote …: N packages from …").
        const n = result.lock.packages.length;
        const packages = `${n} package${n === 1 ? "" : "s"}`;
        const on = results.length > 1 ? ` (${result.platform})` : "";
        if (!result.written) io.stdout.write(`${json[i]!.lock}${on} is up to date: ${packages}\n`);
        for (const p of result.lock.packages) {
          io.stdout.write(`  ${p.name} ${p.version} (${p.from.archive} ${p.from.suite})\n`);
        }
      }
    }
    return EXIT.ok;
  });
}

export async function runOutdated(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, FLAGS, OUTDATED_HELP);
  if (values.help) {
    io.stdout.write(OUTDATED_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1) throw new UsageError("outdated takes one recipe", OUTDATED_HELP);
  const shared = await buildOptions(values, io, OUTDATED_HELP);
  const { outdatedRecipe } = await import("../pipeline/lock.ts");
  return withDiagnostics(io, async () => {
    const { rows, summary } = await outdatedRecipe({
      ...shared,
      ...(await recipeLocation(io.cwd, positionals[0]!)),
      onEvent: note(io),
    });
    if (values.json) io.stdout.write(JSON.stringify({ summary, packages: rows }) + "\n");
    else {
      for (const r of rows) {
        const security = r.security
          ? `  SECURITY ${r.securityVersion} (${r.securityFrom!.archive} ${r.securityFrom!.suite})`
          : "";
        const plain = r.architecture === "amd64" || r.architecture === "all";
        const name = plain ? r.name : `${r.name}:${r.architecture}`;
        io.stdout.write(
          `${name} ${r.locked} → ${r.newest} (${r.newestFrom.archive} ${r.newestFrom.suite})${security}\n`,
        );
      }
      io.stdout.write(
        summary.updates === 0
          ? summary.locked === 1
            ? "the 1 locked package is current\n"
            : `all ${summary.locked} locked packages are current\n`
          : `${summary.updates} of ${summary.locked} locked packages have newer versions, ${summary.securityUpdates} from a security suite\n`,
      );
    }
    return summary.status === "security-updates" ? EXIT.securityUpdates : EXIT.ok;
  });
}
