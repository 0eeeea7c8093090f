// The build, as a script of named stages:
//   compile → keys → (up to date? done) → run or replay steps → image config →
//   verify → layer tarballs → outputs in staging → publish.
// Each stage is its own module; this one only orders them and says, when one
// fails, what it was doing.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SourceFile, Span } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import { damagedBlob, openStore, type Store } from "../cache/store.ts";
import { Tree, TreeError } from "../image/tree.ts";
import { treeIdentities } from "../core/host-inputs.ts";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { StepError, missingSecret as missingSecretError } from "../instructions/context.ts";
import { specFor } from "../instructions/index.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { compile, compileWithDefaults } from "./compile.ts";
import { readRecipe } from "../check/source.ts";
import { BuildFailed } from "./failure.ts";
import { hashText } from "./keys.ts";
import { recipeNameProblem } from "./name-check.ts";
import { DEFAULT_FORMATS, FORMATS, assembledBlobs, outputFiles, outputsFingerprint, upToDateOutputs, type AssembledRecord, type Format } from "./outputs.ts";
import { stage } from "./stage.ts";
import { clockMs } from "../core/clock.ts";
import { createStepContext } from "./step-context.ts";
import { planSteps, readStepRecords, runSteps, type StepCacheRecord } from "./steps.ts";
import type { Tarballs } from "./layers.ts";
import type { ResolvedPackages } from "./packages.ts";
import type { BuildEvent, BuildOptions, BuildResult, StageTime, StepRecord } from "./types.ts";

export { BuildFailed, DEFAULT_FORMATS, FORMATS, outputFiles };
export type { BuildEvent, BuildOptions, BuildResult, Format, StageTime, StepRecord };

