// The build, as a script of named stages:
//   compile → keys → (up to date? done) → run or replay steps → image config →
//   verify → layer tarballs → outputs in staging → publish.
// Each stage is its own module; this one only orders them and says, when one
// fails, what it was doing.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SourceFile, Span } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import { damagedBlob, openStore, type Store } from "../cache/store.ts";
import { Tree, TreeError } from "../image/tree.ts";
import { blobIdentityOf, identityOf, racy, treeIdentities } from "../core/host-inputs.ts";
import { statSync } from "node:fs";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { missingSecret as missingSecretError } from "../instructions/context.ts";
import { specFor } from "../instructions/index.ts";
import { forPlatform } from "../instructions/platform-select.ts";
import { DEFAULT_PLATFORM } from "../image/platform.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { compile, compileWithDefaults } from "./compile.ts";
import { readRecipe } from "../check/source.ts";
import { asDiagnostic, BuildFailed } from "./failure.ts";
import { hashText } from "./keys.ts";
import { nameUses, recipeNameProblem } from "./name-check.ts";
import { outDirRefusal } from "../core/out-dir.ts";
import { DamagedBlob } from "../cache/assembled.ts";
import {
  DEFAULT_FORMATS,
  FORMATS,
  assembledBlobs,
  outDirFingerprint,
  outputFiles,
  outputsFingerprint,
  takesGzippedLayers,
  takesLayers,
  upToDateOutputs,
  type AssembledRecord,
  type Format,
} from "./outputs.ts";
import { stage } from "./stage.ts";
import { clockMs } from "../core/clock.ts";
import { createStepContext } from "./step-context.ts";
import {
  planSteps,
  readStepRecords,
  runSteps,
  type Plan,
  type StepCacheRecord,
  type StepsResult,
} from "./steps.ts";
import type { BuildContext } from "../instructions/context.ts";
import type { SecretStamps } from "./secret-stamps.ts";
import type { sbomInputs as sbomInputsOf } from "./sbom.ts";
import type { ProvenanceInput } from "../emit/provenance.ts";
import type { Tarballs } from "./layers.ts";
import type { ResolvedPackages } from "./packages.ts";
import { mirrorNameWarnings } from "./mirror-names.ts";
import type {
  BuildEvent,
  BuildOptions,
  BuildResult,
  OutputsRestore,
  StageTime,
  StepRecord,
} from "./types.ts";

export { BuildFailed, DEFAULT_FORMATS, FORMATS, outputFiles };
export type { BuildEvent, BuildOptions, BuildResult, Format, StageTime, StepRecord };

/**
 * The tarballs of one tree and epoch, and (for reproducible builds) enough to skip replaying it.
 * Keyed by the last step's key and the epoch, so it holds nothing else: the config without the
 * recipe's name, which a copy of the recipe under another name changes and the tree does not.
 */
interface OutputsRecord extends Tarballs {
  config?: Omit<ImageConfig, "name">;
  used?: string[];
  /**
   * What the checks of the finished image warned about (NIFTY224, NIFTY232 …), for the recipe text
   * they were made from (its hash): a build that reuses the record says them again, and --strict
   * refuses them. Another text under the same key (a line moved) checks the image again.
   */
  verified?: { recipe: string; warnings: Array<Omit<Diagnostic, "source" | "severity">> };
}

/** The finished image's warnings a record holds for this recipe's text, as this build says them; undefined: check again. */
function recordedWarnings(
  p: Pick<Planned, "source" | "sourceKey">,
  record: OutputsRecord,
): Diagnostic[] | undefined {
  const verified = record.verified;
  if (verified === undefined || verified.recipe !== p.sourceKey) return undefined;
  return verified.warnings.map((w) => ({ ...w, severity: "warning" as const, source: p.source }));
}

/** Say a record's warnings again: a build that reuses outputs warns as the one that made them did (and --strict refuses). */
function sayRecordedWarnings(
  p: Pick<Planned, "options" | "warnings">,
  warnings: readonly Diagnostic[],
): void {
  p.warnings.push(...warnings);
  refuseWarnings(p.options, p.warnings);
}

/** Build under a lease on the store, so `cache gc` removes nothing the build may reuse while it runs. */
export async function build(options: BuildOptions): Promise<BuildResult> {
  const { takeLease } = await import("../cache/lease.ts");
  // Opened once, for the lease and the build.
  const store = await openStore(options.cacheDir);
  const lease = await takeLease(store);
  try {
    return await buildLeased(options, store);
  } finally {
    await lease.release();
  }
}

/**
 * The lock section a build with these options uses, resolved as the build would but not written,
 * before any step runs: a multi-platform build compares its platforms' sections first and writes
 * them at once (src/pipeline/platforms.ts).
 */
export async function resolveBuildLock(options: BuildOptions): Promise<ResolvedPackages | undefined> {
  const { takeLease } = await import("../cache/lease.ts");
  const store = await openStore(options.cacheDir);
  const lease = await takeLease(store);
  try {
    return await resolveRecipePackages(await compileRecipe(startRun(options, store)), { deferWrite: true });
  } finally {
    await lease.release();
  }
}

