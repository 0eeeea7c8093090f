// The build, as a list of named stages: compile the recipe (or take it from
// the cache), run or replay each step, verify the image, write the layer
// tarballs into the store, then assemble the outputs in staging and publish.
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { join, resolve } from "node:path";
import type { SourceFile, Span } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { openStore, type Store } from "../cache/store.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { Tree, TreeError, type Content, type TreeChange } from "../image/tree.ts";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { specFor, type Instruction } from "../instructions/index.ts";
import { StepError, type BuildContext, type FetchRequest } from "../instructions/context.ts";
import { firstKey, hashText, stepKey } from "./keys.ts";
import { compile } from "./compile.ts";
import { BuildFailed } from "./failure.ts";

export { BuildFailed };
import { bytesDigest } from "../core/hash.ts";
import { NIFTYC_VERSION } from "../core/version.ts";

export const FORMATS = ["rootfs", "nspawn", "systemd", "docker", "oci", "docker-archive", "bundle"] as const;
export type Format = (typeof FORMATS)[number];
/** Everything but the runtime bundle, which unpacks the whole rootfs. */
export const DEFAULT_FORMATS: readonly Format[] = FORMATS.filter((f) => f !== "bundle");

/** Generated files up to this size live inside step records instead of the store. */
const INLINE_LIMIT = 4096;

export interface FetchProgressEvent {
  name: string;
  url: string;
  received: number;
  total?: number;
}

export type BuildEvent =
  | { type: "step"; index: number; total: number; text: string; reused: boolean; ms: number }
  | { type: "fetched"; name: string; digest: string; size: number; url?: string; fromCache: boolean }
  | { type: "fetch-progress"; progress: FetchProgressEvent }
  | { type: "note"; message: string };

export interface BuildOptions {
  recipePath: string;
  args?: ReadonlyMap<string, string>;
  secrets?: ReadonlyMap<string, Buffer>;
  /** SOURCE_DATE_EPOCH, validated by the caller. */
  epoch: number;
  cacheDir: string;
  /** Default: out/<recipe name> under the working directory. */
  outDir?: string;
  offline?: boolean;
  /** Mirror URLs per scheme; loaded only when a download is needed. */
  mirrors: () => Promise<Record<string, string[]>>;
  formats?: readonly Format[];
  strict?: boolean;
  fetchTimeoutMs?: number;
  onEvent?: (event: BuildEvent) => void;
}

export interface StepRecord {
  index: number;
  line: number;
  instruction: string;
  key: string;
  reused: boolean;
  ms: number;
}

export interface BuildResult {
  digest: string;
  outDir: string;
  rootfs: string;
  outputs: Record<string, string>;
  steps: StepRecord[];
  reproducible: boolean;
  upToDate: boolean;
  warnings: Diagnostic[];
  config: ImageConfig;
}

interface StepCacheRecord {
  changes: TreeChange[];
}

/** The output files of a fingerprint, as blobs: a tree of directories and files. */
interface AssembledRecord {
  dirs: string[];
  files: Array<{ path: string; digest: string; mode: number }>;
}

interface OutputsRecord {
  rootfs: { digest: string; size: number };
  layers: Array<{ digest: string; size: number; comment: string }>;
  /** The image config and the blobs the tree uses: enough to skip replaying an unchanged build. */
  config?: ImageConfig;
  used?: string[];
}

