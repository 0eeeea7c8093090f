// A build cache in a registry: the blobs a build's steps need (downloads,
// .debs, every file's bytes) and its step records, as one OCI artifact
// (artifactType application/vnd.niftyc.cache.v1). --cache-to pushes it after
// a build; --cache-from pulls what the local store lacks before one, so
// another machine replays the steps offline and gets the same digest.
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import type { Store } from "../cache/store.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { RegistryClient, type ClientOptions } from "./client.ts";
import type { LayoutBlob } from "./layout.ts";
import { pushBlob, putManifest, type PushEvent } from "./push.ts";
import type { ImageReference } from "./reference.ts";

export const CACHE_ARTIFACT_TYPE = "application/vnd.niftyc.cache.v1";
const RECORDS_TYPE = "application/vnd.niftyc.cache.records.v1+json";
const BLOB_TYPE = "application/octet-stream";
const EMPTY = { mediaType: "application/vnd.oci.empty.v1+json", digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size: 2 };
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

export interface CacheShareOptions extends Omit<ClientOptions, "registry" | "onRetry"> {
  store: Store;
  target: ImageReference;
  onEvent?: (event: PushEvent) => void;
}

/** Step records travel as their files are: the format number inside, read back only if it matches. */
interface RecordsLayer {
  steps: Record<string, unknown>;
}

export async function pushCache(options: CacheShareOptions & { blobs: readonly string[]; stepKeys: readonly string[] }): Promise<{ digest: string; blobs: number; records: number }> {
  const { store, target } = options;
  const records: RecordsLayer = { steps: {} };
  for (const key of [...new Set(options.stepKeys)].sort()) {
    const raw = await store.readJson("steps", key);
    if (raw !== undefined) records.steps[key] = raw;
  }
  const recordsBlob = await store.putBuffer(Buffer.from(JSON.stringify(records)));
  const blobs: LayoutBlob[] = [{ mediaType: EMPTY.mediaType, digest: EMPTY.digest, size: 2, path: (await store.putBuffer(Buffer.from("{}"))).path },
    { mediaType: RECORDS_TYPE, digest: recordsBlob.digest, size: recordsBlob.size, path: recordsBlob.path }];
  for (const digest of [...new Set(options.blobs)].sort()) {
    const info = await store.stat(digest);
    if (info) blobs.push({ mediaType: BLOB_TYPE, digest, size: info.size, path: info.path });
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: EMPTY,
    layers: blobs.slice(1).map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size })),
  }));
  const { createHash } = await import("node:crypto");
  const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
  const client = new RegistryClient({ ...options, registry: target.registry, onRetry: (what, attempt, reason) => options.onEvent?.({ type: "retry", what, attempt, reason }) });
  try {
    for (const blob of blobs) {
      const action = await pushBlob(client, target.repository, blob, options, []);
      options.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size, ...action });
    }
    const { action } = await putManifest(client, target.repository, target.tag ?? digest, { bytes: manifest, digest, mediaType: MANIFEST });
    options.onEvent?.({ type: "manifest", digest, action });
  } finally {
    await client.close();
  }
  return { digest, blobs: blobs.length - 2, records: Object.keys(records.steps).length };
}

export type PullEvent = { type: "cache-blob"; digest: string; size: number; action: "have" | "downloaded" } | { type: "retry"; what: string; attempt: number; reason: string };

/** Bring the artifact's blobs and records into the store; undefined when the tag does not exist. */
export async function pullCache(options: Omit<CacheShareOptions, "onEvent"> & { onEvent?: (e: PullEvent) => void }): Promise<{ digest: string; downloaded: number; present: number; records: number } | undefined> {
  const { store, target } = options;
  const client = new RegistryClient({ ...options, registry: target.registry, onRetry: (what, attempt, reason) => options.onEvent?.({ type: "retry", what, attempt, reason }) });
  try {
    const reference = target.digest ?? target.tag!;
    const spec = { method: "GET" as const, url: `/v2/${target.repository}/manifests/${reference}`, headers: { accept: MANIFEST }, scopes: [`repository:${target.repository}:pull`] };
    const res = await client.retrying(`reading the cache ${reference}`, () => client.request(spec));
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw client.unexpected(spec, res);
    const manifest = JSON.parse(res.text) as { artifactType?: string; layers?: Array<{ mediaType: string; digest: string; size: number }> };
    if (manifest.artifactType !== CACHE_ARTIFACT_TYPE) {
      throw new NiftyError("NIFTY709", `${target.registry}/${target.repository}:${reference} is not a niftyc cache (its artifactType is ${JSON.stringify(manifest.artifactType ?? null)})`,
        "give --cache-from the reference a --cache-to wrote, not an image's");
    }
    let downloaded = 0;
    let present = 0;
    let records = 0;
    for (const layer of manifest.layers ?? []) {
      if (!/^sha256:[0-9a-f]{64}$/.test(layer.digest)) throw client.unexpected(spec, { ...res, text: `a layer has the digest ${JSON.stringify(layer.digest)}` });
      if (await store.has(layer.digest)) {
        present++;
        options.onEvent?.({ type: "cache-blob", digest: layer.digest, size: layer.size, action: "have" });
      } else {
        await client.retrying(`downloading ${layer.digest}`, async () => {
          const get = { method: "GET" as const, url: `/v2/${target.repository}/blobs/${layer.digest}`, scopes: [`repository:${target.repository}:pull`],
            // The store checks the digest as it writes; a mismatch keeps nothing.
            sink: async (body: Readable) => void (await store.putStream((writer) => pipeline(body, writer), layer.digest)) };
          const r = await client.request(get);
          if (r.status !== 200) throw client.unexpected(get, r);
        });
        downloaded++;
        options.onEvent?.({ type: "cache-blob", digest: layer.digest, size: layer.size, action: "downloaded" });
      }
      if (layer.mediaType === RECORDS_TYPE) {
        const { readFile } = await import("node:fs/promises");
        const parsed = JSON.parse(await readFile(store.blobPath(layer.digest), "utf8")) as RecordsLayer;
        for (const [key, raw] of Object.entries(parsed.steps ?? {})) {
          // A local record wins: it was made here.
          if ((await store.readJson("steps", key)) !== undefined) continue;
          await store.writeJson("steps", key, raw);
          records++;
        }
      }
    }
    return { digest: `sha256:${(await import("node:crypto")).createHash("sha256").update(res.text).digest("hex")}`, downloaded, present, records };
  } finally {
    await client.close();
  }
}