/** What every stage of one build shares: its options and store, and the time each stage took. */
interface BuildRun {
  options: BuildOptions;
  store: Store;
  emit: (event: BuildEvent) => void;
  /** Wall time of each named stage, for --json and the benches. */
  stages: StageTime[];
  /** Ends the stage running since the last lap, under this name. */
  lap(name: string): void;
  /** The recipe's path as the user wrote it. */
  shown: string;
}

/** The checked recipe, and where its build goes. */
interface Compiled extends BuildRun {
  source: SourceFile;
  recipe: Recipe;
  warnings: Diagnostic[];
  outDir: string;
  formats: Set<Format>;
  useTag: string;
  /** Turns a step's failure into the build's, pointing at the line. */
  fail: (error: unknown, span: Span) => never;
}

/** The steps with their keys, the tree they will fill, and what the build has said of them. */
interface Planned extends Compiled {
  packages: ResolvedPackages | undefined;
  tree: Tree;
  context: BuildContext;
  plan: Plan;
  notes: string[];
  stepNotes: string[];
  secretStamps: SecretStamps | undefined;
  /** The key of the tarballs of this tree and epoch. */
  outputsKey: string;
  /** The recipe's text, hashed: warnings kept with the outputs are said again only for the same text. */
  sourceKey: string;
  /** What build.json says of each step beside the files: a moved line changes it, not the files. */
  described: ReadonlyArray<readonly [number, string, string]>;
  steps: StepRecord[];
  /** Each step's notes, by index, as the steps gave them or their records hold them. */
  stepNotesSaid: string[][];
  sbomInputs: ReturnType<typeof sbomInputsOf>;
  /** What provenance.json says beside its subjects, when it is among the formats. */
  provenance: ProvenanceInput | undefined;
  inputsKey: string;
}

/** The tree built, and the image config made from it. */
interface Built extends Planned {
  ran: StepsResult;
  config: ImageConfig;
  reproducible: boolean;
}

type StepRecords = Array<StepCacheRecord | undefined>;

async function buildLeased(options: BuildOptions, store: Store): Promise<BuildResult> {
  const compiled = await compileRecipe(startRun(options, store));
  const planned = await planBuild(compiled, await resolveRecipePackages(compiled));
  const kept = await reuseKeptOutputs(planned);
  if (kept.result !== undefined) return kept.result;
  const built = await buildTree(planned, kept.records);
  return writeBuildOutputs(built, await layerTarballs(built));
}

function startRun(options: BuildOptions, store: Store): BuildRun {
  const stages: StageTime[] = [];
  let mark = clockMs();
  const lap = (name: string): void => {
    const now = clockMs();
    stages.push({ name, ms: Math.round((now - mark) * 10) / 10 });
    mark = now;
  };
  const emit = options.onEvent ?? (() => {});
  return { options, store, emit, stages, lap, shown: options.shownPath ?? options.recipePath };
}

async function compileRecipe(run: BuildRun): Promise<Compiled> {
  const { options, store, shown } = run;
  if (options.recipeText !== undefined) options.hostInputs?.distrust("the recipe came from standard input");
  const source =
    options.recipeText !== undefined
      ? { path: shown, text: options.recipeText }
      : await readRecipe(options.recipePath, shown, options.hostInputs);
  const compiled = await compile(store, source, {
    args: options.args ?? new Map(),
    strict: options.strict ?? false,
    allowSystemBinds: options.allowSystemBinds === true,
    allowWritableSetuid: options.allowWritableSetuid === true,
    nameUses: nameUses(new Set(options.formats ?? DEFAULT_FORMATS)),
    recipePath: options.recipePath,
  });
  // A --mirror that names no archive of the recipe is said with the recipe's own warnings.
  const warnings = [
    ...compiled.warnings,
    ...mirrorNameWarnings(compiled.recipe, options.mirrorNames, source),
  ];
  // The recipe as this platform's build sees it: its own FETCH lines, a platform the recipe supports.
  const { recipe, errors } = forPlatform(compiled.recipe, options.platform ?? DEFAULT_PLATFORM);
  if (errors.length > 0) throw new BuildFailed([...warnings, ...errors.map((e) => ({ ...e, source }))]);
  requireSecrets(recipe, options.secrets ?? new Map(), source);
  run.lap("compile");
  const outDir = options.outDir(recipe.name);
  refuseOutDir(outDir, options);
  const formats = new Set(options.formats ?? DEFAULT_FORMATS);
  // The Dockerfile is built beside rootfs.tar (ADD rootfs.tar /): without it the two files are no use.
  if (formats.has("docker") && !formats.has("rootfs")) {
    formats.add("rootfs");
    run.emit({ type: "note", message: "the docker format's Dockerfile adds rootfs.tar: it is written too" });
  }
  const badName = recipeNameProblem(recipe.name, formats, source);
  if (badName !== undefined) throw new BuildFailed([...warnings, badName]);
  const fail = (error: unknown, span: Span): never => {
    throw asBuildFailure(error, span, source, warnings);
  };
  return { ...run, source, recipe, warnings, outDir, formats, useTag: `build:${options.recipePath}`, fail };
}

