// The one BuildContext of a build: what an instruction's effect may use (the
// tree, the store, downloads, secrets), made from the build's options. Nothing
// here reads the environment or the clock.
import { readFile } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { Span, SourceFile } from "../core/source.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { bytesDigest } from "../core/hash.ts";
import type { Store } from "../cache/store.ts";
import type { Content, Tree } from "../image/tree.ts";
import type { DebContents } from "../debian/deb.ts";
import type { LockedPackage } from "../debian/lockfile.ts";
import type { FetchResult } from "../fetch/download.ts";
import { StepError, missingSecret, type BuildContext, type RecipeDownload } from "../instructions/context.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { hashText } from "./keys.ts";
import type { ResolvedPackages } from "./packages.ts";
import type { SecretStamps } from "./secret-stamps.ts";
import type { BuildEvent, BuildOptions } from "./types.ts";
import { DEFAULT_PLATFORM } from "../image/platform.ts";
import { Gate } from "../core/gate.ts";

/** Generated files up to this size live inside step records instead of the store. */
const INLINE_LIMIT = 4096;

export interface StepContextInput {
  tree: Tree;
  store: Store;
  recipe: Recipe;
  source: SourceFile;
  options: BuildOptions;
  emit: (event: BuildEvent) => void;
  /** Warnings the steps raise join the build's. */
  warnings: Diagnostic[];
  /** Why the output is not reproducible, one line per reason. */
  notes: string[];
  /** The recipe's packages, pinned by the lock (undefined: the recipe has no PACKAGE line). */
  packages: ResolvedPackages | undefined;
  /** What the running step told the user: kept with its record, so a replay says it again. */
  stepNotes: string[];
  /** The secret stamps beside the output, when a secret came from a file. */
  secretStamps?: SecretStamps;
}

type StepEnvInput = Pick<StepContextInput, "store" | "options" | "emit" | "source" | "warnings" | "packages">;

/** What the steps' downloads share: the store, the options, where to tell, and the mirrors once asked. */
interface StepEnv extends StepEnvInput {
  /** The build's mirrors, asked for once, when a download first needs them. */
  mirrors(): Promise<Record<string, string[]>>;
  /** Each .deb's contents, asked for once per build (by digest). */
  debs: Map<string, Promise<DebContents>>;
  downloads: Gate;
}

function stepEnv({ store, options, emit, source, warnings, packages }: StepContextInput): StepEnv {
  let mirrors: Promise<Record<string, string[]>> | undefined;
  const askMirrors = () => (mirrors ??= options.mirrors());
  return {
    store,
    options,
    emit,
    source,
    warnings,
    packages,
    mirrors: askMirrors,
    debs: new Map(),
    downloads: new Gate(DEBS_DOWNLOADED_AT_ONCE),
  };
}

export function createStepContext(input: StepContextInput): BuildContext {
  const env = stepEnv(input);
  const { tree, store, recipe, source, options, warnings, notes, packages, stepNotes, secretStamps } = input;
  const secrets = options.secrets ?? new Map<string, Buffer>();
  const memos = new Map<string, Promise<unknown>>();
  const readContent = async (content: Content): Promise<Buffer> =>
    content.inline !== undefined
      ? Buffer.from(content.inline, "base64")
      : readFile(store.blobPath(content.digest));
  return {
    tree,
    platform: options.platform ?? DEFAULT_PLATFORM,
    epoch: options.epoch,
    recipeDir: recipe.dir,
    ...(options.hostInputs ? { hostInputs: options.hostInputs } : {}),
    secret(id, span) {
      const value = secrets.get(id);
      if (value === undefined) throw missingSecret(id, span);
      return value;
    },
    optionalSecret: (id) => secrets.get(id),
    secretInput: (use, id, make) => (secretStamps ? secretStamps.input(use, id, make) : make()),
    memo<T>(key: string, make: () => Promise<T>): Promise<T> {
      if (!memos.has(key)) memos.set(key, make());
      return memos.get(key) as Promise<T>;
    },
    blobPath: (digest) => store.blobPath(digest),
    async content(bytes) {
      if (bytes.length <= INLINE_LIMIT)
        return { digest: bytesDigest(bytes), size: bytes.length, inline: bytes.toString("base64") };
      const blob = await store.putBuffer(bytes);
      return { digest: blob.digest, size: blob.size };
    },
    async importFile(file) {
      const blob = await store.putStream((writer) =>
        pipeline(file.createReadStream({ start: 0, autoClose: false }), writer),
      );
      return { digest: blob.digest, size: blob.size };
    },
    fetch: (request) => fetchDownload(env, request),
    async applets(content, span) {
      const known = await store.readRecord<string[]>("applets", content.digest.slice(7));
      if (known !== undefined) return known;
      if (content.inline !== undefined)
        throw new StepError("NIFTY205", span, "this file is too small to be a multicall binary");
      const { listApplets } = await import("../image/elf.ts");
      // Read from the file, never run: a fetched binary does not execute on the build host.
      const names = await listApplets(store.blobPath(content.digest), { method: "elf" });
      if (names.length === 0)
        throw new StepError(
          "NIFTY206",
          span,
          "found no applet list in this binary",
          "LINK … APPLETS works on BusyBox-style multicall binaries; name the links instead: LINK <binary> <name>...",
        );
      await store.writeRecord("applets", content.digest.slice(7), names);
      return names;
    },
    packages(requests, span) {
      if (packages === undefined)
        throw new StepError("NIFTY606", span, "no lock was resolved for this recipe's PACKAGE lines");
      return packages.closure(requests);
    },
    debContents: (pkg, span) => debContents(env, pkg, span),
    note(span, message) {
      stepNotes.push(`line ${span.start.line}: ${message}`);
    },
    async readText(path) {
      const found = tree.lookup(path);
      return found?.node.type === "file"
        ? (await readContent(found.node.content)).toString("utf8")
        : undefined;
    },
    warn(span, code, message, hint) {
      warnings.push({ severity: "warning", code, message, source, span, ...(hint ? { hint } : {}) });
    },
    notReproducible(span: Span, reason: string) {
      notes.push(`line ${span.start.line}: ${reason}`);
      warnings.push({
        severity: "warning",
        code: "NIFTY207",
        message: `not reproducible: ${reason}`,
        source,
        span,
      });
    },
  };
}

