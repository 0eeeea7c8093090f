// The command line: parses argv, reads the environment once, calls the
// library and prints. The only place that writes to the terminal or decides
// the exit status.
import { forTerminal } from "../diagnostics/escape.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { readFile, stat } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { hasErrors, type Diagnostic } from "../diagnostics/diagnostic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import { Interrupted, UsageError, ignoreClosedReaders, type CliIo } from "./io.ts";
import { BUILD_COMMAND_FLAGS } from "./build-flags.ts";
import { diagnosticsJson, resultText, type ReportedResult, type ReportEvent } from "./build-report.ts";
import type { BuildResult, OutputsRestore } from "../pipeline/types.ts";
import type { PlatformsResult } from "../pipeline/platforms.ts";
import {
  EXIT,
  askTwice,
  buildOptions,
  createBuildProgress,
  cacheDir,
  keyValues,
  parse,
  readBuildDir,
  parsePlatforms,
  recipeLocation,
  relativeOrAbsolute,
  type ParsedValues,
} from "./common.ts";
import { printDiagnostics } from "./print-diagnostics.ts";
import { BUILD_HELP, CACHE_HELP, CHECK_HELP, INSTALL_HELP, MAIN_HELP } from "./usage.ts";

export { EXIT };

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.stdout.write(MAIN_HELP + "\n");
        return command === undefined ? EXIT.usage : EXIT.ok;
      case "--version":
      case "-V":
        io.stdout.write(`niftyc ${NIFTYC_VERSION}\n`);
        return EXIT.ok;
      case "build":
        return await runBuild(rest, io);
      case "check":
        return await runCheck(rest, io);
      case "cache":
        return await runCache(rest, io);
      case "install":
        return await runInstall(rest, io);
      case "instances":
        return await (await import("./instances.ts")).runInstances(rest, io);
      case "run":
        return await (await import("./run.ts")).runRun(rest, io);
      case "forward":
        return await (await import("./forward.ts")).runForward(rest, io);
      case "lock":
        return await (await import("./packages.ts")).runLock(rest, io);
      case "outdated":
        return await (await import("./packages.ts")).runOutdated(rest, io);
      case "push":
        return await (await import("./push.ts")).runPush(rest, io, runBuild);
      case "fmt":
        return await (await import("./fmt.ts")).runFmt(rest, io);
      case "lsp":
        return await (await import("./lsp.ts")).runLsp(rest, io);
      case "sign":
        return await (await import("./sign.ts")).runSign(
          rest,
          io,
          (await import("./push.ts")).registrySettings,
        );
      case "verify":
        return await (await import("./verify.ts")).runVerify(
          rest,
          io,
          (await import("./push.ts")).registrySettings,
        );
      case "keygen-signing":
        return await (await import("./sign.ts")).runKeygenSigning(rest, io);
      default: {
        const { suggest } = await import("../diagnostics/suggest.ts");
        const commands = [
          "build",
          "check",
          "cache",
          "fmt",
          "forward",
          "install",
          "instances",
          "keygen-signing",
        ];
        commands.push("lock", "lsp", "outdated", "push", "run", "sign", "verify");
        const near = suggest(command, commands);
        throw new UsageError(
          `unknown command ${JSON.stringify(command)}${near ? ` — did you mean ${near}?` : ""}`,
          MAIN_HELP,
        );
      }
    }
  } catch (error) {
    return reportFailure(error, io);
  }
}