/** An output directory the build may not replace whole (NIFTY217), refused before any step runs. */
export function refuseOutDir(
  outDir: string,
  options: Pick<BuildOptions, "recipePath" | "recipeText" | "cacheDir">,
): void {
  const keep = [
    ...(options.recipeText === undefined ? [{ path: options.recipePath, what: "the recipe" }] : []),
    { path: options.cacheDir, what: "the cache" },
  ];
  const why = outDirRefusal(outDir, keep);
  if (why !== undefined)
    throw new NiftyError(
      "NIFTY217",
      `the output directory ${outDir} cannot be replaced: ${why}`,
      "give --out a new or empty directory (the default is out/<recipe name>), or empty this one yourself if nothing in it is needed",
    );
}

async function resolveRecipePackages(
  c: Compiled,
  write: { deferWrite?: true } = {},
): Promise<ResolvedPackages | undefined> {
  const { options } = c;
  const packages = await stage("resolving the recipe's packages", async () => {
    const { lockSuffix, resolvePackages } = await import("./packages.ts");
    // Suites an --arg chose have a lock of their own.
    const defaults = () => compileWithDefaults(c.store, c.source, options.recipePath);
    const suffix = await lockSuffix(c.recipe, options.args, defaults);
    return resolvePackages(c.recipe, c.store, {
      lockSuffix: suffix,
      recipePath: options.recipePath,
      source: c.source,
      locked: options.locked ?? false,
      offline: options.offline ?? false,
      now: options.now,
      mirrors: options.mirrors,
      readDebs: true,
      emit: c.emit,
      ...(options.hostInputs ? { hostInputs: options.hostInputs } : {}),
      ...(options.fetchTimeoutMs ? { fetchTimeoutMs: options.fetchTimeoutMs } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.platform ? { platform: options.platform } : {}),
      ...write,
    });
  });
  c.lap("packages");
  return packages;
}

async function planBuild(c: Compiled, packages: ResolvedPackages | undefined): Promise<Planned> {
  const { options, store, recipe, source } = c;
  const notes: string[] = [];
  const stepNotes: string[] = [];
  const tree = new Tree();
  const secretStamps = options.secretStamps?.size
    ? await (await import("./secret-stamps.ts")).readSecretStamps(c.outDir, options.secretStamps)
    : undefined;
  const context = createStepContext({
    tree,
    store,
    recipe,
    source,
    options,
    emit: c.emit,
    warnings: c.warnings,
    notes,
    packages,
    stepNotes,
    ...(secretStamps ? { secretStamps } : {}),
  });
  const plan = await planSteps(recipe, context, c.fail);
  const setuid = options.allowWritableSetuid === true ? ["allow-writable-setuid"] : [];
  // outputs-v2: a record may hold no layers (tarballsFor).
  const outputsKey = hashText("outputs-v2", plan.finalKey, String(options.epoch), ...setuid);
  const described = recipe.instructions.map(
    (ins, i) => [ins.span.start.line, firstLine(source.text, ins.span), plan.keys[i]!] as const,
  );
  c.lap("keys");
  const { sbomInputs } = await import("./sbom.ts");
  const inputs = sbomInputs(recipe, packages);
  const provenance = c.formats.has("provenance")
    ? await (await import("./provenance.ts")).provenanceInput({
        recipe,
        recipeText: source.text,
        recipePath: options.recipePath,
        shownPath: c.shown,
        packages,
        args: options.args ?? new Map(),
        epoch: options.epoch,
        inputs,
        platform: (options.platform ?? DEFAULT_PLATFORM).name,
      })
    : undefined;
  // Everything the SBOM and the provenance say beside the tree joins the outputs' key.
  const inputsKey = JSON.stringify(inputs) + (provenance ? JSON.stringify(provenance) : "");
  return {
    ...c,
    packages,
    tree,
    context,
    plan,
    notes,
    stepNotes,
    secretStamps,
    outputsKey,
    sourceKey: hashText(source.text),
    described,
    steps: [],
    stepNotesSaid: [],
    sbomInputs: inputs,
    provenance,
    inputsKey,
  };
}

function recordStep(p: Planned, index: number, reused: boolean, ms: number, notes?: readonly string[]): void {
  if (notes !== undefined) p.stepNotesSaid[index] = [...notes];
  const instruction = p.recipe.instructions[index]!;
  const text = firstLine(p.source.text, instruction.span);
  p.steps.push({
    index,
    line: instruction.span.start.line,
    instruction: text,
    key: p.plan.keys[index]!,
    reused,
    ms,
  });
  p.emit({ type: "step", index, total: p.recipe.instructions.length, text, reused, ms });
}

