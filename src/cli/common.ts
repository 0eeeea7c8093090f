// Pieces every command shares: argument parsing, the environment read once
// (SOURCE_DATE_EPOCH, NIFTY_CACHE, NIFTY_MIRROR_DEBIAN, NO_COLOR), build
// flags, secrets, and printing diagnostics.
import { open, readdir, readFile, stat, type FileHandle } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { BuildEvent, BuildOptions } from "../pipeline/build.ts";
import type { ErrorCode } from "../diagnostics/codes.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { DEFAULT_LIMITS, MAX_EPOCH, withLimit, type Limits } from "../core/limits.ts";
import type { ImageConfig } from "../image/config.ts";
import {
  findPlatform,
  PLATFORM_NAMES,
  platformDir,
  platformOfOci,
  type Platform,
} from "../image/platform.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { UsageError, type CliIo } from "./io.ts";
import { eventLine } from "./build-report.ts";
import { printDiagnostics } from "./print-diagnostics.ts";
import { HostInputs, identityOf } from "../core/host-inputs.ts";
import { readCapped } from "../core/read-capped.ts";
import { isMachineName } from "../check/recipe-name.ts";
import { isRecord } from "../core/json-shape.ts";

// Taken from the module itself, not `import … from "node:util"`: node:util's ES module
// face reads every export, which loads worker_threads and the diff machinery on every start.
const { parseArgs } = process.getBuiltinModule("node:util");

export const EXIT = { ok: 0, input: 1, usage: 2, securityUpdates: 3, bug: 70, interrupted: 130 } as const;

export type OptionSpec = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;
export type ParsedValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export function parse(
  args: readonly string[],
  options: OptionSpec,
  help: string,
): { values: ParsedValues; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args: [...args],
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { values: parsed.values as ParsedValues, positionals: parsed.positionals };
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    // A misspelt option: the nearest the command takes.
    const unknown = /^Unknown option '-{1,2}([^']+)'/.exec(message)?.[1];
    const near =
      unknown === undefined
        ? undefined
        : (suggest(unknown, [...Object.keys(options), "help"]) ?? namedOtherwise(unknown, options));
    throw new UsageError(near ? `${message} — did you mean --${near}?` : message, help);
  }
}

/**
 * Options another command (or docker) spells differently, too far apart for a misspelling:
 * push signs with --sign KEY, sign and verify take --key; a password comes only on stdin.
 */
const OTHER_NAMES: Record<string, string> = {
  key: "sign",
  sign: "key",
  p: "password-stdin",
  password: "password-stdin",
};

function namedOtherwise(unknown: string, options: OptionSpec): string | undefined {
  const name = OTHER_NAMES[unknown];
  return name !== undefined && name in options ? name : undefined;
}

export function keyValues(
  list: readonly string[] | undefined,
  flag: string,
  help: string,
): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of list ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag} takes NAME=VALUE, got ${JSON.stringify(item)}`, help);
    map.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return map;
}

/** SOURCE_DATE_EPOCH: read once here, validated, passed down. */
export function readEpoch(env: CliIo["env"]): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === "") return 0;
  if (!/^\d{1,12}$/.test(raw.trim())) {
    throw new UsageError(
      `SOURCE_DATE_EPOCH=${JSON.stringify(raw)} is not a whole number of seconds since 1970-01-01 UTC`,
    );
  }
  const epoch = Number(raw.trim());
  if (epoch > MAX_EPOCH)
    throw new UsageError(
      `SOURCE_DATE_EPOCH=${raw.trim()} is later than ${MAX_EPOCH} (2242-03-16), the last time a tarball's headers hold`,
    );
  return epoch;
}

/**
 * The secrets' values, and for those read from a file that did not change
 * while it was read, the file's identity (src/pipeline/secret-stamps.ts).
 */
