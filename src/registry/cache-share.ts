// A build cache in a registry: the blobs a build's steps need (downloads,
// .debs, every file's bytes), as one OCI artifact (artifactType
// application/vnd.niftyc.cache.v1). --cache-to pushes it after a build;
// --cache-from pulls what the local store lacks before one, so another machine
// runs the steps offline from those blobs and gets the same digest. Each blob
// is checked against its digest; nothing else of the artifact is trusted.
import { pipeline } from "node:stream/promises";
import { Transform, type Readable } from "node:stream";
import { DigestMismatchError, type Store } from "../cache/store.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { RegistryClient, type ClientOptions } from "./client.ts";
import type { LayoutBlob } from "./layout.ts";
import { pushBlob, putManifest, type PushEvent } from "./push.ts";
import type { ImageReference } from "./reference.ts";

export const CACHE_ARTIFACT_TYPE = "application/vnd.niftyc.cache.v1";
/** Step records an older --cache-to pushed: recognised, never read. */
const RECORDS_TYPE = "application/vnd.niftyc.cache.records.v1+json";
const BLOB_TYPE = "application/octet-stream";
const EMPTY = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
};
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

export interface CacheShareOptions extends Omit<ClientOptions, "registry" | "onRetry"> {
  store: Store;
  target: ImageReference;
  onEvent?: (event: PushEvent) => void;
}

/**
 * Push the blobs a build's steps need. Step records are not pushed: another
 * machine could not check them, so it runs the steps from these blobs.
 */
export async function pushCache(
  options: CacheShareOptions & { blobs: readonly string[] },
): Promise<{ digest: string; blobs: number }> {
  const { store, target } = options;
  const empty = (await store.putBuffer(Buffer.from("{}"))).path;
  const blobs: LayoutBlob[] = [{ mediaType: EMPTY.mediaType, digest: EMPTY.digest, size: 2, path: empty }];
  for (const digest of [...new Set(options.blobs)].sort()) {
    const info = await store.stat(digest);
    if (info) blobs.push({ mediaType: BLOB_TYPE, digest, size: info.size, path: info.path });
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      artifactType: CACHE_ARTIFACT_TYPE,
      config: EMPTY,
      layers: blobs.slice(1).map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })),
    }),
  );
  const { createHash } = await import("node:crypto");
  const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
  const client = new RegistryClient({
    ...options,
    registry: target.registry,
    onRetry: (what, attempt, reason) => options.onEvent?.({ type: "retry", what, attempt, reason }),
  });
  try {
    for (const blob of blobs) {
      const action = await pushBlob(client, target.repository, blob, options, []);
      options.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size, ...action });
    }
    const { action } = await putManifest(client, target.repository, target.tag ?? digest, {
      bytes: manifest,
      digest,
      mediaType: MANIFEST,
    });
    options.onEvent?.({ type: "manifest", digest, action });
  } finally {
    await client.close();
  }
  return { digest, blobs: blobs.length - 1 };
}

export type PullEvent =
  | { type: "cache-blob"; digest: string; size: number; action: "have" | "downloaded" }
  | { type: "retry"; what: string; attempt: number; reason: string };

/** A registry's limit on a manifest (distribution's), and so niftyc's on reading one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface PullResult {
  digest: string;
  downloaded: number;
  present: number;
  /** Step records an older --cache-to put in the artifact: never read, since nothing proves them. */
  ignoredRecords: number;
  /** Why some or all of the artifact was not used; the build goes on without that part. */
  warnings: Diagnostic[];
  /** The registry could not be read to the end (down, or its answers unreadable): a warning says why. */
  unread?: true;
}

interface CacheLayer {
  mediaType: string;
  digest: string;
  size: number;
}

/** A blob's body went on past the size its manifest gave. */
class LongerThanSaid extends Error {}

/**
 * Bring the artifact's blobs into the store; undefined when the tag does not exist.
 *
 * Only blobs are taken, each stored only if its bytes match its digest, so the
 * artifact decides what is downloaded, never what a build makes: the steps run
 * here from those blobs. A malformed artifact is a warning (NIFTY720) and
 * nothing of it is used; a blob missing or not matching its digest (NIFTY721)
 * is left out.
 */
export async function pullCache(options: PullOptions): Promise<PullResult | undefined> {
  const { target } = options;
  const client = new RegistryClient({
    ...options,
    registry: target.registry,
    readOnly: true,
    onRetry: (what, attempt, reason) => options.onEvent?.({ type: "retry", what, attempt, reason }),
  });
  const reference = target.digest ?? target.tag!;
  const shown = `${target.registry}/${target.repository}${target.digest ? "@" : ":"}${reference}`;
  const result: PullResult = { digest: "", downloaded: 0, present: 0, ignoredRecords: 0, warnings: [] };
  try {
    const read = await readManifest(client, target, reference);
    if (read === undefined) return undefined;
    const { digest, parsed } = await judgeManifest(read.body, target);
    result.digest = digest;
    if ("why" in parsed) {
      result.warnings.push(unusable(shown, parsed.why));
      return result;
    }
    requireCacheArtifact(parsed.artifactType, shown);
    const left = await pullLayers(client, options, parsed.layers, result);
    result.warnings.push(...leftOutWarnings(shown, left, result.ignoredRecords));
    return result;
  } catch (error) {
    // A cache only saves downloads: a registry that is down or answers nonsense is a warning, and
    // the build goes on with what was pulled. Credentials, TLS and a wrong reference stay errors.
    if (!(error instanceof NiftyError) || !UNREADABLE.has(error.code)) throw error;
    result.unread = true;
    result.warnings.push(unreadable(shown, target.registry, error));
    return result;
  } finally {
    await client.close();
  }
}