/** The build's answer. */
async function finish(
  p: Planned,
  image: { digest: string; config: ImageConfig; reproducible: boolean; upToDate: boolean },
  fromSteps: Iterable<string>,
  recall?: BuildResult["recall"],
): Promise<BuildResult> {
  // Beside out/, which exists by now: what the next build may recall of the secrets' files.
  await p.secretStamps?.save();
  const restore = recall?.restore;
  if (restore !== undefined && p.secretStamps !== undefined) {
    // A restore leaves the secret stamps as they are, as a warm build does when they are unchanged.
    const stats = statSync(p.secretStamps.file, { bigint: true, throwIfNoEntry: false });
    if (stats === undefined || racy(stats.ctimeNs)) delete recall!.restore;
    else restore.beside.push({ path: p.secretStamps.file, identity: identityOf(stats) });
  }
  // What another machine needs to run or replay these steps: the downloads and every file's bytes.
  const { fetches, packages } = p.sbomInputs;
  const used = [...fromSteps, ...fetches.map((f) => f.digest), ...packages.map((pkg) => pkg.sha256)];
  return {
    ...image,
    outDir: p.outDir,
    rootfs: join(p.outDir, "rootfs.tar"),
    outputs: outputFiles(p.outDir, p.recipe.name, p.formats),
    steps: p.steps,
    stages: p.stages,
    warnings: p.warnings,
    used: [...new Set(used)].sort(),
    ...(recall ? { recall } : {}),
  };
}

/** The outputs record of this plan, when every blob it names is in the store and it holds this recipe's warnings. */
async function keptOutputs(
  p: Planned,
): Promise<{ recorded: OutputsRecord; config: ImageConfig; warned: Diagnostic[] } | undefined> {
  if (!p.plan.cacheable.every(Boolean)) return undefined;
  const recorded = await p.store.readRecord<OutputsRecord>("outputs", p.outputsKey);
  if (recorded?.config === undefined) return undefined;
  const warned = recordedWarnings(p, recorded);
  if (warned === undefined || !(await tarballsFor(p, recorded))) return undefined;
  return { recorded, config: { name: p.recipe.name, ...recorded.config }, warned };
}

/**
 * Nothing changed (out/ already holds the outputs), or out/'s files are kept in the store: the answer
 * without building a tree. Otherwise the step records read on the way, for the steps to replay.
 */
async function reuseKeptOutputs(p: Planned): Promise<{ result?: BuildResult; records?: StepRecords }> {
  const { store, recipe, outDir, formats, options } = p;
  const kept = await keptOutputs(p);
  if (kept === undefined) return {};
  const { recorded, config, warned } = kept;
  const known = await withLayerGzip(p, recorded);
  if (known !== recorded) await store.writeRecord("outputs", p.outputsKey, known);
  const digest = known.rootfs.digest;
  const fromSteps = known.used ?? [];
  const assembledKey = outputsFingerprint(
    p.plan.finalKey,
    digest,
    config,
    formats,
    layerFiles(store, known, formats),
    p.inputsKey,
  );
  const fingerprint = outDirFingerprint(assembledKey, p.shown, p.described);
  const seen = options.hostInputs ? treeIdentities(outDir) : undefined;
  if (await upToDateOutputs(outDir, fingerprint, known.rootfs.size, formats)) {
    sayRecordedWarnings(p, warned);
    for (const index of recipe.instructions.keys()) recordStep(p, index, true, 0);
    noteStopSignal(config, p.emit);
    const useRecord = await store.recordUse(
      [...fromSteps, ...tarballBlobs(known).map((b) => b.digest)],
      p.useTag,
    );
    p.lap("up to date");
    const image = { digest, config, reproducible: true, upToDate: true };
    return { result: await finish(p, image, fromSteps, seen && { useRecord, outputs: seen }) };
  }
  // Every step recorded and out/'s files kept in the store under their key: out/ is
  // restored without replaying a step into a tree, since nothing the tree gives is needed.
  const assembled = await store.readRecord<AssembledRecord>("assembled", assembledKey);
  if (assembled === undefined || !(await store.hasAll(assembledBlobs(assembled)))) return {};
  const layers = layerFiles(store, known, formats);
  const used = new Set([...fromSteps, ...tarballBlobs(known).map((b) => b.digest)]);
  let records: StepRecords | undefined;
  // While out/'s files are copied: what each step said when it ran, said again.
  const replay = async (): Promise<boolean> => {
    // A turn of the event loop first, so that the copies are under way before the records are read.
    await new Promise((resolve) => setImmediate(resolve));
    records = await readStepRecords(store, p.plan);
    if (!records.every((r) => r !== undefined)) return false;
    for (const [index, cached] of records.entries()) {
      for (const w of cached!.warnings) p.warnings.push({ ...w, source: p.source });
      for (const message of cached!.notes) p.emit({ type: "note", message });
      recordStep(p, index, true, 0, cached!.notes);
    }
    sayRecordedWarnings(p, warned);
    p.lap("steps");
    noteStopSignal(config, p.emit);
    return true;
  };
  const image = { digest, config, reproducible: true, upToDate: false };
  const described = buildJson(p, { ...image, layers, fingerprint });
  const published = await stage("writing the outputs", () =>
    assembleAndPublish({
      store,
      recipe,
      config,
      layers,
      digest,
      formats,
      outDir,
      assembledKey,
      assembled,
      used,
      useTag: p.useTag,
      alongside: replay,
      sbom: () => missingOutput(store, assembled),
      provenance: p.provenance,
      buildJson: described,
    }),
  );
  if (published === undefined) return records ? { records } : {};
  p.lap("outputs");
  const recall = options.hostInputs ? recallOf(p, published, described) : undefined;
  return { result: await finish(p, image, fromSteps, recall) };
}