export async function readSecrets(
  list: readonly string[] | undefined,
  io: CliIo,
  help: string,
  inputs?: HostInputs,
): Promise<{ secrets: Map<string, Buffer>; stamps: Map<string, string> }> {
  const secrets = new Map<string, Buffer>();
  const stamps = new Map<string, string>();
  for (const [id, where] of keyValues(list, "--secret", help)) {
    let value: Buffer;
    // An empty path would be the working directory (EISDIR), an empty name a variable "" never set.
    if (where === "" || where === "env:")
      throw new UsageError(
        `--secret ${id}=${where} names no ${where === "" ? "file" : "variable"}: give ${id}=FILE or ${id}=env:VARIABLE`,
        help,
      );
    if (where.startsWith("env:")) {
      const variable = io.env[where.slice(4)];
      if (variable === undefined)
        throw new NiftyError(
          "NIFTY212",
          `--secret ${id}: environment variable ${where.slice(4)} is not set`,
          `export ${where.slice(4)}=… first, or give the secret as ${id}=FILE`,
        );
      value = Buffer.from(variable);
      inputs?.distrust(`the secret ${id} came from the environment`);
    } else {
      try {
        const file = resolve(io.cwd, where);
        const fh = await open(file, "r");
        try {
          // Stat before and after the read on the same descriptor: a write in between changes ctime.
          const before = await fh.stat({ bigint: true });
          value = await readSecretBytes(fh, id, where);
          const after = await fh.stat({ bigint: true });
          if (before.isFile() && identityOf(before) === identityOf(after)) {
            stamps.set(id, `${identityOf(after)}:${file}`);
            inputs?.file(file, before);
          } else inputs?.distrust(`the secret file ${where} changed while it was read`);
        } finally {
          await fh.close();
        }
      } catch (error) {
        if (error instanceof NiftyError) throw error;
        throw new NiftyError(
          "NIFTY212",
          `--secret ${id}: cannot read ${where}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
          "the file's content, without a final newline, is the secret; give a readable file or env:VARIABLE",
        );
      }
    }
    // One final newline is dropped: `echo pw > file` means the password "pw".
    if (value.at(-1) === 0x0a) value = value.subarray(0, value.at(-2) === 0x0d ? -2 : -1);
    secrets.set(id, value);
  }
  return { secrets, stamps };
}

/** More than any secret a recipe takes (a password, a key seed): reading stops there, so /dev/zero ends. */
const MAX_SECRET_BYTES = 1 << 20;

async function readSecretBytes(fh: FileHandle, id: string, where: string): Promise<Buffer> {
  const bytes = await readCapped(fh, MAX_SECRET_BYTES);
  if (bytes.length > MAX_SECRET_BYTES)
    throw new NiftyError(
      "NIFTY212",
      `--secret ${id}: cannot read ${where}: it has more than 1 MiB, more than any secret takes`,
      "a secret is a password or a key seed: give the file that holds just that",
    );
  return bytes;
}

export function cacheDir(flag: string | undefined, io: CliIo): string {
  // An empty --cache would be the working directory, and the store's directories would land in it.
  if (flag === "") throw new UsageError("--cache takes a directory, got an empty path");
  return resolve(io.cwd, flag ?? (io.env.NIFTY_CACHE || "cache"));
}

/**
 * The recipe as the library takes it (absolute) and as messages show it
 * (relative to the working directory). A directory stands for its Niftyfile
 * or its one .nifty file.
 */
export async function recipeLocation(
  cwd: string,
  path: string,
  inputs?: HostInputs,
): Promise<{ recipePath: string; shownPath: string }> {
  const absolute = resolve(cwd, path);
  const info = await stat(absolute, { bigint: true }).catch(() => undefined);
  if (!info?.isDirectory()) return { recipePath: absolute, shownPath: relativeOrAbsolute(cwd, path) };
  // Which recipe a directory stands for changes only when its entries do, and so does its mtime.
  inputs?.file(absolute, info);
  const { recipeInDirectory } = await import("../check/source.ts");
  const found = await recipeInDirectory(absolute, relativeOrAbsolute(cwd, path));
  return { recipePath: found, shownPath: relativeOrAbsolute(cwd, found) };
}

export function relativeOrAbsolute(cwd: string, path: string): string {
  const rel = relative(cwd, resolve(cwd, path));
  return rel === "" ? "." : rel.startsWith("..") ? resolve(cwd, path) : rel;
}

/** Build options from those flags and the environment. */
export async function buildOptions(
  values: ParsedValues,
  io: CliIo,
  help: string,
): Promise<Omit<BuildOptions, "recipePath" | "outDir">> {
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0))
    throw new UsageError(`--timeout takes a number of seconds, got ${JSON.stringify(values.timeout)}`, help);
  let limits: Limits = { ...DEFAULT_LIMITS };
  for (const spec of (values.limit as string[] | undefined) ?? []) {
    const next = withLimit(limits, spec);
    if (typeof next === "string") throw new UsageError(next, help);
    limits = next;
  }
  const hostInputs = new HostInputs();
  const mirrorFlags = [...((values.mirror as string[] | undefined) ?? [])];
  const mirrorNames = [...new Set(mirrorFlags.map((flag) => flag.split("=")[0]!.trim()))];
  // NIFTY_MIRROR_<NAME> for every archive name: NIFTY_MIRROR_DEBIAN_SECURITY is debian-security's.
  for (const [key, value] of Object.entries(io.env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const name = /^NIFTY_MIRROR_([A-Z0-9_]+)$/.exec(key)?.[1]?.toLowerCase().replaceAll("_", "-");
    if (name !== undefined && value)
      for (const url of value.split(/[\s,]+/).filter(Boolean)) mirrorFlags.push(`${name}=${url}`);
  }
  return {
    args: keyValues(values.arg as string[] | undefined, "--arg", help),
    ...(await readSecrets(values.secret as string[] | undefined, io, help, hostInputs).then(
      ({ secrets, stamps }) => ({ secrets, secretStamps: stamps }),
    )),
    hostInputs,
    epoch: readEpoch(io.env),
    cacheDir: cacheDir(values.cache as string | undefined, io),
    offline: values.offline === true,
    locked: values.locked === true,
    // The one reading of the clock: an archive's Valid-Until is checked against it; it reaches no artifact.
    now: new Date(),
    mirrors: async () => {
      const { loadMirrors, parseMirrorSettings } = await import("../fetch/mirrors.ts");
      return loadMirrors(parseMirrorSettings(mirrorFlags));
    },
    mirrorNames,
    strict: values.strict === true,
    allowWritableSetuid: values["allow-writable-setuid"] === true,
    allowSystemBinds: values["allow-system-binds"] === true,
    ...(timeout ? { fetchTimeoutMs: timeout * 1000 } : {}),
    limits,
    ...parsePlatforms(values.platform as string | undefined, help),
  };
}

/** --platform linux/amd64,linux/arm64,…: the first is `platform`, all are `platforms`; none: amd64 alone. */
export function parsePlatforms(
  text: string | undefined,
  help: string,
): { platform?: Platform; platforms?: Platform[] } {
  if (text === undefined) return {};
  const platforms: Platform[] = [];
  for (const word of text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const p = findPlatform(word);
    if (p === undefined) {
      const near = suggest(word, PLATFORM_NAMES);
      const hint = near !== undefined ? `did you mean ${near}? ` : "";
      const known = `platforms: ${PLATFORM_NAMES.join(", ")}`;
      throw new UsageError(`unknown platform ${JSON.stringify(word)} (${hint}${known})`, help);
    }
    if (!platforms.includes(p)) platforms.push(p);
  }
  if (platforms.length === 0) {
    throw new UsageError("--platform needs at least one platform, e.g. linux/arm64", help);
  }
  return { platform: platforms[0]!, platforms };
}

export interface Built {
  name: string;
  digest: string;
  config: ImageConfig;
  rootfsTar: string;
  buildDir: string;
}

/** Flags a command passes to the build of a recipe, and nothing else reads. */
const BUILD_ONLY_FLAGS = [
  "secret",
  "arg",
  "cache",
  "mirror",
  "offline",
  "locked",
  "timeout",
  "limit",
  "strict",
  "allow-writable-setuid",
] as const;

/**
 * A build directory is already built: flags that only shape a build would be dropped without a
 * word, and a user who gave --limit or --secret would think they had done something.
 */
function refuseBuildFlags(
  values: ParsedValues,
  input: string,
  help: string,
  also: readonly string[] = [],
): void {
  const given = [...BUILD_ONLY_FLAGS, ...also]
    .filter((flag) => values[flag] !== undefined && values[flag] !== false)
    .map((flag) => `--${flag}`);
  if (given.length === 0) return;
  const one = given.length === 1;
  throw new UsageError(
    `${given.join(", ")} only ${one ? "shapes" : "shape"} a build, and ${input} is a build directory, already built: drop ${one ? "it" : "them"}, or give the recipe instead`,
    help,
  );
}

/**
 * A build directory taken where --platform was given: it must be that platform's build (a build
 * directory is of one platform; its --platform cannot be chosen after the fact).
 */
export function requirePlatform(
  built: Built,
  given: string | undefined,
  code: ErrorCode,
  help: string,
): void {
  if (given === undefined) return;
  const wanted = parsePlatforms(given, help).platform!;
  const { architecture, variant } = built.config;
  const has = platformOfOci(architecture, variant)?.name ?? `linux/${architecture}`;
  if (has === wanted.name) return;
  throw new NiftyError(
    code,
    `${built.buildDir} is a build for ${has}, not for ${wanted.name}`,
    `give the build directory of ${wanted.name} (a several-platform build has one per platform, out/<name>/${platformDir(wanted)}), or the recipe with --platform ${wanted.name}`,
  );
}

/**
 * Whether run or instances takes a path as a build directory: one with a build.json, or a directory
 * holding no recipe (readBuildDir says what it lacks). A directory with a Niftyfile or a .nifty file
 * and no build.json is a recipe's, built first; a file is a recipe.
 */
async function isBuildDirectory(path: string): Promise<boolean> {
  const names = await readdir(path).catch(() => undefined);
  if (names === undefined) return false;
  return names.includes("build.json") || !names.some((n) => n === "Niftyfile" || n.endsWith(".nifty"));
}

/**
 * The input of run or instances: a build directory, read as it is (build flags refused, its
 * platform checked against --platform), or a recipe, built first as niftyc build does. `outFlag`:
 * the command's --out is where a recipe is built (run). A number is the build's exit status.
 */
export async function builtOrBuild(
  input: string,
  values: ParsedValues,
  io: CliIo,
  command: { help: string; code: ErrorCode; outFlag?: boolean },
): Promise<(Built & { nspawnFile?: string }) | number> {
  const { help, code, outFlag = false } = command;
  const inputPath = resolve(io.cwd, input);
  const exists = (path: string) =>
    stat(path).then(
      () => true,
      () => false,
    );
  if (!(await exists(inputPath)))
    throw new NiftyError(
      code,
      `${input} does not exist`,
      "give a recipe (.nifty) or a build directory (out/<name>)",
    );
  if (!(await isBuildDirectory(inputPath)))
    return buildForCommand(input, values, io, help, outFlag ? (values.out as string | undefined) : undefined);
  refuseBuildFlags(values, input, help, outFlag ? ["out"] : []);
  const built = await readBuildDir(inputPath, input, code);
  requirePlatform(built, values.platform as string | undefined, code, help);
  const nspawnFile = join(inputPath, `${built.name}.nspawn`);
  return (await exists(nspawnFile)) ? { ...built, nspawnFile } : built;
}

/** An ImageConfig as a build writes it, to the depth run, install and instances read it (an edited build.json). */
function isConfig(c: unknown): c is ImageConfig {
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
  const pairs = (v: unknown) => Array.isArray(v) && v.every((p) => strings(p) && p.length === 2);
  const records = (v: unknown) => Array.isArray(v) && v.every(isRecord);
  const bind = (b: unknown) =>
    isRecord(b) &&
    typeof b.hostPath === "string" &&
    typeof b.containerPath === "string" &&
    typeof b.readOnly === "boolean";
  return (
    isRecord(c) &&
    pairs(c.env) &&
    pairs(c.labels) &&
    records(c.exposedPorts) &&
    Array.isArray(c.binds) &&
    c.binds.every(bind) &&
    (c.hostname === undefined || typeof c.hostname === "string") &&
    isRecord(c.stopSignal) &&
    typeof c.stopSignal.name === "string" &&
    typeof c.stopSignal.number === "number" &&
    isRecord(c.init) &&
    typeof c.init.kind === "string" &&
    strings(c.init.command) &&
    typeof c.architecture === "string"
  );
}

/** What `niftyc build` left in an output directory; `code` is the calling command's. */
export async function readBuildDir(
  dir: string,
  shown: string,
  code: ErrorCode,
  /** Whether the caller reads the image config (run, instances, install on this host); install --root takes only the name and digest. */
  readsConfig = true,
): Promise<Built> {
  let record: { name?: string; digest?: string; config?: ImageConfig };
  try {
    record = JSON.parse(await readFile(join(dir, "build.json"), "utf8")) as typeof record;
  } catch {
    // A several-platform build: out/<name>/ holds a directory per platform, each a build directory.
    const platforms = (await readdir(dir).catch(() => [] as string[]))
      .filter((n) => n.startsWith("linux-"))
      .sort();
    throw new NiftyError(
      code,
      `${shown} is not a build directory (no readable build.json)`,
      platforms.length > 0
        ? `it holds a build for each of several platforms: give one of them, ${platforms.map((p) => join(shown, p)).join(", ")}`
        : "give a recipe, or the output directory of niftyc build (out/<name>)",
    );
  }
  if (
    !isRecord(record) ||
    typeof record.name !== "string" ||
    typeof record.digest !== "string" ||
    !isRecord(record.config) ||
    (readsConfig && !isConfig(record.config))
  ) {
    throw new NiftyError(
      code,
      `${shown}/build.json has no name, digest or config`,
      "build again with this version of niftyc",
    );
  }
  // The name becomes a machine, a unit and a path under the machines directory: never `../x`.
  if (!isMachineName(record.name))
    throw new NiftyError(
      code,
      `${shown}/build.json names the image ${JSON.stringify(record.name)}, which cannot name a machine`,
      "build again from a recipe whose file name is letters, digits, '.', '_' and '-'",
    );
  try {
    await stat(join(dir, "rootfs.tar"));
  } catch {
    throw new NiftyError(code, `${shown} has no rootfs.tar`, "build with the rootfs format (the default)");
  }
  return {
    name: record.name,
    digest: record.digest,
    config: record.config,
    rootfsTar: join(dir, "rootfs.tar"),
    buildDir: dir,
  };
}

/**
 * Build progress on stderr: a line per step, live download lines, notes. `quiet` (--quiet): only the
 * notes that say the build changed a file beside the recipe (its lock).
 */
export async function createBuildProgress(
  io: CliIo,
  quiet = false,
): Promise<{ onEvent: (event: BuildEvent) => void; stop: () => void }> {
  if (quiet)
    return {
      onEvent: (event) => {
        if (event.type === "note" && (event.wrote || event.warning)) io.stderr.write(eventLine(event));
      },
      stop: () => {},
    };
  // Live download lines only where progress is shown.
  const { createProgress } = await import("../fetch/progress.ts");
  let fetches: ReturnType<typeof createProgress> | undefined;
  return {
    onEvent(event: BuildEvent) {
      switch (event.type) {
        case "step":
        case "note":
          io.stderr.write(eventLine(event));
          break;
        case "fetch-progress":
          fetches ??= createProgress(io.stderr as never);
          fetches.onProgress(event.progress);
          break;
        case "fetched":
          if (!event.fromCache) {
            fetches ??= createProgress(io.stderr as never);
            fetches.finished(event.name, {
              digest: event.digest,
              size: event.size,
              path: "",
              fromCache: false,
              ...(event.url ? { url: event.url } : {}),
            });
            fetches.stop();
            fetches = undefined;
          }
          break;
      }
    },
    stop() {
      fetches?.stop();
    },
  };
}

/**
 * A password typed twice, as passwd asks; an empty one or two that differ are asked again (three
 * tries), and `say` tells why before asking again.
 */
export async function askTwice(
  ask: (prompt: string) => Promise<string>,
  id: string,
  say: (line: string) => void,
): Promise<Buffer> {
  let mismatched = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    const first = await ask(`Password for the secret "${id}": `);
    if (first === "") {
      say("the password is empty\n");
      continue;
    }
    if ((await ask("Again: ")) === first) return Buffer.from(first, "utf8");
    mismatched = true;
    say("the passwords do not match\n");
  }
  const hint = `type the same non-empty password twice, or pass --secret ${id}=FILE or --secret ${id}=env:VARIABLE`;
  if (mismatched)
    throw new NiftyError(
      "NIFTY214",
      `the passwords typed for the secret "${id}" did not match in 3 tries`,
      hint,
    );
  throw new NiftyError("NIFTY213", `no password was given for the secret "${id}"`, hint);
}

/**
 * Build a recipe for a command that then uses the build (instances, run): build's options,
 * progress and diagnostics; at a terminal a missing password is asked for, as build does.
 * Returns the exit status when the recipe is wrong.
 */
export async function buildForCommand(
  path: string,
  values: ParsedValues,
  io: CliIo,
  help: string,
  outDir?: string,
): Promise<(Built & { nspawnFile?: string }) | number> {
  const { build, BuildFailed } = await import("../pipeline/build.ts");
  const shared = await buildOptions(values, io, help);
  if ((shared.platforms?.length ?? 1) > 1) {
    const why = "this command builds and runs one platform: give one --platform";
    throw new UsageError(`${why} (a foreign one runs through qemu-user)`, help);
  }
  const progress = await createBuildProgress(io, values.quiet === true);
  const location = await recipeLocation(io.cwd, path);
  const run = () =>
    build({
      ...shared,
      ...location,
      outDir: (name) => resolve(io.cwd, outDir ?? join("out", name)),
      onEvent: progress.onEvent,
    });
  try {
    let result;
    try {
      result = await run();
    } catch (error) {
      if (!(error instanceof BuildFailed) || error.missingSecrets.length === 0 || io.askSecret === undefined)
        throw error;
      const secrets = new Map(shared.secrets);
      for (const id of error.missingSecrets)
        secrets.set(id, await askTwice(io.askSecret, id, (line) => io.stderr.write(line)));
      shared.secrets = secrets;
      result = await run();
    }
    progress.stop();
    await printDiagnostics(result.warnings, io);
    const nspawn = result.outputs.nspawn;
    return {
      name: result.config.name,
      digest: result.digest,
      config: result.config,
      rootfsTar: result.rootfs,
      buildDir: result.outDir,
      ...(nspawn ? { nspawnFile: nspawn } : {}),
    };
  } catch (error) {
    progress.stop();
    if (error instanceof BuildFailed) {
      await printDiagnostics(error.diagnostics, io);
      return EXIT.input;
    }
    throw error;
  }
}