function reportFailure(error: unknown, io: CliIo): number {
  if (error instanceof Interrupted) {
    io.stderr.write("niftyc: interrupted\n");
    return EXIT.interrupted;
  }
  if (error instanceof UsageError) {
    // The mistake stays on screen: the usage line and where the rest is, not the whole help.
    const lines = error.message.split("\n").map(forTerminal);
    io.stderr.write(`niftyc: ${lines.join("\n  ")}\n`);
    const usage = error.help?.split("\n").find((line) => line.startsWith("Usage: "));
    const command = usage && /^Usage: (niftyc(?: [a-z-]+)*)/.exec(usage)?.[1];
    io.stderr.write(
      usage && command
        ? `\n${usage}\nRun ${command} --help for every option.\n`
        : "Run niftyc --help for usage.\n",
    );
    return EXIT.usage;
  }
  if (error instanceof NiftyError) {
    const details = (error.details ?? []).map((line) => `  ${forTerminal(line)}\n`).join("");
    io.stderr.write(
      `niftyc: error: ${forTerminal(error.message)} [${error.code}]\n${details}${error.hint ? `  hint: ${forTerminal(error.hint)}\n` : ""}`,
    );
    return EXIT.input;
  }
  const e = error as NodeJS.ErrnoException;
  if (e?.code === "ENOSPC" || e?.code === "EACCES" || e?.code === "EROFS" || e?.code === "EDQUOT") {
    io.stderr.write(
      `niftyc: error: ${forTerminal(e.message)}\n  hint: nothing was published under its final name; free space or fix permissions and build again\n`,
    );
    return EXIT.input;
  }
  io.stderr.write(
    // Escaped line by line: the trace's own line breaks stay line breaks.
    `niftyc: internal error (a bug in niftyc, please report it):\n${(e?.stack ?? String(error)).split("\n").map(forTerminal).join("\n")}\n`,
  );
  return EXIT.bug;
}

async function runBuild(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, BUILD_COMMAND_FLAGS, BUILD_HELP);
  if (values.help) {
    io.stdout.write(BUILD_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0 ? "build needs a recipe" : "build takes one recipe",
      BUILD_HELP,
    );
  const { BuildFailed, FORMATS } = await import("../pipeline/build.ts");
  const formats = parseFormats(values.format as string | undefined, FORMATS);
  const shipping = await registryWork(values, formats, io);
  const shared = await buildOptions(values, io, BUILD_HELP);
  // A pulled cache gives blobs only, each no larger than a download may be.
  if (shipping.cacheFrom !== undefined) {
    const { pullSharedCache } = await import("./push.ts");
    const maxBlob = shared.limits!.downloadBytes;
    if (await pullSharedCache(shipping.cacheFrom, values, io, shipping.registries!, maxBlob))
      return EXIT.input;
  }
  const progress = await createBuildProgress(io, values.quiet === true);
  const location = await recipeInput(positionals[0]!, values, io, shared.hostInputs);
  const { buildPlatforms } = await import("../pipeline/platforms.ts");
  const run = () =>
    buildPlatforms({
      ...shared,
      ...location,
      outDir: (name) => resolve(io.cwd, (values.out as string | undefined) ?? join("out", name)),
      ...(formats ? { formats } : {}),
      onEvent: progress.onEvent,
    });
  try {
    const result = await buildAskingSecrets(run, shared, values, io);
    progress.stop();
    await printDiagnostics(result.warnings, io);
    await shipAndReport(result, shipping, { args, values, io, shared });
    return EXIT.ok;
  } catch (error) {
    progress.stop();
    // --json promises one object whatever happens; stderr still says it for people.
    if (values.json) io.stdout.write(JSON.stringify(await failureJson(error)) + "\n");
    if (!(error instanceof BuildFailed)) throw error;
    await printDiagnostics(error.diagnostics, io);
    return EXIT.input;
  }
}

/** A failed build as `--json` gives it: the message, and the diagnostics (a code and hint where there is one). */
async function failureJson(error: unknown): Promise<{ error: string; diagnostics: unknown[] }> {
  const { BuildFailed } = await import("../pipeline/build.ts");
  const { diagnosticsToJson } = await import("../diagnostics/format.ts");
  if (error instanceof BuildFailed)
    return { error: error.message, diagnostics: diagnosticsToJson(error.diagnostics) };
  if (error instanceof Interrupted) return { error: "interrupted", diagnostics: [] };
  if (error instanceof NiftyError) {
    const { code, message, hint } = error;
    return { error: message, diagnostics: [{ severity: "error", code, message, ...(hint ? { hint } : {}) }] };
  }
  return { error: error instanceof Error ? error.message : String(error), diagnostics: [] };
}

type SharedOptions = Awaited<ReturnType<typeof buildOptions>>;