/** Registry failures that leave a cache unread: retries run out, an unexpected status, an answer that cannot be read. */
const UNREADABLE = new Set(["NIFTY701", "NIFTY703", "NIFTY710", "NIFTY711", "NIFTY712", "NIFTY713"]);

function unreadable(shown: string, registry: string, error: NiftyError): Diagnostic {
  return {
    severity: "warning",
    code: "NIFTY720",
    message: `the cache ${shown} cannot be used: ${error.message} [${error.code}]; building without it`,
    hint: `check that ${registry} is up and answers as a registry; until then a build downloads what it lacks from the sources (with --offline it has only what the store holds)`,
  };
}

type PullOptions = Omit<CacheShareOptions, "onEvent"> & {
  onEvent?: (e: PullEvent) => void;
  maxBlobBytes: number;
};

/** The manifest's bytes (undefined when over MAX_MANIFEST_BYTES), or undefined when the tag does not exist. */
async function readManifest(
  client: RegistryClient,
  target: ImageReference,
  reference: string,
): Promise<{ body: Buffer | undefined } | undefined> {
  let body: Buffer | undefined;
  const spec = {
    method: "GET" as const,
    url: `/v2/${target.repository}/manifests/${reference}`,
    headers: { accept: MANIFEST },
    scopes: [`repository:${target.repository}:pull`],
    sink: async (stream: Readable) => void (body = await readAtMost(stream, MAX_MANIFEST_BYTES)),
  };
  const res = await client.retrying(`reading the cache ${reference}`, () => client.request(spec));
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw client.unexpected(spec, res);
  return { body };
}

/** The manifest's digest, and its layers or why it cannot be used: too large, not the digest pinned, malformed. */
async function judgeManifest(
  body: Buffer | undefined,
  target: ImageReference,
): Promise<{ digest: string; parsed: ReturnType<typeof parseManifest> }> {
  const { createHash } = await import("node:crypto");
  const digest = body === undefined ? "" : `sha256:${createHash("sha256").update(body).digest("hex")}`;
  const over = { why: `its manifest is over ${MAX_MANIFEST_BYTES / 1024 ** 2} MiB` };
  const other = { why: `its manifest is ${digest}, not the ${target.digest} asked for` };
  const pinnedElsewhere = target.digest !== undefined && digest !== target.digest;
  const parsed = body === undefined ? over : pinnedElsewhere ? other : parseManifest(body);
  return { digest, parsed };
}

/** Another artifact (an image) is a mistake in the reference, not a damaged cache: an error, NIFTY709. */
function requireCacheArtifact(artifactType: unknown, shown: string): void {
  if (artifactType !== CACHE_ARTIFACT_TYPE) {
    const type = JSON.stringify(artifactType ?? null);
    throw new NiftyError(
      "NIFTY709",
      `${shown} is not a niftyc cache (its artifactType is ${type})`,
      "give --cache-from the reference a --cache-to wrote, not an image's",
    );
  }
}

/** The blobs the registry did not have, and those whose bytes did not match their digest or size. */
interface LeftOut {
  missing: string[];
  mismatched: string[];
}

/** Each layer the store lacks, downloaded; `result` counts what was there, downloaded or ignored. */
async function pullLayers(
  client: RegistryClient,
  options: PullOptions,
  layers: readonly CacheLayer[],
  result: PullResult,
): Promise<LeftOut> {
  const left: LeftOut = { missing: [], mismatched: [] };
  for (const layer of layers) {
    if (layer.mediaType === RECORDS_TYPE) {
      result.ignoredRecords++;
      continue;
    }
    if (await options.store.has(layer.digest)) {
      result.present++;
      options.onEvent?.({ type: "cache-blob", digest: layer.digest, size: layer.size, action: "have" });
      continue;
    }
    if (layer.size > options.maxBlobBytes) {
      left.mismatched.push(`${layer.digest} (${layer.size} bytes, over the download limit)`);
      continue;
    }
    const pulled = await pullLayer(client, options, layer);
    if (pulled !== "downloaded") {
      left[pulled].push(layer.digest);
      continue;
    }
    result.downloaded++;
    options.onEvent?.({ type: "cache-blob", digest: layer.digest, size: layer.size, action: "downloaded" });
  }
  return left;
}