async function buildTree(p: Planned, records: StepRecords | undefined): Promise<Built> {
  const ran = await runSteps({
    recipe: p.recipe,
    source: p.source,
    store: p.store,
    tree: p.tree,
    plan: p.plan,
    context: p.context,
    fail: p.fail,
    warnings: p.warnings,
    stepNotes: p.stepNotes,
    emit: p.emit,
    record: (index, reused, ms, notes) => recordStep(p, index, reused, ms, notes),
    ...(records ? { records } : {}),
  });
  refuseWarnings(p.options, p.warnings);
  p.lap("steps");
  const reproducible = p.notes.length === 0;
  const { imageConfig } = await import("./image-config.ts");
  const config = imageConfig(p.recipe, p.tree, p.options.epoch, p.context.platform);
  noteStopSignal(config, p.emit);
  p.lap("image config");
  return { ...p, ran, config, reproducible };
}

/**
 * Layer tarballs: written once per tree and epoch, while the image is checked (in worker threads
 * when they run, see writeTarballs), then taken from the store. A failed check leaves them unrecorded.
 */
async function layerTarballs(b: Built): Promise<OutputsRecord> {
  const { store, options } = b;
  const recorded = await store.readRecord<OutputsRecord>("outputs", b.outputsKey);
  const warned = recorded && recordedWarnings(b, recorded);
  let tarballs: OutputsRecord;
  let verified: OutputsRecord["verified"];
  if (recorded === undefined || warned === undefined || !(await tarballsFor(b, recorded))) {
    const { tarballsKey, writeTarballs } = await import("./layers.ts");
    // The same tree may have been written before, under other metadata (an edited LABEL or ENV).
    const treeKey = tarballsKey(b.tree, b.ran.basePaths, options.epoch);
    const same = await store.readRecord<Tarballs>("tarballs", treeKey);
    const kept = same !== undefined && (await tarballsFor(b, same)) ? same : undefined;
    const wanted = { layers: takesLayers(b.formats), gzip: takesGzippedLayers(b.formats) };
    const writing = kept
      ? undefined
      : stage("writing the layer tarballs", () =>
          writeTarballs(store, b.tree, b.ran.basePaths, options.epoch, wanted),
        );
    writing?.catch(() => {}); // awaited below, after the checks
    try {
      const warnings = await stage("checking the finished image", () => verifyFinishedImage(b));
      verified = {
        recipe: b.sourceKey,
        warnings: warnings.map(({ source: _, severity: __, ...w }) => w),
      };
    } catch (error) {
      await writing?.catch(() => {});
      throw error;
    }
    b.lap("verify");
    if (kept) {
      tarballs = await withLayerGzip(b, kept);
    } else {
      tarballs = await writing!;
      b.lap("tarballs");
    }
    if (tarballs !== same)
      await store.writeRecord("tarballs", treeKey, { rootfs: tarballs.rootfs, layers: tarballs.layers });
  } else {
    sayRecordedWarnings(b, warned);
    tarballs = await withLayerGzip(b, recorded);
  }
  if (b.reproducible && (tarballs.config === undefined || tarballs !== recorded)) {
    const { name: _, ...unnamed } = b.config;
    tarballs = {
      ...tarballs,
      config: unnamed,
      used: [...b.ran.used].sort(),
      ...(verified ? { verified } : {}),
    };
    await store.writeRecord("outputs", b.outputsKey, tarballs);
  }
  return tarballs;
}

/** The tarballs with their layers' gzip when the formats take it: made now if it was left out before. */
async function withLayerGzip(
  b: Pick<Compiled, "store" | "formats" | "lap">,
  tarballs: OutputsRecord,
): Promise<OutputsRecord> {
  if (!takesGzippedLayers(b.formats) || tarballs.layers.every((l) => l.gzip !== undefined)) return tarballs;
  const { gzipLayers } = await import("./layers.ts");
  const gzipped = await stage("compressing the layers", () => gzipLayers(b.store, tarballs));
  b.lap("tarballs");
  return { ...tarballs, ...gzipped };
}

/** The checks of the finished image: its errors fail the build; its warnings are returned (and refused under --strict). */
async function verifyFinishedImage(b: Built): Promise<Diagnostic[]> {
  const { Reporter } = await import("../diagnostics/reporter.ts");
  const { verifyImage } = await import("./verify-image.ts");
  const report = new Reporter(b.source);
  const allowWritableSetuid = b.options.allowWritableSetuid === true;
  const checks = { allowWritableSetuid, platform: b.context.platform, modeSpans: b.ran.modeSpans };
  await verifyImage(b.recipe, b.tree, b.ran.origins, (d) => b.store.blobPath(d), report, checks);
  if (report.errorCount > 0) throw new BuildFailed([...b.warnings, ...report.all()]);
  const warnings = report.all();
  b.warnings.push(...warnings);
  refuseWarnings(b.options, b.warnings);
  return warnings;
}

