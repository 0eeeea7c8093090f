// niftyc verify: read a build's provenance (beside a build, or the pushed image's
// referrer), check the recipe and lock the user gives against the digests it
// names, rebuild in a fresh store with its --arg values and epoch (offline from
// --cache-from, or from the sources), and compare: "reproduced: sha256:…" (exit 0),
// or the first file that differs (exit 1). With --key, the image's cosign
// signature is checked first.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import { UsageError, type CliIo } from "./io.ts";
import { EXIT, buildOptions, parse, relativeOrAbsolute, type ParsedValues } from "./common.ts";
import { printDiagnostics } from "./print-diagnostics.ts";
import { BUILD_FLAGS, PUSH_FLAGS } from "./build-flags.ts";
import { VERIFY_HELP } from "./usage.ts";
import type { ReadProvenance } from "../trust/verify.ts";
import type { registrySettings as registrySettingsOf } from "./push.ts";

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
type Settings = ReturnType<typeof registrySettingsOf>;

interface Original {
  provenance: ReadProvenance;
  /** The image's digest as pushed or built: the subject named for the image. */
  digest: string;
  /**
   * An image's files, fetched when a difference must be named: rootfs.tar, or the image's layers;
   * of a multi-platform image, the platform's (its directory, and its image's manifest digest).
   */
  files: (scratch: string, platform?: { dir: string; manifest: string }) => Promise<string[]>;
}

async function fromBuildDir(dir: string, shown: string): Promise<Original> {
  const { parseProvenance } = await import("../trust/verify.ts");
  const { readInside } = await import("../trust/build-dir.ts");
  // The directory is not trusted: a regular file, not a link, FIFO or device, of a bounded size.
  const bytes = await readInside(dir, "provenance.json", 64 * 1024 ** 2).catch(() => undefined);
  if (bytes === undefined)
    throw new NiftyError(
      "NIFTY735",
      `${shown} has no provenance (no readable provenance.json: a regular file of at most 64 MiB)`,
      "build with this niftyc (provenance is a default format)",
    );
  const provenance = parseProvenance(bytes, `${shown}/provenance.json`);
  return {
    provenance,
    digest: provenance.subjects[0]!.digest,
    files: async (_, platform) => [join(dir, platform?.dir ?? "", "rootfs.tar")],
  };
}

async function fromRegistry(
  text: string,
  values: ParsedValues,
  io: CliIo,
  settings: Settings,
): Promise<Original> {
  const { parseReference } = await import("../registry/reference.ts");
  const { resolveDigest, readSignatures } = await import("../registry/signature.ts");
  const { readReferrer, downloadLayers } = await import("../registry/referrers.ts");
  const { parseProvenance } = await import("../trust/verify.ts");
  const { PROVENANCE_MEDIA_TYPE } = await import("../emit/provenance.ts");
  const ref = parseReference(text);
  const options = { target: ref, ...(await settings(ref.registry)) };
  const digest = await resolveDigest(options);
  const shown = `${ref.registry}/${ref.repository}@${digest}`;
  if (values.key !== undefined) {
    const { loadPublicKey } = await import("../trust/keys.ts");
    const { checkSignature } = await import("../trust/signature.ts");
    const keyFile = values.key as string;
    const key = await loadPublicKey(resolve(io.cwd, keyFile), keyFile);
    const found = await readSignatures(options, digest);
    const why = found.map((s) =>
      checkSignature(s.payload, s.signature, key, `${ref.registry}/${ref.repository}`, digest),
    );
    if (!why.includes(undefined)) {
      throw new NiftyError(
        "NIFTY734",
        `${shown} has no signature by the key ${keyFile}: ${found.length === 0 ? "it has no signature" : why.join("; ")}`,
        "sign it with niftyc push --sign or niftyc sign, or give the public key of the key that signed it",
      );
    }
    if (values.quiet !== true) io.stderr.write(`signature: verified with ${keyFile}\n`);
  }
  const bytes = await readReferrer(options, digest, PROVENANCE_MEDIA_TYPE);
  if (bytes === undefined)
    throw new NiftyError(
      "NIFTY735",
      `${shown} has no provenance (no in-toto referrer)`,
      "push the build with this niftyc: it attaches provenance.json",
    );
  const provenance = parseProvenance(bytes, `of ${shown}`);
  if (!provenance.subjects.some((s) => s.digest === digest)) {
    throw new NiftyError(
      "NIFTY735",
      `the provenance of ${shown} cannot be read: it is about other images`,
      "push the build again with this niftyc",
    );
  }
  const maxBytes = 16 * 1024 ** 3;
  return {
    provenance,
    digest,
    files: (scratch, platform) => downloadLayers(options, platform?.manifest ?? digest, scratch, maxBytes),
  };
}