/** What goes to registries around the build (--push, --cache-to, --cache-from), checked before it starts. */
async function registryWork(values: ParsedValues, formats: readonly string[] | undefined, io: CliIo) {
  const pushTo = values.push as string | undefined;
  const cacheTo = values["cache-to"] as string | undefined;
  const cacheFrom = values["cache-from"] as string | undefined;
  if (pushTo !== undefined && formats && !formats.includes("oci"))
    throw new UsageError("--push pushes the OCI image: add oci to --format", BUILD_HELP);
  if (pushTo === undefined && (values.sign ?? values["key-passphrase"]) !== undefined) {
    throw new UsageError("--sign signs what --push pushes: add --push REF", BUILD_HELP);
  }
  // A bad reference fails before the build, not after it.
  for (const ref of [pushTo, cacheTo, cacheFrom])
    if (ref !== undefined) (await import("../registry/reference.ts")).parseReference(ref);
  const registries =
    (pushTo ?? cacheTo ?? cacheFrom) ? (await import("./push.ts")).registrySettings(values, io) : undefined;
  // A signing key that will not open fails before the build, not after it.
  if (pushTo !== undefined) await (await import("./sign.ts")).signingKey(values, io, BUILD_HELP);
  return { pushTo, cacheTo, cacheFrom, registries };
}

/** The recipe's file, or `-`: a recipe on standard input, named stdin (relative paths are the working directory's). */
async function recipeInput(
  given: string,
  values: ParsedValues,
  io: CliIo,
  hostInputs: SharedOptions["hostInputs"],
) {
  if (given !== "-") return recipeLocation(io.cwd, given, hostInputs);
  if (values["password-stdin"] === true)
    throw new UsageError(
      "build - and --password-stdin both want standard input: put the recipe in a file, or the password in an auth file",
      BUILD_HELP,
    );
  return {
    recipePath: join(io.cwd, "stdin"),
    shownPath: "stdin",
    recipeText: await standardInput(io, BUILD_HELP, "build -"),
  };
}

/** The recipe a `-` names: standard input, read whole. */
async function standardInput(io: CliIo, help: string, what: string): Promise<string> {
  if (io.readStdin === undefined)
    throw new UsageError(
      `${what} reads the recipe from standard input, which this caller does not give`,
      help,
    );
  return io.readStdin();
}

/** The build; at a terminal, a missing password is asked for (hidden, twice) instead of failing. */
async function buildAskingSecrets<R extends BuildResult>(
  run: () => Promise<R>,
  shared: SharedOptions,
  values: ParsedValues,
  io: CliIo,
): Promise<R> {
  const { BuildFailed } = await import("../pipeline/build.ts");
  try {
    return await run();
  } catch (error) {
    const ask = io.askSecret;
    if (!(error instanceof BuildFailed) || error.missingSecrets.length === 0 || !ask || values.json)
      throw error;
    const secrets = new Map(shared.secrets);
    for (const id of error.missingSecrets)
      secrets.set(id, await askTwice(ask, id, (line) => io.stderr.write(line)));
    shared.secrets = secrets;
    shared.hostInputs?.distrust("a secret was typed at the terminal");
    const result = await run();
    const flags = error.missingSecrets.map((id) => `--secret ${id}=FILE`).join(" ");
    io.stderr.write(
      `note: next time, without a terminal: ${flags} (or ${error.missingSecrets[0]}=env:VARIABLE)\n`,
    );
    return result;
  }
}

/** After a build: push it and its cache where asked, say what was built, and leave the up-to-date stamp. */
async function shipAndReport(
  result: PlatformsResult,
  shipping: Awaited<ReturnType<typeof registryWork>>,
  call: { args: readonly string[]; values: ParsedValues; io: CliIo; shared: SharedOptions },
): Promise<void> {
  const { args, values, io, shared } = call;
  const { pushTo, cacheTo, registries } = shipping;
  const shown = relative(io.cwd, result.outDir) || ".";
  const pushed =
    pushTo === undefined
      ? undefined
      : await (await import("./push.ts")).pushBuildDir(result.outDir, shown, pushTo, values, io, registries);
  if (cacheTo !== undefined)
    await (await import("./push.ts")).pushSharedCache(cacheTo, result, values, io, registries!);
  const reported = { ...result, name: result.config.name, stopSignal: result.config.stopSignal };
  const json = values.json === true;
  const diagnostics = json ? await diagnosticsJson(result.warnings) : [];
  io.stdout.write(resultText(reported, io.cwd, json, pushed, diagnostics));
  if (result.recall && shared.hostInputs) {
    const [{ writeStamp }, { stopSignalNote }] = await Promise.all([
      import("./build-stamp.ts"),
      import("../pipeline/build.ts"),
    ]);
    await writeStamp({
      args,
      io,
      cacheDir: shared.cacheDir,
      values,
      inputs: shared.hostInputs,
      recall: result.recall,
      warnings: result.warnings,
      ...upToDateReport(result, stopSignalNote),
      ...(result.recall.restore
        ? { restore: warmReport(result, result.recall.restore, stopSignalNote) }
        : {}),
    });
  }
}