async function pullLayer(
  client: RegistryClient,
  options: PullOptions,
  layer: CacheLayer,
): Promise<"downloaded" | keyof LeftOut> {
  const { store, target } = options;
  const get = {
    method: "GET" as const,
    url: `/v2/${target.repository}/blobs/${layer.digest}`,
    scopes: [`repository:${target.repository}:pull`],
    // The store checks the digest as it writes; a mismatch keeps nothing. A body is cut at its size.
    sink: async (stream: Readable) =>
      void (await store.putStream((writer) => pipeline(stream, atMost(layer.size), writer), layer.digest)),
  };
  try {
    const r = await client.retrying(`downloading ${layer.digest}`, () => client.request(get));
    if (r.status === 404) return "missing";
    if (r.status !== 200) throw client.unexpected(get, r);
  } catch (error) {
    if (!(error instanceof DigestMismatchError) && !(error instanceof LongerThanSaid)) throw error;
    return "mismatched";
  }
  return "downloaded";
}

/** NIFTY721 for the blobs left out, NIFTY722 for step records an older --cache-to pushed. */
function leftOutWarnings(shown: string, left: LeftOut, ignoredRecords: number): Diagnostic[] {
  const warnings: Diagnostic[] = [];
  const { missing, mismatched } = left;
  if (missing.length > 0) {
    const are = missing.length === 1 ? "is" : "are";
    const why = `it lists ${are} not in the registry (${listed(missing)})`;
    warnings.push(blobsLeftOut(shown, missing.length, why));
  }
  if (mismatched.length > 0) {
    const their = mismatched.length === 1 ? "its" : "their";
    const why = `do not match ${their} digest or size (${listed(mismatched)})`;
    warnings.push(blobsLeftOut(shown, mismatched.length, why));
  }
  if (ignoredRecords > 0) {
    warnings.push({
      severity: "warning",
      code: "NIFTY722",
      message: `${shown} holds step records, which are not trusted: every step runs here, from the cache's blobs`,
      hint: "nothing to do: a shared cache gives downloads, not results; this niftyc's --cache-to leaves them out",
    });
  }
  return warnings;
}

/** The manifest of a cache, or why it is not one (a wrong artifactType is told apart: NIFTY709). */
function parseManifest(body: Buffer): { artifactType?: unknown; layers: CacheLayer[] } | { why: string } {
  let manifest: unknown;
  try {
    manifest = JSON.parse(body.toString("utf8"));
  } catch {
    return { why: "its manifest is not JSON" };
  }
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) {
    return { why: "its manifest is not a JSON object" };
  }
  const m = manifest as { mediaType?: unknown; artifactType?: unknown; layers?: unknown };
  if (m.mediaType !== undefined && m.mediaType !== MANIFEST) {
    return { why: `its manifest has the media type ${shortJson(m.mediaType)}, not ${MANIFEST}` };
  }
  if (m.artifactType !== CACHE_ARTIFACT_TYPE) return { artifactType: m.artifactType, layers: [] };
  if (!Array.isArray(m.layers)) return { why: "its manifest has no list of layers" };
  const layers: CacheLayer[] = [];
  for (const [i, layer] of (m.layers as unknown[]).entries()) {
    const l = (typeof layer === "object" && layer !== null ? layer : {}) as Partial<
      Record<keyof CacheLayer, unknown>
    >;
    if (typeof l.digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(l.digest)) {
      return { why: `layer ${i + 1} has no sha256 digest (${shortJson(l.digest)})` };
    }
    if (typeof l.size !== "number" || !Number.isSafeInteger(l.size) || l.size < 0) {
      return { why: `layer ${i + 1} has no size` };
    }
    if (l.mediaType !== BLOB_TYPE && l.mediaType !== RECORDS_TYPE) {
      return {
        why: `layer ${i + 1} has the media type ${shortJson(l.mediaType)}, which a cache does not hold`,
      };
    }
    layers.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
  }
  return { artifactType: m.artifactType, layers };
}

function unusable(shown: string, why: string): Diagnostic {
  return {
    severity: "warning",
    code: "NIFTY720",
    message: `the cache ${shown} cannot be used: ${why}; building without it`,
    hint: "push the cache again with --cache-to; if nobody should have changed it, find out who can push there",
  };
}

function blobsLeftOut(shown: string, n: number, why: string): Diagnostic {
  const blobs = n === 1 ? "1 blob" : `${n} blobs`;
  return {
    severity: "warning",
    code: "NIFTY721",
    message: `the cache ${shown} is used in part: ${blobs} ${why}; building without ${n === 1 ? "it" : "them"}`,
    hint: "the build fetches what is left out from its sources (or fails with --offline); push the cache again",
  };
}

/** A value from the registry, for a message: JSON, cut short. */
const shortJson = (value: unknown) => (JSON.stringify(value ?? null) ?? "null").slice(0, 80);
const listed = (items: string[]) =>
  items.slice(0, 3).join(", ") + (items.length > 3 ? `, and ${items.length - 3} more` : "");

/** The whole body, or undefined when it is longer than `max` bytes (then no more is read). */
async function readAtMost(stream: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > max) {
      stream.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Passes `size` bytes and fails on one more. */
function atMost(size: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      done(seen > size ? new LongerThanSaid() : null, chunk);
    },
  });
}