/** The recipe and lock must be the ones the provenance names. */
async function checkInputs(p: ReadProvenance, recipePath: string, shown: string): Promise<void> {
  const recipe = await readFile(recipePath).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`--recipe ${shown}: ${e.code ?? "unreadable"}`, VERIFY_HELP);
  });
  const hint =
    "give the recipe and lock as they were built (the provenance's externalParameters name their digests)";
  if (sha256(recipe) !== p.recipe.digest)
    throw new NiftyError(
      "NIFTY270",
      `the recipe ${shown} is ${sha256(recipe)}, but the provenance names ${p.recipe.digest}`,
      hint,
    );
  const locks = p.locks.length > 0 ? p.locks : p.lock !== undefined ? [p.lock] : [];
  for (const lock of locks) {
    const suffix = lock.path.startsWith(p.recipe.path) ? lock.path.slice(p.recipe.path.length) : ".lock";
    const bytes = await readFile(`${recipePath}${suffix}`).catch(() => Buffer.alloc(0));
    if (sha256(bytes) !== lock.digest)
      throw new NiftyError(
        "NIFTY270",
        `the lock ${shown}${suffix} is ${sha256(bytes)}, but the provenance names ${lock.digest}`,
        hint,
      );
  }
}

export async function runVerify(
  args: readonly string[],
  io: CliIo,
  registrySettings: typeof registrySettingsOf,
): Promise<number> {
  // The provenance fixes the arguments, the platforms and --locked; the rebuild has a store of its own.
  const { arg: _a, cache: _c, locked: _l, platform: _p, ...buildFlags } = BUILD_FLAGS;
  const { "cache-to": _t, sign: _s, "key-passphrase": _k, ...registryFlags } = PUSH_FLAGS;
  const flags = {
    ...buildFlags,
    ...registryFlags,
    recipe: { type: "string" },
    key: { type: "string" },
    quiet: { type: "boolean", short: "q" },
  } as const;
  const { values, positionals } = parse(args, flags, VERIFY_HELP);
  if (values.help) {
    io.stdout.write(VERIFY_HELP + "\n");
    return EXIT.ok;
  }
  if (positionals.length !== 1)
    throw new UsageError("verify takes one image reference or build directory", VERIFY_HELP);
  if (values.recipe === undefined)
    throw new UsageError("verify needs --recipe: the recipe the provenance names, to rebuild", VERIFY_HELP);
  const settings = registrySettings(values, io);
  const target = positionals[0]!;
  const dir = resolve(io.cwd, target);
  // A build directory: build.json, or (several platforms) the index's provenance.json.
  const isFile = (name: string) =>
    stat(join(dir, name)).then(
      (s) => s.isFile(),
      () => false,
    );
  const isDir = (await isFile("build.json")) || (await isFile("provenance.json"));
  if (isDir && values.key !== undefined)
    throw new UsageError("--key checks a pushed image's signature: give the image's reference", VERIFY_HELP);
  const shown = relativeOrAbsolute(io.cwd, target);
  const original = isDir ? await fromBuildDir(dir, shown) : await fromRegistry(target, values, io, settings);
  // A build directory's own files first: the rebuild compares digests, and these are the bytes used.
  if (isDir) {
    const { firstMismatch } = await import("../trust/build-dir.ts");
    const mismatch = await firstMismatch(dir, original.provenance, `${shown}/provenance.json`);
    if (mismatch !== undefined) {
      io.stdout.write(
        `not reproduced: ${shown} is not what its provenance names, first at ${shown}/${mismatch.path}: ${mismatch.why}\n`,
      );
      return EXIT.input;
    }
  }
  const recipeShown = values.recipe as string;
  const recipePath = resolve(io.cwd, recipeShown);
  await checkInputs(original.provenance, recipePath, recipeShown);
  const scratch = await mkdtemp(join(tmpdir(), "niftyc-verify-"));
  try {
    return await rebuildAndCompare(original, { recipePath, scratch, values, io, settings });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

interface Rebuild {
  recipePath: string;
  scratch: string;
  values: ParsedValues;
  io: CliIo;
  settings: Settings;
}

/** The platforms the provenance names, as build options take them. */
async function platformsOf(p: ReadProvenance) {
  const { findPlatform } = await import("../image/platform.ts");
  return p.platforms.map((name) => {
    const platform = findPlatform(name);
    if (platform === undefined)
      throw new NiftyError(
        "NIFTY735",
        `the provenance cannot be read: it names the platform ${name}, which this niftyc does not build`,
        "verify with the niftyc version the provenance names",
      );
    return platform;
  });
}

async function rebuildAndCompare(original: Original, r: Rebuild): Promise<number> {
  const { values, io } = r;
  const p = original.provenance;
  const cache = join(r.scratch, "cache");
  const out = join(r.scratch, "out");
  // A fresh store: nothing of an earlier build on this machine takes part.
  const fresh = { ...values, cache };
  if (values["cache-from"] !== undefined) {
    const { pullSharedCache } = await import("./push.ts");
    if (await pullSharedCache(values["cache-from"] as string, fresh, io, r.settings, 16 * 1024 ** 3))
      return EXIT.input;
  }
  const { BuildFailed } = await import("../pipeline/build.ts");
  const { buildPlatforms } = await import("../pipeline/platforms.ts");
  const options = await buildOptions(fresh, io, VERIFY_HELP);
  let result;
  try {
    result = await buildPlatforms({
      ...options,
      cacheDir: cache,
      epoch: p.epoch,
      args: new Map(Object.entries(p.args)),
      locked: true,
      recipePath: r.recipePath,
      shownPath: p.recipe.path,
      // Every platform the provenance names, and only those.
      platforms: await platformsOf(p),
      outDir: () => out,
    });
  } catch (error) {
    if (!(error instanceof BuildFailed)) throw error;
    await printDiagnostics(error.diagnostics, io);
    io.stderr.write("niftyc: the rebuild failed: not verified\n");
    return EXIT.input;
  }
  await printDiagnostics(result.warnings, io);
  return compare(original, out, r);
}

/** Every subject of the original against the rebuild's; the first file that differs, of each platform that does. */
async function compare(original: Original, out: string, r: Rebuild): Promise<number> {
  const { parseProvenance, tarEntries, firstDifference } = await import("../trust/verify.ts");
  const p = original.provenance;
  const rebuilt = parseProvenance(await readFile(join(out, "provenance.json")), "of the rebuild");
  const digestOf = (list: ReadProvenance["subjects"], name: string) =>
    list.find((s) => s.name === name)?.digest;
  const same = p.subjects.every((s) => digestOf(rebuilt.subjects, s.name) === s.digest);
  if (same) {
    r.io.stdout.write(`reproduced: ${original.digest}\n`);
    return EXIT.ok;
  }
  const image = rebuilt.subjects.find((s) => s.name !== "rootfs.tar") ?? rebuilt.subjects[0]!;
  const differs = async (platform?: { dir: string; manifest: string }) => {
    const files = await original.files(r.scratch, platform);
    const rootfs = join(out, platform?.dir ?? "", "rootfs.tar");
    return firstDifference(await tarEntries(files), await tarEntries([rootfs]));
  };
  if (p.platforms.length === 1) {
    const difference = await differs();
    r.io.stdout.write(
      difference === undefined
        ? `not reproduced: the files are the same, but the image is ${image.digest}, not ${original.digest}\n`
        : `not reproduced: ${original.digest} differs from the rebuild ${image.digest} first at ${difference}\n`,
    );
    return EXIT.input;
  }
  // Several platforms: each platform whose image is not the same, with its first file that differs.
  const { findPlatform, platformDir } = await import("../image/platform.ts");
  const lines = [`not reproduced: ${original.digest} (the rebuild's index is ${image.digest})`];
  for (const name of p.platforms) {
    const dir = platformDir(findPlatform(name)!);
    const mine = p.subjects.find((s) => s.name.startsWith(`${dir}/`) && s.name !== `${dir}/rootfs.tar`);
    const theirs = mine && digestOf(rebuilt.subjects, mine.name);
    if (mine === undefined || theirs === mine.digest) continue;
    const difference = await differs({ dir, manifest: mine.digest });
    lines.push(
      difference === undefined
        ? `  ${name}: the files are the same, but the image is ${theirs}, not ${mine.digest}`
        : `  ${name}: ${mine.digest} differs from the rebuild ${theirs} first at ${difference}`,
    );
  }
  r.io.stdout.write(`${lines.join("\n")}\n`);
  return EXIT.input;
}