/**
 * A FETCH line's blob, from the store or its sources, and the member it names when it extracts one.
 * Tells when the store's blob came from somewhere other than this line's sources.
 */
async function fetchDownload(env: StepEnv, request: RecipeDownload): Promise<Content> {
  const blob = await downloadBlob(env, request);
  const origins = await checkOrigins(env, request, blob);
  if (request.extract === undefined) return { digest: blob.digest, size: blob.size };
  return extractDownload(env, request, request.extract, blob, origins);
}

/** The line's blob: from the store when there, else from its sources resolved through the mirrors. */
async function downloadBlob(env: StepEnv, request: RecipeDownload): Promise<FetchResult> {
  const { store, options, emit, mirrors } = env;
  const { fetchBlob } = await import("../fetch/download.ts");
  let urls: string[] = [];
  if (!(await store.has(request.digest))) {
    const { resolveSources } = await import("../fetch/mirrors.ts");
    urls = resolveSources(request.sources, await mirrors());
  }
  const blob = await fetchBlob(store, {
    name: request.name,
    sources: urls,
    digest: request.digest,
    offline: options.offline ?? false,
    ...(options.fetchTimeoutMs ? { timeoutMs: options.fetchTimeoutMs } : {}),
    ...(options.limits ? { maxBytes: options.limits.downloadBytes } : {}),
    onProgress: (progress) => emit({ type: "fetch-progress", progress }),
  });
  emit({
    type: "fetched",
    name: request.name,
    digest: blob.digest,
    size: blob.size,
    fromCache: blob.fromCache,
    ...(blob.url ? { url: blob.url } : {}),
  });
  return blob;
}

/** Where the blob came from (this line's sources, noted when it downloads it); warns when they differ. */
async function checkOrigins(env: StepEnv, request: RecipeDownload, blob: FetchResult): Promise<string[]> {
  const { store, warnings, source } = env;
  const { noteOrigins } = await import("../fetch/download.ts");
  // Where each blob was fetched from (by this line, another FETCH or a PACKAGE), so a recipe whose
  // source changed but whose digest did not is told.
  if (!blob.fromCache) await noteOrigins(store, blob.digest, request.sources);
  const origins =
    (await store.readRecord<{ sources: string[] }>("origins", blob.digest.slice(7)))?.sources ?? [];
  if (blob.fromCache && origins.length > 0 && !(await sameSources(env, request.sources, origins))) {
    warnings.push({
      severity: "warning",
      code: "NIFTY105",
      message: `${blob.digest} is taken from the store, where it came from ${origins.join(", ")}, not from this line's sources`,
      source,
      span: request.sourcesSpan ?? request.span,
      hint: "if the sources changed, the digest must change too: check it against the new file (a fresh --cache shows what a clean machine would get)",
    });
  }
  return origins;
}