/**
 * What `build` prints when it next finds this build up to date: for each platform in turn, every
 * step cached and the one note such a build gives; then a multi-platform build's closing notes.
 */
function upToDateReport(
  result: PlatformsResult,
  noteOf: (config: BuildResult["config"]) => string | undefined,
): { events: ReportEvent[]; result: Omit<ReportedResult, "stages"> } {
  // A multi-platform build: the index and each platform, as the build reported them.
  const several = result.platforms
    ? { platforms: result.platforms, ...(result.index ? { index: result.index } : {}) }
    : {};
  const cached = (steps: BuildResult["steps"]) => steps.map((s) => ({ ...s, reused: true, ms: 0 }));
  const said = (part: Pick<BuildResult, "steps" | "config">): ReportEvent[] => {
    const note = noteOf(part.config);
    return [
      ...part.steps.map((s) => ({
        type: "step" as const,
        index: s.index,
        total: part.steps.length,
        text: s.instruction,
        reused: true,
      })),
      ...(note ? [{ type: "note" as const, message: note }] : []),
    ];
  };
  const steps = cached(result.steps);
  return {
    events: [
      ...(result.each ?? [result]).flatMap(said),
      ...(result.closingNotes ?? []).map((message) => ({ type: "note" as const, message })),
    ],
    result: {
      digest: result.digest,
      rootfs: result.rootfs,
      outDir: result.outDir,
      outputs: result.outputs,
      reproducible: result.reproducible,
      upToDate: true,
      steps,
      name: result.config.name,
      stopSignal: result.config.stopSignal,
      ...several,
    },
  };
}

/** What `build` prints when it restores these outputs from the store: each step's notes and cached line, as a warm build says them. */
function warmReport(
  result: BuildResult,
  restore: OutputsRestore,
  noteOf: (config: BuildResult["config"]) => string | undefined,
): { events: ReportEvent[]; result: Omit<ReportedResult, "stages"> } {
  // The up-to-date report (steps, then the stop-signal note) with each step's notes said before it.
  const { events, result: upToDate } = upToDateReport(result, noteOf);
  const withNotes = events.flatMap((event) =>
    event.type === "step"
      ? [
          ...(restore.stepNotes[event.index] ?? []).map((message) => ({ type: "note" as const, message })),
          event,
        ]
      : [event],
  );
  return { events: withNotes, result: { ...upToDate, upToDate: false } };
}

function parseFormats(text: string | undefined, all: readonly string[]) {
  if (text === undefined) return undefined;
  if (text === "all") return all as never;
  const list = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0)
    throw new UsageError(`--format needs at least one of: ${all.join(", ")}, or all`, BUILD_HELP);
  for (const f of list)
    if (!all.includes(f)) {
      const near = suggest(f, all);
      throw new UsageError(
        `unknown format ${JSON.stringify(f)}${near ? ` — did you mean ${near}?` : ""}; formats: ${all.join(", ")}, or all`,
        BUILD_HELP,
      );
    }
  return list as never;
}