async function writeBuildOutputs(b: Built, tarballs: OutputsRecord): Promise<BuildResult> {
  const { store, options, formats, outDir, config, reproducible } = b;
  const used = new Set([...b.ran.used, ...tarballBlobs(tarballs).map((blob) => blob.digest)]);
  const layers = layerFiles(store, tarballs, formats);
  const digest = tarballs.rootfs.digest;
  const assembledKey = outputsFingerprint(b.plan.finalKey, digest, config, formats, layers, b.inputsKey);
  const fingerprint = outDirFingerprint(assembledKey, b.shown, b.described);
  const seen = reproducible && options.hostInputs ? treeIdentities(outDir) : undefined;
  if (reproducible && (await upToDateOutputs(outDir, fingerprint, tarballs.rootfs.size, formats))) {
    const useRecord = await store.recordUse([...used], b.useTag);
    b.lap("up to date");
    const image = { digest, config, reproducible: true, upToDate: true };
    return finish(b, image, b.ran.used, seen && { useRecord, outputs: seen });
  }
  // Only when the outputs are written afresh: outputs kept in the store already hold the SBOM.
  const sbom =
    formats.has("sbom") || formats.has("oci") || formats.has("cyclonedx")
      ? () => stage("writing the SBOM", () => renderSbom(b, digest, formats))
      : async () => ({});
  const image = { digest, config, reproducible, upToDate: false };
  const described = buildJson(b, { ...image, layers, fingerprint: reproducible ? fingerprint : undefined });
  const published = await stage("writing the outputs", () =>
    assembleAndPublish({
      store,
      recipe: b.recipe,
      config,
      layers,
      digest,
      formats,
      outDir,
      sbom,
      used,
      useTag: b.useTag,
      provenance: b.provenance,
      assembledKey: reproducible ? assembledKey : undefined,
      buildJson: described,
    }),
  );
  b.lap("outputs");
  const recall =
    reproducible && published !== undefined && options.hostInputs
      ? recallOf(b, published, described)
      : undefined;
  return finish(b, image, b.ran.used, recall);
}

/**
 * As published: a later run that finds out/ so, and the inputs unchanged, may recall this build;
 * one that finds out/ gone or changed may restore it as a warm build would write it.
 */
function recallOf(
  p: Planned,
  published: Published,
  described: Record<string, unknown>,
): BuildResult["recall"] {
  const outputs = treeIdentities(p.outDir);
  if (outputs === undefined) return undefined;
  const restore = published.kept && outputsRestore(p, published.kept, described);
  return { useRecord: published.useRecord, outputs, ...(restore ? { restore } : {}) };
}

/** What restores out/ without the compiler: every step's notes known and each blob settled, or undefined. */
function outputsRestore(
  p: Planned,
  kept: AssembledRecord,
  described: Record<string, unknown>,
): OutputsRestore | undefined {
  const notes = p.stepNotesSaid;
  if (notes.length !== p.recipe.instructions.length || notes.includes(undefined as never)) return undefined;
  const blobs: OutputsRestore["blobs"] = [];
  for (const { digest } of assembledBlobs(kept)) {
    const path = p.store.blobPath(digest);
    const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
    // Written within the file system clock's tick: a change now might keep its identity (as for host inputs).
    if (stats === undefined || racy(stats.mtimeNs)) return undefined;
    blobs.push({ digest, path, identity: blobIdentityOf(stats) });
  }
  // As a warm build writes build.json: every step taken from its record.
  const steps = p.steps.map((s) => ({ ...s, reused: true, ms: 0 }));
  const buildJsonText = JSON.stringify({ ...described, steps }, null, 2) + "\n";
  return {
    entries: kept.entries,
    blobs,
    beside: [],
    buildJson: buildJsonText,
    stepNotes: notes,
  };
}

/** The SBOMs the formats ask for, both from one collection of the same facts. */
async function renderSbom(b: Built, rootfsDigest: string, formats: ReadonlySet<Format>): Promise<Sboms> {
  const [{ renderSpdx }, { collectSbom }] = await Promise.all([
    import("../emit/sbom.ts"),
    import("./sbom.ts"),
  ]);
  const { recipe, tree, packages, context, store } = b;
  const facts = await collectSbom({
    recipe,
    tree,
    origins: b.ran.origins,
    packages,
    context,
    store,
    epoch: b.options.epoch,
    rootfsDigest,
  });
  const sboms: Sboms = {};
  if (formats.has("sbom") || formats.has("oci")) sboms.sbom = renderSpdx(facts);
  if (formats.has("cyclonedx")) {
    sboms.cyclonedx = (await import("../emit/cyclonedx.ts")).renderCycloneDx(facts);
  }
  return sboms;
}

type Sboms = { sbom?: string; cyclonedx?: string };

/**
 * Whether a record's tarballs serve these formats: every blob it names in the store, and the layer
 * tarballs among them when a format reads them (a build whose formats read none wrote none).
 */