/** Whether a FETCH's sources name a place the blob came from: as written, or (debian:…) through the mirrors. */
async function sameSources(
  env: StepEnv,
  sources: readonly string[],
  origins: readonly string[],
): Promise<boolean> {
  if (sources.some((s) => origins.includes(s))) return true;
  if (sources.every((s) => /^https?:\/\//.test(s))) return false;
  const { resolveSources } = await import("../fetch/mirrors.ts");
  const mirrors = env.mirrors();
  try {
    return resolveSources([...sources], await mirrors).some((url) => origins.includes(url));
  } catch {
    return false; // no mirror for it: it cannot be where the blob came from
  }
}

/** The member of the fetched archive the line names, extracted once and remembered by archive and member. */
async function extractDownload(
  { store, options }: StepEnv,
  request: RecipeDownload,
  extract: string,
  blob: FetchResult,
  origins: readonly string[],
): Promise<Content> {
  const extractKey = `${blob.digest.slice(7)}-${hashText(extract)}`;
  const known = await store.readRecord<{ digest: string; size: number }>("extracts", extractKey);
  if (known !== undefined && (await store.has(known.digest))) return known;
  const { extractMember } = await import("../fetch/archive.ts");
  // The archive is named by where its bytes came from: for a blob found in the store, not this line's sources.
  const fileName = (blob.fromCache ? origins[0] : (blob.url ?? request.sources[0]))?.split("/").pop();
  const what = fileName
    ? `${fileName} (${blob.digest.slice(0, 19)}…)`
    : `the stored blob ${blob.digest.slice(0, 19)}…`;
  const member = await extractMember(store, blob.path, extract, what, options.limits);
  await store.writeRecord("extracts", extractKey, { digest: member.digest, size: member.size });
  return { digest: member.digest, size: member.size };
}

/** .debs downloaded at once: as many as the download pool keeps connections to a mirror. */
const DEBS_DOWNLOADED_AT_ONCE = 6;

/**
 * A locked package's files and scripts, its .deb downloaded through the lock's mirrors when not
 * stored. Asked for a closure's packages at once, the downloads and reads of different .debs
 * overlap (downloads bounded by their gate, reads by the reader threads); what each gives depends
 * only on the .deb's bytes, and the caller applies the results in its own (the lock's) order. One
 * read per .deb and build.
 */
function debContents(env: StepEnv, pkg: LockedPackage, span: Span): Promise<DebContents> {
  let pending = env.debs.get(pkg.sha256);
  if (pending === undefined) {
    pending = readLockedDeb(env, pkg, span);
    // A caller that stops at an earlier package's failure does not wait for this one: never unhandled.
    pending.catch(() => {});
    env.debs.set(pkg.sha256, pending);
  }
  return pending;
}

async function readLockedDeb(env: StepEnv, pkg: LockedPackage, span: Span): Promise<DebContents> {
  // Read whole by the lock check moments ago, its files stored then: not read, nor its files looked for, again.
  const read = env.packages?.read.get(pkg.sha256);
  if (read !== undefined) return read;
  const what = `${pkg.name} ${pkg.version} (${pkg.architecture})`;
  if (!(await env.store.has(pkg.sha256))) {
    // The reader threads start while the first .debs download.
    (await import("../cache/threads.ts")).startThreads();
    await env.downloads.run(() => downloadDeb(env, pkg, span, what));
  }
  const { readDeb } = await import("../debian/deb.ts");
  const { fromCache: _, ...contents } = await readDeb(env.store, pkg.sha256, what, env.options.limits);
  return contents;
}

async function downloadDeb(env: StepEnv, pkg: LockedPackage, span: Span, what: string): Promise<void> {
  const { store, options, emit, packages } = env;
  const { fetchDeb } = await import("../debian/index.ts");
  const mirrors = await packages!.mirrors();
  if ((mirrors[pkg.from.archive] ?? []).length === 0)
    throw new StepError(
      "NIFTY607",
      span,
      `no mirror for the archive ${pkg.from.archive}, to download ${what}`,
      `pass --mirror ${pkg.from.archive}=<archive root URL>, or give the ARCHIVE line a URL`,
    );
  const blob = await fetchDeb(store, pkg, {
    mirrors,
    offline: options.offline ?? false,
    ...(options.fetchTimeoutMs ? { timeoutMs: options.fetchTimeoutMs } : {}),
  });
  emit({
    type: "fetched",
    name: pkg.name,
    digest: blob.digest,
    size: blob.size,
    fromCache: blob.fromCache,
    ...(blob.url ? { url: blob.url } : {}),
  });
}