export async function build(options: BuildOptions): Promise<BuildResult> {
  const emit = options.onEvent ?? (() => {});
  const text = await readRecipe(options.recipePath);
  const source: SourceFile = { path: options.recipePath, text };
  const store = await openStore(options.cacheDir);
  const { recipe, warnings } = await compile(store, source, { args: options.args ?? new Map(), strict: options.strict ?? false });
  const secrets = options.secrets ?? new Map<string, Buffer>();
  requireSecrets(recipe, secrets, source);

  const outDir = resolve(options.outDir ?? join("out", recipe.name));
  const formats = new Set(options.formats ?? DEFAULT_FORMATS);
  const fail = (error: unknown, span: Span): never => {
    throw asBuildFailure(error, span, source, warnings);
  };

  // Every step's key first: they depend only on the recipe and what it reads.
  const notes: string[] = [];
  const tree = new Tree();
  const context = buildContext(tree, store, recipe, options, secrets, emit, (span, reason) => notes.push(`line ${span.start.line}: ${reason}`), warnings, source);
  const keys: string[] = [];
  const cacheable: boolean[] = [];
  let key = firstKey();
  for (const instruction of recipe.instructions) {
    const spec = specFor(instruction);
    cacheable.push(spec.cacheable?.(instruction, context) ?? true);
    let inputs: string[] = [];
    try {
      inputs = (await spec.keyInputs?.(instruction, context)) ?? [];
    } catch (error) {
      fail(error, instruction.span);
    }
    key = stepKey(key, instruction, inputs);
    keys.push(key);
  }
  const outputsKey = hashText(key, String(options.epoch));
  const steps: StepRecord[] = [];
  const stepRecord = (index: number, reused: boolean, ms: number): void => {
    const instruction = recipe.instructions[index]!;
    steps.push({ index, line: instruction.span.start.line, instruction: firstLine(text, instruction.span), key: keys[index]!, reused, ms });
    emit({ type: "step", index, total: recipe.instructions.length, text: firstLine(text, instruction.span), reused, ms });
  };

  // Nothing changed: the tarballs are in the store and out/ already holds them.
  const known = cacheable.every(Boolean) ? await store.readJson<OutputsRecord>("outputs", outputsKey) : undefined;
  if (known?.config !== undefined && (await allPresent(store, [known.rootfs, ...known.layers]))) {
    const fingerprint = outputsFingerprint(known.rootfs.digest, known.config, formats, known.layers);
    if (await upToDateOutputs(outDir, fingerprint, known.rootfs.size)) {
      for (const index of recipe.instructions.keys()) stepRecord(index, true, 0);
      noteStopSignal(known.config, emit);
      await store.recordUse([...(known.used ?? []), known.rootfs.digest, ...known.layers.map((l) => l.digest)], `build:${resolve(options.recipePath)}`);
      return { digest: known.rootfs.digest, outDir, rootfs: join(outDir, "rootfs.tar"), outputs: outputFiles(outDir, recipe.name, formats), steps, reproducible: true, upToDate: true, warnings, config: known.config };
    }
  }

  // Run or replay each step. Records are read all at once: a key names the
  // whole chain before it, so a later record stays valid whatever ran before.
  const records = await Promise.all(keys.map((k, i) => (cacheable[i] ? store.readJson<StepCacheRecord>("steps", k) : undefined)));
  const origins = new Map<string, Span>();
  const basePaths = new Set<string>();
  const used = new Set<string>();
  for (const [index, instruction] of recipe.instructions.entries()) {
    const started = performance.now();
    const spec = specFor(instruction);
    const cached = records[index];
    let reused = false;
    let changes: TreeChange[];
    if (cached !== undefined && (await blobsPresent(store, cached.changes))) {
      tree.apply(cached.changes);
      changes = tree.takeChanges();
      reused = true;
    } else {
      try {
        await spec.apply(instruction, context);
      } catch (error) {
        fail(error, instruction.span);
      }
      changes = tree.takeChanges();
      if (cacheable[index]) await store.writeJson("steps", keys[index]!, { changes } satisfies StepCacheRecord);
    }
    for (const [path, node] of changes) {
      origins.set(path, instruction.span);
      if (isBase(instruction)) basePaths.add(path);
      else basePaths.delete(path);
      if (node.type === "file" && node.content.inline === undefined) used.add(node.content.digest);
    }
    stepRecord(index, reused, Math.round(performance.now() - started));
  }
  const reproducible = notes.length === 0;
  // Only a build that is not up to date gets here: the rest of the pipeline loads on demand.
  const [{ imageConfig }, { Reporter }, { createStaging, discard, publish }] = await Promise.all([import("./image-config.ts"), import("../diagnostics/reporter.ts"), import("./publish.ts")]);
  const config = imageConfig(recipe, tree, options.epoch);
  noteStopSignal(config, emit);

  // Layer tarballs: written once per tree and epoch, then taken from the store.
  let outputs = await store.readJson<OutputsRecord>("outputs", outputsKey);
  if (outputs === undefined || !(await allPresent(store, [outputs.rootfs, ...outputs.layers]))) {
    const report = new Reporter(source);
    const { verifyImage } = await import("./verify-image.ts");
    await verifyImage(recipe, tree, origins, (d) => store.blobPath(d), report);
    if (report.errorCount > 0) throw new BuildFailed([...warnings, ...report.diagnostics]);
    warnings.push(...report.diagnostics);
    outputs = await writeTarballs(store, tree, basePaths, options.epoch);
  }
  if (reproducible && outputs.config === undefined) {
    outputs = { ...outputs, config, used: [...used].sort() };
    await store.writeJson("outputs", outputsKey, outputs);
  }
  for (const blob of [outputs.rootfs, ...outputs.layers]) used.add(blob.digest);
  const recordUse = () => store.recordUse([...used], `build:${resolve(options.recipePath)}`);

  const layers: LayerFile[] = outputs.layers.map((l) => ({ path: store.blobPath(l.digest), digest: l.digest, size: l.size, comment: l.comment }));
  const digest = outputs.rootfs.digest;
  const fingerprint = outputsFingerprint(digest, config, formats, layers);
  const result = (upToDate: boolean): BuildResult => ({
    digest,
    outDir,
    rootfs: join(outDir, "rootfs.tar"),
    outputs: outputFiles(outDir, recipe.name, formats),
    steps,
    reproducible,
    upToDate,
    warnings,
    config,
  });
  if (reproducible && (await upToDateOutputs(outDir, fingerprint, outputs.rootfs.size))) {
    await recordUse();
    return result(true);
  }

  // Outputs: assembled in staging, published whole. Reproducible outputs are
  // kept in the store by their fingerprint, so a fresh --out copies them
  // instead of compressing and packing the layers again.
  const staging = await createStaging(outDir);
  try {
    const assembled = reproducible ? await store.readJson<AssembledRecord>("assembled", fingerprint) : undefined;
    if (assembled !== undefined && (await allPresent(store, assembled.files))) {
      await restoreAssembled(staging, store, assembled);
    } else {
      await writeOutputs(staging, store, recipe, config, layers, digest, formats);
      if (reproducible) await store.writeJson("assembled", fingerprint, await recordAssembled(staging, store));
    }
    for (const file of (await store.readJson<AssembledRecord>("assembled", fingerprint))?.files ?? []) used.add(file.digest);
    await recordUse();
    const buildJson = {
      niftyc: NIFTYC_VERSION,
      recipe: options.recipePath,
      name: recipe.name,
      digest,
      epoch: options.epoch,
      reproducible,
      notes,
      fingerprint: reproducible ? fingerprint : undefined,
      inputs: recipe.instructions.filter((i) => i.kind === "FETCH").map((i) => ({ name: i.name, sources: i.sources, digest: i.digest, ...(i.extract ? { extract: i.extract } : {}) })),
      layers: layers.map((l) => ({ digest: l.digest, size: l.size, comment: l.comment })),
      config,
      steps,
      outputs: Object.fromEntries(Object.entries(outputFiles("", recipe.name, formats)).map(([k, v]) => [k, v.replace(/^\//, "")])),
    };
    await writeFile(join(staging, "build.json"), JSON.stringify(buildJson, null, 2) + "\n");
    await publish(staging, outDir);
  } catch (error) {
    await discard(staging);
    throw error;
  }
  return result(false);
}

function noteStopSignal(config: ImageConfig, emit: (event: BuildEvent) => void): void {
  if (config.stopSignal.source !== "init") return;
  const init = config.init.kind === "other" ? "an unknown" : config.init.kind;
  emit({ type: "note", message: `stop signal ${config.stopSignal.name} chosen for ${init} init (set STOPSIGNAL to choose another)` });
}

/** What out/ must have been built from to be up to date. */
function outputsFingerprint(digest: string, config: ImageConfig, formats: ReadonlySet<Format>, layers: ReadonlyArray<{ digest: string }>): string {
  return hashText(NIFTYC_VERSION, digest, JSON.stringify(config), [...formats].sort().join(","), JSON.stringify(layers.map((l) => l.digest)));
}

function isBase(instruction: Instruction): boolean {
  return instruction.kind === "FETCH" || instruction.kind === "LINK";
}

function firstLine(text: string, span: Span): string {
  const line = text.slice(span.start.offset, span.end.offset).split("\n")[0]!.replace(/\s*\\$/, "");
  return line.length > 72 ? line.slice(0, 71) + "…" : line;
}

async function readRecipe(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new NiftyError("NIFTY001", code === "ENOENT" ? `recipe ${path} does not exist` : `cannot read recipe ${path}: ${(error as Error).message}`, code === "ENOENT" ? "recipes are files such as recipes/ssh.nifty" : undefined);
  }
}

function requireSecrets(recipe: Recipe, secrets: ReadonlyMap<string, Buffer>, source: SourceFile): void {
  const missing: Diagnostic[] = [];
  for (const ins of recipe.instructions) {
    if (ins.kind === "USER" && ins.password.kind === "secret" && !secrets.has(ins.password.id)) {
      missing.push({ severity: "error", code: "NIFTY210", message: `the password secret "${ins.password.id}" was not given`, source, span: ins.span, hint: `pass --secret ${ins.password.id}=FILE (the file's content, without a final newline, is the password)` });
    }
  }
  if (missing.length > 0) throw new BuildFailed(missing);
}

function asBuildFailure(error: unknown, span: Span, source: SourceFile, warnings: Diagnostic[]): BuildFailed {
  if (error instanceof BuildFailed) return error;
  if (error instanceof StepError || error instanceof NiftyError) {
    const where = error instanceof StepError ? error.span : span;
    return new BuildFailed([...warnings, { severity: "error", code: error.code, message: error.message, source, span: where, ...(error.hint ? { hint: error.hint } : {}) }]);
  }
  if (error instanceof TreeError) {
    return new BuildFailed([...warnings, { severity: "error", code: "NIFTY204", message: error.message, source, span }]);
  }
  throw error;
}

function buildContext(
  tree: Tree,
  store: Store,
  recipe: Recipe,
  options: BuildOptions,
  secrets: ReadonlyMap<string, Buffer>,
  emit: (event: BuildEvent) => void,
  notReproducible: (span: Span, reason: string) => void,
  warnings: Diagnostic[],
  source: SourceFile,
): BuildContext {
  let mirrors: Promise<Record<string, string[]>> | undefined;
  const readContent = async (content: Content): Promise<Buffer> =>
    content.inline !== undefined ? Buffer.from(content.inline, "base64") : readFile(store.blobPath(content.digest));
  return {
    tree,
    epoch: options.epoch,
    recipeDir: recipe.dir,
    secrets,
    blobPath: (digest) => store.blobPath(digest),
    async content(bytes) {
      if (bytes.length <= INLINE_LIMIT) return { digest: bytesDigest(bytes), size: bytes.length, inline: bytes.toString("base64") };
      const blob = await store.putBuffer(bytes);
      return { digest: blob.digest, size: blob.size };
    },
    async importFile(hostPath) {
      const blob = await store.putFile(hostPath);
      return { digest: blob.digest, size: blob.size };
    },
    async fetch(request: FetchRequest) {
      const { fetchBlob } = await import("../fetch/download.ts");
      let urls: string[] = [];
      if (!(await store.has(request.digest))) {
        const { resolveSources } = await import("../fetch/mirrors.ts");
        mirrors ??= options.mirrors();
        urls = resolveSources(request.sources, await mirrors);
      }
      const blob = await fetchBlob(store, {
        name: request.name,
        sources: urls,
        digest: request.digest,
        offline: options.offline ?? false,
        ...(options.fetchTimeoutMs ? { timeoutMs: options.fetchTimeoutMs } : {}),
        onProgress: (progress) => emit({ type: "fetch-progress", progress }),
      });
      emit({ type: "fetched", name: request.name, digest: blob.digest, size: blob.size, fromCache: blob.fromCache, ...(blob.url ? { url: blob.url } : {}) });
      if (request.extract === undefined) return { digest: blob.digest, size: blob.size };
      const extractKey = `${blob.digest.slice(7)}-${hashText(request.extract)}`;
      const known = await store.readJson<{ digest: string; size: number }>("extracts", extractKey);
      if (known !== undefined && (await store.has(known.digest))) return known;
      const { extractMember } = await import("../fetch/archive.ts");
      const member = await extractMember(store, blob.path, request.extract);
      await store.writeJson("extracts", extractKey, { digest: member.digest, size: member.size });
      return { digest: member.digest, size: member.size };
    },
    async applets(content, span) {
      const known = await store.readJson<string[]>("applets", content.digest.slice(7));
      if (known !== undefined) return known;
      if (content.inline !== undefined) throw new StepError("NIFTY205", span, "this file is too small to be a multicall binary");
      const { listApplets } = await import("../image/elf.ts");
      // Read from the file, never run: a fetched binary does not execute on the build host.
      const names = await listApplets(store.blobPath(content.digest), { method: "elf" });
      if (names.length === 0) throw new StepError("NIFTY206", span, "found no applet list in this binary", "LINK … APPLETS works on BusyBox-style multicall binaries; name the links instead: LINK <binary> <name>...");
      await store.writeJson("applets", content.digest.slice(7), names);
      return names;
    },
    async readText(path) {
      const found = tree.lookup(path);
      return found?.node.type === "file" ? (await readContent(found.node.content)).toString("utf8") : undefined;
    },
    warn(span, code, message, hint) {
      warnings.push({ severity: "warning", code, message, source, span, ...(hint ? { hint } : {}) });
    },
    notReproducible(span, reason) {
      notReproducible(span, reason);
      warnings.push({ severity: "warning", code: "NIFTY207", message: `not reproducible: ${reason}`, source, span });
    },
  };
}

async function blobsPresent(store: Store, changes: readonly TreeChange[]): Promise<boolean> {
  const blobs = changes.flatMap(([, node]) => (node.type === "file" && node.content.inline === undefined ? [node.content] : []));
  return allPresent(store, blobs);
}

async function allPresent(store: Store, blobs: ReadonlyArray<{ digest: string }>): Promise<boolean> {
  return (await Promise.all(blobs.map((blob) => store.has(blob.digest)))).every(Boolean);
}

async function writeTarballs(store: Store, tree: Tree, basePaths: ReadonlySet<string>, epoch: number): Promise<OutputsRecord> {
  const { writeTar } = await import("../emit/tar.ts");
  const toStore = async (source: Tree): Promise<{ digest: string; size: number }> => {
    const writer = store.createWriter();
    try {
      await writeTar(writer, source, source.sortedPaths(), { mtime: epoch, blobPath: (d) => store.blobPath(d) });
      const blob = await writer.commit();
      return { digest: blob.digest, size: blob.size };
    } catch (error) {
      await writer.abort();
      throw error;
    }
  };
  const { splitLayers } = await import("./layers.ts");
  const { base, rest } = splitLayers(tree, basePaths);
  const rootfs = await toStore(tree);
  const layers = [
    { ...(await toStore(base)), comment: "fetched binaries and links" },
    { ...(await toStore(rest)), comment: "files, accounts and configuration" },
  ];
  return { rootfs, layers };
}

export function outputFiles(outDir: string, name: string, formats: ReadonlySet<Format>): Record<string, string> {
  const files: Record<string, string> = {};
  if (formats.has("rootfs")) files.rootfs = join(outDir, "rootfs.tar");
  if (formats.has("nspawn")) files.nspawn = join(outDir, `${name}.nspawn`);
  if (formats.has("systemd")) {
    files.service = join(outDir, `${name}.service`);
    files.template = join(outDir, `${name}@.service`);
  }
  if (formats.has("docker")) {
    files.dockerfile = join(outDir, "Dockerfile");
    files.dockerRun = join(outDir, "docker-run.sh");
  }
  if (formats.has("oci")) files.oci = join(outDir, "oci");
  if (formats.has("docker-archive")) files.dockerArchive = join(outDir, "image.tar");
  if (formats.has("bundle")) files.bundle = join(outDir, "bundle");
  return files;
}

async function recordAssembled(staging: string, store: Store): Promise<AssembledRecord> {
  const record: AssembledRecord = { dirs: [], files: [] };
  const visit = async (rel: string): Promise<void> => {
    const entries = (await readdir(join(staging, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        record.dirs.push(path);
        await visit(path);
      } else if (entry.isFile()) {
        const blob = await store.putFile(join(staging, path));
        record.files.push({ path, digest: blob.digest, mode: (await stat(join(staging, path))).mode & 0o7777 });
      }
    }
  };
  await visit("");
  return record;
}

async function restoreAssembled(staging: string, store: Store, record: AssembledRecord): Promise<void> {
  for (const dir of [...record.dirs].sort()) await mkdir(join(staging, dir), { recursive: true });
  await Promise.all(
    record.files.map(async (file) => {
      const dest = join(staging, file.path);
      await copyFile(store.blobPath(file.digest), dest, constants.COPYFILE_FICLONE);
      await chmod(dest, file.mode);
    }),
  );
}

async function upToDateOutputs(outDir: string, fingerprint: string, rootfsSize: number): Promise<boolean> {
  try {
    const previous = JSON.parse(await readFile(join(outDir, "build.json"), "utf8")) as { fingerprint?: string };
    if (previous.fingerprint !== fingerprint) return false;
    return (await stat(join(outDir, "rootfs.tar"))).size === rootfsSize;
  } catch {
    return false;
  }
}

async function writeOutputs(dir: string, store: Store, recipe: Recipe, config: ImageConfig, layers: LayerFile[], digest: string, formats: ReadonlySet<Format>): Promise<void> {
  const rootfsTar = join(dir, "rootfs.tar");
  // The rootfs is always staged: the bundle and docker formats read it.
  await copyFile(store.blobPath(digest), rootfsTar, constants.COPYFILE_FICLONE);
  await chmod(rootfsTar, 0o644);
  const shortDigest = digest.slice(7, 19);
  if (formats.has("nspawn")) {
    const { renderNspawnFile } = await import("../emit/nspawn.ts");
    await writeFile(join(dir, `${recipe.name}.nspawn`), renderNspawnFile(config, {}));
  }
  if (formats.has("systemd")) {
    const { renderServiceUnit, renderTemplateUnit } = await import("../emit/systemd.ts");
    await writeFile(join(dir, `${recipe.name}.service`), renderServiceUnit(config, { machinesDir: "/var/lib/machines" }));
    await writeFile(join(dir, `${recipe.name}@.service`), renderTemplateUnit(config, { machinesDir: "/var/lib/machines" }));
  }
  if (formats.has("docker")) {
    const { renderDockerfile, renderDockerRun } = await import("../emit/docker.ts");
    await writeFile(join(dir, "Dockerfile"), renderDockerfile(config));
    await writeFile(join(dir, "docker-run.sh"), renderDockerRun(config, `${recipe.name}:${shortDigest}`), { mode: 0o755 });
  }
  if (formats.has("oci")) {
    const { writeOciLayout } = await import("../emit/oci-layout.ts");
    await writeOciLayout(join(dir, "oci"), { config, layers, refName: "latest" });
  }
  if (formats.has("docker-archive")) {
    const { writeDockerArchive } = await import("../emit/docker-archive.ts");
    await writeDockerArchive(join(dir, "image.tar"), { config, layers, repoTag: `${recipe.name}:${shortDigest}` });
  }
  if (formats.has("bundle")) {
    const { writeRuntimeBundle } = await import("../emit/runtime-bundle.ts");
    await writeRuntimeBundle(join(dir, "bundle"), { config, rootfsTar });
  }
  if (!formats.has("rootfs")) {
    const { rm } = await import("node:fs/promises");
    await rm(rootfsTar);
  }
}