async function tarballsFor(b: Pick<Compiled, "store" | "formats">, tarballs: Tarballs): Promise<boolean> {
  if (takesLayers(b.formats) && tarballs.layers.length === 0) return false;
  return b.store.hasAll(tarballBlobs(tarballs));
}

/** Every blob of a tree's tarballs: rootfs.tar, the layers (when made) and their gzip (when made). */
function tarballBlobs(tarballs: Tarballs): Array<{ digest: string }> {
  return [tarballs.rootfs, ...tarballs.layers.flatMap((l) => (l.gzip ? [l, l.gzip] : [l]))];
}

/**
 * The layer tarballs as the writers take them: files in the store. None for formats that read no
 * layer, and the gzip only for formats that take it, so what a build's outputs are keyed by (and
 * build.json) never depends on whether an earlier build made them.
 */
function layerFiles(store: Store, tarballs: Tarballs, formats: ReadonlySet<Format>): LayerFile[] {
  if (!takesLayers(formats)) return [];
  return tarballs.layers.map((l) => ({
    path: store.blobPath(l.digest),
    digest: l.digest,
    size: l.size,
    comment: l.comment,
    ...(l.gzip && takesGzippedLayers(formats)
      ? { gzip: { ...l.gzip, path: store.blobPath(l.gzip.digest) } }
      : {}),
  }));
}