async function runCheck(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      arg: { type: "string", multiple: true },
      strict: { type: "boolean" },
      "allow-system-binds": { type: "boolean" },
      "allow-writable-setuid": { type: "boolean" },
      json: { type: "boolean" },
      platform: { type: "string" },
    },
    CHECK_HELP,
  );
  if (values.help) {
    io.stdout.write(CHECK_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length === 0) throw new UsageError("check needs at least one recipe", CHECK_HELP);
  const asked = parsePlatforms(values.platform as string | undefined, CHECK_HELP).platforms;
  const options = {
    args: keyValues(values.arg as string[] | undefined, "--arg", CHECK_HELP),
    strict: values.strict === true,
    allowSystemBinds: values["allow-system-binds"] === true,
    allowWritableSetuid: values["allow-writable-setuid"] === true,
  };
  if (positionals.filter((p) => p === "-").length > 1)
    throw new UsageError("check - reads one recipe from standard input: give - once", CHECK_HELP);
  const all: Diagnostic[] = [];
  // Each file without an error says so in the same words whatever the other files hold.
  const clean: string[] = [];
  for (const path of positionals) {
    // -: the recipe on standard input, named stdin, as build - takes it.
    // Read inside checkOneRecipe: standard input that is too long or not UTF-8 is its diagnostic.
    const stdin = path === "-" ? () => standardInput(io, CHECK_HELP, "check -") : undefined;
    const checked = await checkOneRecipe(io.cwd, path, options, asked, stdin);
    if (!hasErrors(checked.diagnostics)) clean.push(checked.shown);
    all.push(...checked.diagnostics);
  }
  const failed = hasErrors(all);
  if (values.json) {
    const { diagnosticsToJson } = await import("../diagnostics/format.ts");
    io.stdout.write(JSON.stringify({ ok: !failed, diagnostics: diagnosticsToJson(all) }) + "\n");
  } else {
    await printDiagnostics(all, io);
    for (const shown of clean) io.stdout.write(`${shown}: ok\n`);
  }
  return failed ? EXIT.input : EXIT.ok;
}

/**
 * One recipe of `niftyc check`: its diagnostics, with a recipe that cannot be found, read or
 * decoded (NIFTY208, NIFTY209, NIFTY801) as a diagnostic of that file, so the other files of the
 * run are still checked and every problem is printed, as text and as JSON.
 */
async function checkOneRecipe(
  cwd: string,
  path: string,
  options: Omit<import("../check/source.ts").CompileOptions, "recipePath">,
  asked: Parameters<typeof import("../check/platforms.ts").platformDiagnostics>[2],
  stdin?: () => Promise<string>,
): Promise<{ shown: string; diagnostics: Diagnostic[] }> {
  const { checkSource, readRecipe } = await import("../check/source.ts");
  const { platformDiagnostics } = await import("../check/platforms.ts");
  let shownPath = stdin === undefined ? relativeOrAbsolute(cwd, path) : "stdin";
  try {
    const location =
      stdin === undefined ? await recipeLocation(cwd, path) : { recipePath: join(cwd, "stdin"), shownPath };
    shownPath = location.shownPath;
    const source =
      stdin === undefined
        ? await readRecipe(location.recipePath, shownPath)
        : { path: shownPath, text: await stdin() };
    const result = await checkSource(source, { ...options, recipePath: location.recipePath });
    const diagnostics = [...result.diagnostics];
    if (result.recipe !== undefined) diagnostics.push(...platformDiagnostics(result.recipe, source, asked));
    return { shown: shownPath, diagnostics };
  } catch (error) {
    if (!(error instanceof NiftyError)) throw error;
    const { code, message, hint, details } = error;
    const source = { path: shownPath, text: "" };
    const diagnostic: Diagnostic = { severity: "error", code, message, source, ...(hint ? { hint } : {}) };
    return { shown: shownPath, diagnostics: [details ? { ...diagnostic, details } : diagnostic] };
  }
}