/** The tarballs of one tree and epoch, and (for reproducible builds) enough to skip replaying it. */
interface OutputsRecord extends Tarballs {
  config?: ImageConfig;
  used?: string[];
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

async function buildLeased(options: BuildOptions, store: Store): Promise<BuildResult> {
  const emit = options.onEvent ?? (() => {});
  // Wall time of each named stage, for --json and the benches.
  const stages: StageTime[] = [];
  let mark = clockMs();
  const lap = (name: string): void => {
    const now = clockMs();
    stages.push({ name, ms: Math.round((now - mark) * 10) / 10 });
    mark = now;
  };
  const shown = options.shownPath ?? options.recipePath;
  if (options.recipeText !== undefined) options.hostInputs?.distrust("the recipe came from standard input");
  const source = options.recipeText !== undefined ? { path: shown, text: options.recipeText } : await readRecipe(options.recipePath, shown, options.hostInputs);
  const { recipe, warnings } = await compile(store, source, { args: options.args ?? new Map(), strict: options.strict ?? false, recipePath: options.recipePath });
  requireSecrets(recipe, options.secrets ?? new Map(), source);
  lap("compile");
  const outDir = options.outDir(recipe.name);
  const formats = new Set(options.formats ?? DEFAULT_FORMATS);
  const badName = recipeNameProblem(recipe.name, formats, source);
  if (badName !== undefined) throw new BuildFailed([...warnings, badName]);
  const useTag = `build:${options.recipePath}`;
  const fail = (error: unknown, span: Span): never => {
    throw asBuildFailure(error, span, source, warnings);
  };

  const packages = await stage("resolving the recipe's packages", async () => {
    const { lockSuffix, resolvePackages } = await import("./packages.ts");
    // Suites an --arg chose have a lock of their own.
    const defaults = () => compileWithDefaults(store, source, options.recipePath);
    const suffix = await lockSuffix(recipe, options.args, defaults);
    return resolvePackages(recipe, store, {
      lockSuffix: suffix,
      recipePath: options.recipePath,
      source,
      locked: options.locked ?? false,
      offline: options.offline ?? false,
      now: options.now,
      mirrors: options.mirrors,
      emit,
      ...(options.hostInputs ? { hostInputs: options.hostInputs } : {}),
      ...(options.fetchTimeoutMs ? { fetchTimeoutMs: options.fetchTimeoutMs } : {}),
    });
  });
  lap("packages");
  const notes: string[] = [];
  const tree = new Tree();
  const stepNotes: string[] = [];
  const secretStamps = options.secretStamps?.size ? await (await import("./secret-stamps.ts")).readSecretStamps(outDir, options.secretStamps) : undefined;
  const context = createStepContext({ tree, store, recipe, source, options, emit, warnings, notes, packages, stepNotes, ...(secretStamps ? { secretStamps } : {}) });
  const plan = await planSteps(recipe, context, fail);
  const outputsKey = hashText(plan.finalKey, String(options.epoch));
  lap("keys");
  const steps: StepRecord[] = [];
  const record = (index: number, reused: boolean, ms: number): void => {
    const instruction = recipe.instructions[index]!;
    const text = firstLine(source.text, instruction.span);
    steps.push({ index, line: instruction.span.start.line, instruction: text, key: plan.keys[index]!, reused, ms });
    emit({ type: "step", index, total: recipe.instructions.length, text, reused, ms });
  };
  const result = async (digest: string, config: ImageConfig, reproducible: boolean, upToDate: boolean, used: Iterable<string>, recall?: BuildResult["recall"]): Promise<BuildResult> => {
    // Beside out/, which exists by now: what the next build may recall of the secrets' files.
    await secretStamps?.save();
    return {
      digest, outDir, rootfs: join(outDir, "rootfs.tar"), outputs: outputFiles(outDir, recipe.name, formats), steps, stages, reproducible, upToDate, warnings, config, used: [...new Set(used)].sort(), ...(recall ? { recall } : {}),
    };
  };

  // Nothing changed: the tarballs are in the store and out/ already holds them.
  const known = plan.cacheable.every(Boolean) ? await store.readRecord<OutputsRecord>("outputs", outputsKey) : undefined;
  const sbom = await import("./sbom.ts");
  const sbomInputs = sbom.sbomInputs(recipe, packages);
  const inputsKey = JSON.stringify(sbomInputs);
  // What another machine needs to run or replay these steps: the downloads and every file's bytes.
  const shared = (fromSteps: Iterable<string>) => [...fromSteps, ...sbomInputs.fetches.map((f) => f.digest), ...sbomInputs.packages.map((p) => p.sha256)];
  let records: Array<StepCacheRecord | undefined> | undefined;
  if (known?.config !== undefined && (await store.hasAll([known.rootfs, ...known.layers, ...known.layers.map((l) => l.gzip)]))) {
    const fingerprint = outputsFingerprint(known.rootfs.digest, known.config, formats, known.layers, inputsKey);
    const seen = options.hostInputs ? treeIdentities(outDir) : undefined;
    if (await upToDateOutputs(outDir, fingerprint, known.rootfs.size)) {
      for (const index of recipe.instructions.keys()) record(index, true, 0);
      noteStopSignal(known.config, emit);
      const useRecord = await store.recordUse([...(known.used ?? []), known.rootfs.digest, ...known.layers.flatMap((l) => [l.digest, l.gzip.digest])], useTag);
      lap("up to date");
      return result(known.rootfs.digest, known.config, true, true, shared(known.used ?? []), seen && { useRecord, outputs: seen });
    }
    // Every step recorded and out/'s files kept in the store under the fingerprint: out/ is
    // restored without replaying a step into a tree, since nothing the tree gives is needed.
    const assembled = await store.readRecord<AssembledRecord>("assembled", fingerprint);
    if (assembled !== undefined && (await store.hasAll(assembledBlobs(assembled)))) {
      const config = known.config;
      const layers = layerFiles(store, known);
      const used = new Set([...(known.used ?? []), known.rootfs.digest, ...layers.flatMap((l) => [l.digest, l.gzip!.digest])]);
      // While out/'s files are copied: what each step said when it ran, said again.
      const replay = async (): Promise<boolean> => {
        // A turn of the event loop first, so that the copies are under way before the records are read.
        await new Promise((resolve) => setImmediate(resolve));
        records = await readStepRecords(store, plan);
        if (!records.every((r) => r !== undefined)) return false;
        for (const [index, cached] of records.entries()) {
          for (const w of cached!.warnings) warnings.push({ ...w, source });
          for (const message of cached!.notes) emit({ type: "note", message });
          record(index, true, 0);
        }
        refuseWarnings(options, warnings);
        lap("steps");
        noteStopSignal(config, emit);
        return true;
      };
      const published = await stage("writing the outputs", () =>
        assembleAndPublish({ store, recipe, config, layers, digest: known.rootfs.digest, formats, outDir, fingerprint, assembled, used, useTag, alongside: replay,
          sbom: () => missingOutput(store, assembled),
          buildJson: buildJson({ shown, recipe, packages, digest: known.rootfs.digest, epoch: options.epoch, reproducible: true, notes, fingerprint, layers, config, steps, formats }),
        }),
      );
      if (published !== undefined) {
        lap("outputs");
        const written = options.hostInputs ? treeIdentities(outDir) : undefined;
        return result(known.rootfs.digest, config, true, false, shared(known.used ?? []), written && { useRecord: published, outputs: written });
      }
    }
  }

  const ran = await runSteps({ recipe, source, store, tree, plan, context, fail, record, warnings, stepNotes, emit, ...(records ? { records } : {}) });
  refuseWarnings(options, warnings);
  lap("steps");
  const reproducible = notes.length === 0;
  const { imageConfig } = await import("./image-config.ts");
  const config = imageConfig(recipe, tree, options.epoch);
  noteStopSignal(config, emit);
  lap("image config");

  // Layer tarballs: written once per tree and epoch, then taken from the store.
  let tarballs = await store.readRecord<OutputsRecord>("outputs", outputsKey);
  if (tarballs === undefined || !(await store.hasAll([tarballs.rootfs, ...tarballs.layers, ...tarballs.layers.map((l) => l.gzip)]))) {
    await stage("checking the finished image", async () => {
      const { Reporter } = await import("../diagnostics/reporter.ts");
      const { verifyImage } = await import("./verify-image.ts");
      const report = new Reporter(source);
      await verifyImage(recipe, tree, ran.origins, (d) => store.blobPath(d), report);
      if (report.errorCount > 0) throw new BuildFailed([...warnings, ...report.diagnostics]);
      for (const d of report.diagnostics) warnings.push(d);
      refuseWarnings(options, warnings);
    });
    lap("verify");
    const { writeTarballs } = await import("./layers.ts");
    tarballs = await stage("writing the layer tarballs", () => writeTarballs(store, tree, ran.basePaths, options.epoch));
    lap("tarballs");
  }
  if (reproducible && tarballs.config === undefined) {
    tarballs = { ...tarballs, config, used: [...ran.used].sort() };
    await store.writeRecord("outputs", outputsKey, tarballs);
  }
  const used = new Set([...ran.used, tarballs.rootfs.digest, ...tarballs.layers.flatMap((l) => [l.digest, l.gzip.digest])]);
  const layers = layerFiles(store, tarballs);
  const digest = tarballs.rootfs.digest;
  const fingerprint = outputsFingerprint(digest, config, formats, layers, inputsKey);
  const seen = reproducible && options.hostInputs ? treeIdentities(outDir) : undefined;
  if (reproducible && (await upToDateOutputs(outDir, fingerprint, tarballs.rootfs.size))) {
    const useRecord = await store.recordUse([...used], useTag);
    lap("up to date");
    return result(digest, config, true, true, shared(ran.used), seen && { useRecord, outputs: seen });
  }

  // Only when the outputs are written afresh: outputs kept in the store already hold the SBOM.
  const spdx = formats.has("sbom") || formats.has("oci")
    ? () => stage("writing the SBOM", async () => (await import("../emit/sbom.ts")).renderSpdx(await sbom.collectSbom({ recipe, tree, origins: ran.origins, packages, context, store, epoch: options.epoch, rootfsDigest: digest })))
    : async () => undefined;
  const useRecord = await stage("writing the outputs", () =>
    assembleAndPublish({ store, recipe, config, layers, digest, formats, outDir, sbom: spdx, fingerprint: reproducible ? fingerprint : undefined, used, useTag,
      buildJson: buildJson({ shown, recipe, packages, digest, epoch: options.epoch, reproducible, notes, fingerprint: reproducible ? fingerprint : undefined, layers, config, steps, formats }),
    }),
  );
  lap("outputs");
  // As published: a later run that finds them so, and the inputs unchanged, may recall this build.
  const written = reproducible && useRecord !== undefined && options.hostInputs ? treeIdentities(outDir) : undefined;
  return result(digest, config, reproducible, false, shared(ran.used), written && useRecord !== undefined ? { useRecord, outputs: written } : undefined);
}

/** The layer tarballs as the writers take them: files in the store. */
function layerFiles(store: Store, tarballs: Tarballs): LayerFile[] {
  return tarballs.layers.map((l) => ({ path: store.blobPath(l.digest), digest: l.digest, size: l.size, comment: l.comment, gzip: { ...l.gzip, path: store.blobPath(l.gzip.digest) } }));
}

interface BuildJsonInput {
  shown: string;
  recipe: Recipe;
  packages: ResolvedPackages | undefined;
  digest: string;
  epoch: number;
  reproducible: boolean;
  notes: string[];
  fingerprint: string | undefined;
  layers: LayerFile[];
  config: ImageConfig;
  steps: StepRecord[];
  formats: ReadonlySet<Format>;
}

/** out/build.json: what was built, from what, and which files hold it. */
function buildJson(b: BuildJsonInput): Record<string, unknown> {
  return {
    niftyc: NIFTYC_VERSION,
    recipe: b.shown,
    name: b.recipe.name,
    digest: b.digest,
    epoch: b.epoch,
    reproducible: b.reproducible,
    notes: b.notes,
    fingerprint: b.fingerprint,
    inputs: b.recipe.instructions.flatMap((i) => specFor(i).inputs?.(i) ?? []),
    ...(b.packages ? { packages: b.packages.lock.packages.map((p) => ({ name: p.name, version: p.version, architecture: p.architecture, suite: `${p.from.archive} ${p.from.suite} ${p.from.component}`, sha256: p.sha256 })) } : {}),
    layers: b.layers.map((l) => ({ digest: l.digest, size: l.size, comment: l.comment })),
    config: b.config,
    steps: b.steps,
    outputs: Object.fromEntries(Object.entries(outputFiles("", b.recipe.name, b.formats)).map(([k, v]) => [k, v.replace(/^\//, "")])),
  };
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
  fingerprint: string | undefined;
  /** The assembled record of the fingerprint, when the caller has read it already. */
  assembled?: AssembledRecord;
  used: Set<string>;
  useTag: string;
  buildJson: Record<string, unknown>;
  /** The SPDX SBOM, made only when the outputs are written rather than restored. */
  sbom: () => Promise<string | undefined>;
  /** Work done while the files are restored; false: nothing is to be published after all. */
  alongside?: () => Promise<boolean>;
}

/**
 * Outputs: assembled in staging (or restored from the store), published whole. Returns the path
 * of the use record it refreshed, or undefined when `alongside` gave up.
 */
async function assembleAndPublish(input: AssembleInput): Promise<string | undefined> {
  const { store, fingerprint } = input;
  const [{ stagingDir, discard, publish }, outputs] = await Promise.all([import("../core/atomic.ts"), import("./outputs.ts")]);
  // 0755, as any published directory: mkdtemp's 0700 would keep other users (a machine manager, a CI job) out.
  const staging = await stagingDir(input.outDir);
  try {
    const assembled = input.assembled ?? (fingerprint === undefined ? undefined : await store.readRecord<AssembledRecord>("assembled", fingerprint));
    // Both settled before anything else: staging is never removed under copies still running.
    const [restored, going] = await Promise.allSettled([assembled !== undefined && outputs.restoreAssembled(staging, store, assembled), input.alongside?.() ?? true]);
    if (going.status === "rejected") throw going.reason;
    if (restored.status === "rejected") throw restored.reason;
    if (!going.value) {
      await discard(staging);
      return undefined;
    }
    let kept = restored.value ? assembled : undefined;
    if (kept === undefined) {
      const sbom = await input.sbom();
      const copies = await outputs.writeOutputs(store, { dir: staging, name: input.recipe.name, config: input.config, layers: input.layers, digest: input.digest, ...(sbom !== undefined ? { sbom } : {}) }, input.formats, fingerprint !== undefined);
      if (fingerprint !== undefined) {
        kept = await outputs.recordAssembled(staging, store, copies);
        if (kept !== undefined) await store.writeRecord("assembled", fingerprint, kept);
      }
    }
    for (const blob of kept ? outputs.assembledBlobs(kept) : []) input.used.add(blob.digest);
    const useRecord = await store.recordUse([...input.used], input.useTag);
    await writeFile(join(staging, "build.json"), JSON.stringify(input.buildJson, null, 2) + "\n");
    await publish(staging, input.outDir);
    return useRecord;
  } catch (error) {
    await discard(staging);
    throw error;
  }
}

/** Restoring failed although every blob was there a moment before: the store was changed under the build's lease. */
async function missingOutput(store: Store, assembled: AssembledRecord): Promise<never> {
  const blobs = assembledBlobs(assembled);
  const present = await Promise.all(blobs.map((b) => store.has(b.digest)));
  throw damagedBlob(blobs[present.indexOf(false)]?.digest ?? "an output", "it went missing while the build restored it");
}

/** --strict: a warning raised while building fails the build, as the checker's do. */
function refuseWarnings(options: BuildOptions, warnings: readonly Diagnostic[]): void {
  if (options.strict && warnings.length > 0) throw new BuildFailed(warnings.map((w) => ({ ...w, severity: "error" as const })));
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
  const line = text.slice(span.start.offset, span.end.offset).split("\n")[0]!.replace(/\s*\\$/, "");
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
      }
      else if (value !== undefined && value.length < use.minBytes) {
        missing.push({ severity: "error", code: "NIFTY211", message: `the secret "${use.id}" has ${value.length} byte${value.length === 1 ? "" : "s"}${use.minBytes > 1 ? `, fewer than the ${use.minBytes} it needs` : ""}`, source, span: use.span, hint: use.hint });
      }
      else if (value !== undefined && use.maxBytes !== undefined && value.length > use.maxBytes) {
        missing.push({ severity: "error", code: "NIFTY807", message: `the secret "${use.id}" has ${value.length.toLocaleString("en-US")} bytes, more than the ${use.maxBytes.toLocaleString("en-US")} it may have`, source, span: use.span, hint: "a password is hashed once per byte of its length; give a shorter one" });
      }
    }
  }
  if (missing.length > 0) throw new BuildFailed(missing, missing.length === absent.size ? [...absent] : []);
}

function asDiagnostic(error: NiftyError, span: Span, source: SourceFile): Diagnostic {
  const where = error instanceof StepError ? error.span : span;
  return { severity: "error", code: error.code, message: error.message, source, span: where, ...(error.hint ? { hint: error.hint } : {}) };
}

function asBuildFailure(error: unknown, span: Span, source: SourceFile, warnings: Diagnostic[]): BuildFailed {
  if (error instanceof BuildFailed) return error;
  if (error instanceof NiftyError) return new BuildFailed([...warnings, asDiagnostic(error, span, source)]);
  if (error instanceof TreeError) return new BuildFailed([...warnings, { severity: "error", code: "NIFTY204", message: error.message, source, span }]);
  throw error;
}