/** out/build.json: what was built, from what, and which files hold it. */
function buildJson(
  p: Planned,
  image: {
    digest: string;
    config: ImageConfig;
    reproducible: boolean;
    layers: LayerFile[];
    fingerprint: string | undefined;
  },
): Record<string, unknown> {
  const { recipe, packages } = p;
  return {
    niftyc: NIFTYC_VERSION,
    recipe: p.shown,
    name: recipe.name,
    digest: image.digest,
    epoch: p.options.epoch,
    reproducible: image.reproducible,
    notes: p.notes,
    fingerprint: image.fingerprint,
    inputs: recipe.instructions.flatMap((i) => specFor(i).inputs?.(i) ?? []),
    ...(packages ? { packages: packages.lock.packages.map(lockedPackageSummary) } : {}),
    layers: image.layers.map((l) => ({ digest: l.digest, size: l.size, comment: l.comment })),
    config: image.config,
    steps: p.steps,
    outputs: Object.fromEntries(
      Object.entries(outputFiles("", recipe.name, p.formats)).map(([k, v]) => [k, v.replace(/^\//, "")]),
    ),
  };
}

function lockedPackageSummary(p: ResolvedPackages["lock"]["packages"][number]): Record<string, string> {
  const suite = `${p.from.archive} ${p.from.suite} ${p.from.component}`;
  return { name: p.name, version: p.version, architecture: p.architecture, suite, sha256: p.sha256 };
}

interface AssembleInput {
  store: Store;
  recipe: Recipe;
  config: ImageConfig;
  layers: LayerFile[];
  digest: string;
  formats: ReadonlySet<Format>;
  outDir: string;
  /** Set for reproducible builds: the assembled files are then kept in the store under it. */
  assembledKey: string | undefined;
  /** The assembled record of that key, when the caller has read it already. */
  assembled?: AssembledRecord;
  used: Set<string>;
  useTag: string;
  buildJson: Record<string, unknown>;
  /** The SBOMs (SPDX, CycloneDX), made only when the outputs are written rather than restored. */
  sbom: () => Promise<Sboms>;
  provenance: ProvenanceInput | undefined;
  /**
   * Work done while the files are restored; false: nothing is to be published after all. Nothing
   * is either when `assembled` was given and could not be restored (a damaged blob set aside).
   */
  alongside?: () => Promise<boolean>;
}

/** What publishing gave: the use record it refreshed, and the assembled record out/ holds, if any. */
interface Published {
  useRecord: string;
  kept: AssembledRecord | undefined;
}

/**
 * Outputs: assembled in staging (or restored from the store), published whole. Undefined when
 * `alongside` gave up.
 */
async function assembleAndPublish(input: AssembleInput): Promise<Published | undefined> {
  const { store, assembledKey } = input;
  const [{ stagingDir, discard, publish }, outputs] = await Promise.all([
    import("../core/atomic.ts"),
    import("./outputs.ts"),
  ]);
  // 0755, as any published directory: mkdtemp's 0700 would keep other users (a machine manager, a CI job) out.
  const staging = await stagingDir(input.outDir);
  try {
    const assembled =
      input.assembled ??
      (assembledKey === undefined
        ? undefined
        : await store.readRecord<AssembledRecord>("assembled", assembledKey));
    // Both settled before anything else: staging is never removed under copies still running.
    const [restored, going] = await Promise.allSettled([
      assembled !== undefined && outputs.restoreAssembled(staging, store, assembled),
      input.alongside?.() ?? true,
    ]);
    if (going.status === "rejected") throw going.reason;
    if (restored.status === "rejected") throw restored.reason;
    // Given a record to restore (no tree to write from) that could not be: the build writes them.
    if (!going.value || (input.assembled !== undefined && restored.value === false)) {
      await discard(staging);
      return undefined;
    }
    let kept = restored.value ? assembled : undefined;
    if (kept === undefined) {
      const sboms = await input.sbom();
      const image = {
        name: input.recipe.name,
        config: input.config,
        layers: input.layers,
        digest: input.digest,
      };
      const emitted = {
        dir: staging,
        ...image,
        ...sboms,
        ...(input.provenance ? { provenance: input.provenance } : {}),
      };
      const copies = await outputs.writeOutputs(store, emitted, input.formats, assembledKey !== undefined);
      if (assembledKey !== undefined) {
        kept = await outputs.recordAssembled(staging, store, copies);
        if (kept !== undefined) await store.writeRecord("assembled", assembledKey, kept);
      }
    }
    for (const blob of kept ? outputs.assembledBlobs(kept) : []) input.used.add(blob.digest);
    const useRecord = await store.recordUse([...input.used], input.useTag);
    await writeFile(join(staging, "build.json"), JSON.stringify(input.buildJson, null, 2) + "\n");
    await publish(staging, input.outDir);
    return { useRecord, kept };
  } catch (error) {
    await discard(staging);
    // A copy into out/ hashed to other bytes than its blob's name: out/ is left as it was.
    if (error instanceof DamagedBlob) throw await store.setAsideDamaged(error.digest);
    throw error;
  }
}

/** Restoring failed although every blob was there a moment before: the store was changed under the build's lease. */
async function missingOutput(store: Store, assembled: AssembledRecord): Promise<never> {
  const blobs = assembledBlobs(assembled);
  const present = await Promise.all(blobs.map((b) => store.has(b.digest)));
  throw damagedBlob(
    blobs[present.indexOf(false)]?.digest ?? "an output",
    "it went missing while the build restored it",
  );
}

/** --strict: a warning raised while building fails the build, as the checker's do. */
function refuseWarnings(options: BuildOptions, warnings: readonly Diagnostic[]): void {
  if (options.strict && warnings.length > 0)
    throw new BuildFailed(warnings.map((w) => ({ ...w, severity: "error" as const })));
}

function noteStopSignal(config: ImageConfig, emit: (event: BuildEvent) => void): void {
  const message = stopSignalNote(config);
  if (message !== undefined) emit({ type: "note", message });
}

/** The note an image whose stop signal niftyc chose gets on every build, up to date or not. */
export function stopSignalNote(config: ImageConfig): string | undefined {
  if (config.stopSignal.source !== "init") return undefined;
  const init = config.init.kind === "other" ? "an unknown" : config.init.kind;
  return `stop signal ${config.stopSignal.name} chosen for ${init} init (set STOPSIGNAL to choose another)`;
}

function firstLine(text: string, span: Span): string {
  const line = text
    .slice(span.start.offset, span.end.offset)
    .split("\n")[0]!
    .replace(/\s*\\$/, "");
  return line.length > 72 ? line.slice(0, 71) + "…" : line;
}

/** Every secret the steps read must be given before anything runs. */
function requireSecrets(recipe: Recipe, secrets: ReadonlyMap<string, Buffer>, source: SourceFile): void {
  const missing: Diagnostic[] = [];
  const absent = new Set<string>();
  for (const ins of recipe.instructions) {
    for (const use of specFor(ins).secrets?.(ins) ?? []) {
      const value = secrets.get(use.id);
      if (value === undefined && !use.optional) {
        missing.push(asDiagnostic(missingSecretError(use.id, use.span), use.span, source));
        absent.add(use.id);
      } else if (value !== undefined && value.length < use.minBytes) {
        missing.push({
          severity: "error",
          code: "NIFTY211",
          message: `the secret "${use.id}" has ${value.length} byte${value.length === 1 ? "" : "s"}${use.minBytes > 1 ? `, fewer than the ${use.minBytes} it needs` : ""}`,
          source,
          span: use.span,
          hint: use.hint,
        });
      } else if (value !== undefined && use.maxBytes !== undefined && value.length > use.maxBytes) {
        missing.push({
          severity: "error",
          code: "NIFTY807",
          message: `the secret "${use.id}" has ${value.length.toLocaleString("en-US")} bytes, more than the ${use.maxBytes.toLocaleString("en-US")} it may have`,
          source,
          span: use.span,
          hint: "a password is hashed once per byte of its length; give a shorter one",
        });
      }
    }
  }
  if (missing.length > 0) throw new BuildFailed(missing, missing.length === absent.size ? [...absent] : []);
}

function asBuildFailure(error: unknown, span: Span, source: SourceFile, warnings: Diagnostic[]): BuildFailed {
  if (error instanceof BuildFailed) return error;
  if (error instanceof NiftyError) return new BuildFailed([...warnings, asDiagnostic(error, span, source)]);
  if (error instanceof TreeError)
    return new BuildFailed([
      ...warnings,
      {
        severity: "error",
        code: "NIFTY204",
        message: error.message,
        source,
        span,
        ...(error.hint !== undefined ? { hint: error.hint } : {}),
      },
    ]);
  throw error;
}