async function runCache(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    { cache: { type: "string" }, days: { type: "string" }, json: { type: "boolean" } },
    CACHE_HELP,
  );
  const [sub, ...files] = positionals;
  if (values.help || sub === undefined) {
    io.stdout.write(CACHE_HELP + "\n");
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const dir = cacheDir(values.cache as string | undefined, io);
  const json = values.json === true;
  // Only import makes a store: reading one that is not there (a misspelt --cache) leaves no directory behind.
  if (
    sub !== "import" &&
    !(await stat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    return await answerMissingCache(sub, dir, json, io);
  const { openStore } = await import("../cache/store.ts");
  const maintenance = await import("../cache/maintenance.ts");
  const store = await openStore(dir);
  const { formatBytes } = await import("../fetch/progress.ts");
  switch (sub) {
    case "import": {
      if (files.length === 0) throw new UsageError("cache import needs files", CACHE_HELP);
      const imported = await maintenance.cacheImport(
        store,
        files.map((f) => resolve(io.cwd, f)),
      );
      for (const [i, entry] of imported.entries())
        io.stdout.write(json ? JSON.stringify(entry) + "\n" : `${entry.digest}  ${files[i]}\n`);
      return EXIT.ok;
    }
    case "ls":
    case "list": {
      const entries = await maintenance.cacheList(store);
      if (json) io.stdout.write(JSON.stringify(entries) + "\n");
      else {
        for (const e of entries)
          io.stdout.write(
            `${e.digest}  ${formatBytes(e.size).padStart(10)}  ${e.lastUse.toISOString().slice(0, 10)}\n`,
          );
        io.stdout.write(`${entries.length} blobs, ${formatBytes(entries.reduce((n, e) => n + e.size, 0))}\n`);
      }
      return EXIT.ok;
    }
    case "gc": {
      const days = values.days === undefined ? 30 : Number(values.days);
      if (!(days >= 0))
        throw new UsageError(`--days takes a number, got ${JSON.stringify(values.days)}`, CACHE_HELP);
      const report = await maintenance.cacheGc(store, { olderThanDays: days });
      io.stdout.write(
        json
          ? JSON.stringify(report) + "\n"
          : report.runningBuilds > 0
            ? `${report.runningBuilds} build${report.runningBuilds === 1 ? " is" : "s are"} running: no blob removed (run gc again when they are done)\n`
            : `removed ${report.removed.length} blobs (${formatBytes(report.freedBytes)}), kept ${report.kept}\n`,
      );
      return EXIT.ok;
    }
    case "verify": {
      const report = await maintenance.cacheVerify(store);
      if (json) io.stdout.write(JSON.stringify(report) + "\n");
      else {
        for (const bad of report.corrupt)
          io.stdout.write(
            `corrupt: ${bad.digest} (now hashes to ${bad.actual}), moved to ${bad.quarantinedTo}\n`,
          );
        io.stdout.write(`${report.checked} blobs checked, ${report.corrupt.length} corrupt\n`);
      }
      return report.corrupt.length > 0 ? EXIT.input : EXIT.ok;
    }
    default:
      throw new UsageError(`unknown cache command ${JSON.stringify(sub)}`, CACHE_HELP);
  }
}

/** ls, gc or verify of a store that is not there: said, and answered as an empty store would be. */
async function answerMissingCache(sub: string, dir: string, json: boolean, io: CliIo): Promise<number> {
  if (!["ls", "list", "gc", "verify"].includes(sub))
    throw new UsageError(`unknown cache command ${JSON.stringify(sub)}`, CACHE_HELP);
  io.stderr.write(
    `niftyc: there is no cache at ${relativeOrAbsolute(io.cwd, dir)}: nothing to ${sub === "ls" ? "list" : sub}\n`,
  );
  const { emptyGcReport } = await import("../cache/maintenance.ts");
  const empty = {
    ls: [],
    gc: emptyGcReport(),
    verify: { checked: 0, ok: 0, corrupt: [], stray: [] },
  }[sub === "list" ? "ls" : (sub as "ls" | "gc" | "verify")];
  if (json) io.stdout.write(`${JSON.stringify(empty)}\n`);
  return EXIT.ok;
}

/** Where systemd-nspawn takes every setting of a .nspawn file from (systemd.nspawn(5)). */
const TRUSTED_SETTINGS = ["/etc/systemd/nspawn", "/run/systemd/nspawn"];

async function runInstall(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      "machines-dir": { type: "string" },
      "settings-dir": { type: "string" },
      root: { type: "string" },
      replace: { type: "boolean" },
      "allow-system-binds": { type: "boolean" },
    },
    INSTALL_HELP,
  );
  if (values.help) {
    io.stdout.write(INSTALL_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1)
    throw new UsageError("install takes one build directory (e.g. out/ssh)", INSTALL_HELP);
  const dir = resolve(io.cwd, positionals[0]!);
  const { rootOption, insideRoot, onThisMachine } = await import("./root.ts");
  const root = await rootOption(io.cwd, values.root as string | undefined);
  // On this host its binds are judged below, so the config is read; under --root, the name and digest.
  const build = await readBuildDir(dir, positionals[0]!, "NIFTY300", root === undefined);
  const { installMachine } = await import("../emit/install.ts");
  // As the machine that boots it sees them; under --root they are written below the root.
  const inside = (flag: string, fallback: string): string => {
    const given = values[flag] as string | undefined;
    return given === undefined
      ? fallback
      : root === undefined
        ? resolve(io.cwd, given)
        : insideRoot(root, given, `--${flag}`, INSTALL_HELP);
  };
  const machinesDir = inside("machines-dir", "/var/lib/machines");
  const settingsDir = inside("settings-dir", "/etc/systemd/nspawn");
  let nspawnText: string;
  try {
    nspawnText = await readFile(`${dir}/${build.name}.nspawn`, "utf8");
  } catch {
    throw new NiftyError(
      "NIFTY301",
      `${positionals[0]} has no ${build.name}.nspawn`,
      "build with the nspawn format (the default), e.g. niftyc build <recipe> --format rootfs,nspawn",
    );
  }
  // Installed here, the machine's binds are this host's paths, which nspawn follows at every boot:
  // judged as niftyc run judges them. Under --root they are another machine's.
  if (root === undefined && values["allow-system-binds"] !== true) {
    const { existsSync } = await import("node:fs");
    const { refuseHostBind } = await import("../run/prepare.ts");
    for (const bind of build.config.binds) if (existsSync(bind.hostPath)) refuseHostBind(bind);
  }
  await installMachine({
    rootfsTar: build.rootfsTar,
    nspawnText,
    name: build.name,
    machinesDir: onThisMachine(root, machinesDir),
    settingsDir: onThisMachine(root, settingsDir),
    replace: values.replace === true,
  });
  // nspawn applies every setting of a .nspawn file only from its trusted directories; one beside
  // the machine only with --settings=trusted; anywhere else it never reads it.
  const trusted = TRUSTED_SETTINGS.includes(settingsDir);
  const beside = settingsDir === machinesDir;
  // machinectl only looks in /var/lib/machines (and its own search path); elsewhere nspawn is told where.
  const start =
    machinesDir === "/var/lib/machines" && trusted
      ? `machinectl start ${build.name}`
      : `systemd-nspawn --boot --directory=${machinesDir}/${build.name} --machine=${build.name}${beside && !trusted ? " --settings=trusted" : ""}`;
  const where = root === undefined ? "" : ` of the machine at ${root}`;
  io.stdout.write(
    `installed ${build.name} in ${machinesDir}/${build.name}${where}; start it ${root === undefined ? "" : "there "}with: ${start}\n`,
  );
  if (!trusted && !beside)
    io.stderr.write(
      `note: systemd-nspawn never reads ${settingsDir}/${build.name}.nspawn (only ${TRUSTED_SETTINGS.join(" or ")}, or beside the machine): ` +
        `without it the machine boots without its ports, environment, binds and stop signal; install it with --settings-dir ${TRUSTED_SETTINGS[0]}, or copy the file there\n`,
    );
  return EXIT.ok;
}

// Run when executed directly (bin/niftyc imports this module).
if (import.meta.main || process.argv[1]?.endsWith("/niftyc")) {
  ignoreClosedReaders();
  const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
  // As a recipe file is read: at most MAX_RECIPE_BYTES (/dev/zero ends), and invalid UTF-8 refused, never U+FFFD.
  const readStdin = async (): Promise<string> => {
    const { MAX_RECIPE_BYTES, decodeRecipe, tooManyBytes } = await import("../check/source.ts");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size > MAX_RECIPE_BYTES) throw tooManyBytes("standard input");
    }
    return decodeRecipe(Buffer.concat(chunks), "stdin", "standard input");
  };
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    readStdin,
    ...(interactive ? { askSecret: askHidden } : {}),
  });
  process.exitCode = code;
}

/** Read one line from the terminal without echoing it. */
function askHidden(prompt: string): Promise<string> {
  return new Promise((done, fail) => {
    const stdin = process.stdin;
    // Echo off before the prompt shows: what is typed as soon as it appears must not be echoed.
    stdin.setRawMode(true);
    process.stderr.write(prompt);
    stdin.resume();
    let typed = "";
    const finish = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (error) fail(error);
      else done(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003") return finish(new Interrupted());
        if (ch === "\u007f" || ch === "\b") typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on("data", onData);
  });
}
