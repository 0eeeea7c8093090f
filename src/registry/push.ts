// Pushing an OCI layout's image: every blob first (skipped when the registry
// has it, mounted when it is known in another repository of the registry,
// else uploaded whole or in chunks), the manifest last, so a registry never
// holds a manifest whose blobs it lacks. Pushing the same image again sends
// only HEAD requests.
import { createReadStream } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Transform } from "node:stream";
import { writeFileAtomic } from "../core/atomic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { RegistryClient, pushScope, type ClientOptions, type Response } from "./client.ts";
import type { LayoutBlob } from "./layout.ts";
import { readLayout, readLayoutIndex, type LayoutImage, type LayoutIndex } from "./layout.ts";
import { formatReference, type ImageReference } from "./reference.ts";

export type PushEvent =
  | { type: "blob"; digest: string; size: number; action: "exists" | "mounted" | "uploaded"; from?: string }
  | { type: "upload-progress"; digest: string; sent: number; total: number }
  | { type: "retry"; what: string; attempt: number; reason: string }
  | { type: "manifest"; digest: string; action: "exists" | "uploaded" }
  | {
      type: "referrer";
      digest: string;
      artifactType: string;
      via: "referrers-api" | "tag-schema";
      action: "exists" | "uploaded";
    };

export interface PushOptions extends Omit<ClientOptions, "registry" | "onRetry"> {
  /** The OCI layout directory. */
  layout: string;
  /** The layout's ref name to push; default its only image. */
  refName?: string;
  target: ImageReference;
  /** Blobs larger than this go up in PATCH chunks of this size. Default 32 MiB. */
  chunkSize?: number;
  /** A file remembering which repositories of this registry hold which blobs, for mounts. */
  knownBlobsFile?: string;
  /** Files pushed as referrers of the image (of the index, for several platforms) beside the layout's own (the provenance). */
  attach?: import("./attach.ts").Attachment[];
  /** For several platforms: files pushed as referrers of each platform's image, by its manifest's digest. */
  attachEach?: Readonly<Record<string, import("./attach.ts").Attachment[]>>;
  onEvent?: (event: PushEvent) => void;
}

export interface PushResult {
  /** registry/repository@sha256:… */
  pushed: string;
  digest: string;
  config: string;
  layers: string[];
  /** Artifacts pushed with the image as subject (the SBOM): their manifest digests and how a client finds them. */
  referrers: Array<{ digest: string; artifactType: string; via: "referrers-api" | "tag-schema" }>;
  /** Blobs sent in upload requests (0 when the registry had everything). */
  uploaded: number;
  mounted: number;
  existing: number;
}

type KnownBlobs = Record<string, string[]>;

async function readKnown(file: string | undefined): Promise<KnownBlobs> {
  if (file === undefined) return {};
  try {
    const parsed = JSON.parse(await readFile(file, "utf8")) as unknown;
    return parsed !== null && typeof parsed === "object" ? (parsed as KnownBlobs) : {};
  } catch {
    return {};
  }
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function pushImage(options: PushOptions): Promise<PushResult> {
  const index = await readLayoutIndex(options.layout, options.refName);
  if (index !== undefined) return pushIndex(options, index);
  return pushLayoutImage(options, await readLayout(options.layout, options.refName));
}

/**
 * A multi-platform image: each platform's image by its digest, then the index under the tag, so a
 * registry never holds an index whose manifests it lacks.
 */
async function pushIndex(options: PushOptions, index: LayoutIndex): Promise<PushResult> {
  const { target } = options;
  if (target.digest !== undefined && target.digest !== index.index.digest) {
    const names = `${formatReference(target)} names the digest ${target.digest}`;
    throw new NiftyError(
      "NIFTY700",
      `${names}, but the image index is ${index.index.digest}`,
      "push to a tag (REGISTRY/REPOSITORY:TAG), or name the index's own digest",
    );
  }
  const counts = { uploaded: 0, mounted: 0, existing: 0 };
  const layers: string[] = [];
  const referrers: PushResult["referrers"] = [];
  for (const image of index.images) {
    const { tag: _, ...byDigest } = target;
    const byItsDigest = { ...byDigest, digest: image.manifest.digest };
    const attach = options.attachEach?.[image.manifest.digest] ?? [];
    const one = await pushLayoutImage({ ...options, target: byItsDigest, attach }, image);
    counts.uploaded += one.uploaded;
    counts.mounted += one.mounted;
    counts.existing += one.existing;
    layers.push(...one.layers);
    referrers.push(...one.referrers);
  }
  const client = new RegistryClient({ ...options, registry: target.registry });
  // The index's own referrers (the provenance of every platform) after the index.
  const attached = await (await import("./attach.ts")).attachments(options.attach ?? [], index.index);
  try {
    const reference = target.tag ?? target.digest!;
    const { action } = await putManifest(client, target.repository, reference, index.index);
    options.onEvent?.({ type: "manifest", digest: index.index.digest, action });
    const known = await readKnown(options.knownBlobsFile);
    const subject = index.index.digest;
    referrers.push(...(await pushReferrers(client, subject, attached.referrers, options, known, counts)));
  } finally {
    await client.close();
    await attached.dispose();
  }
  return {
    pushed: `${target.registry}/${target.repository}@${index.index.digest}`,
    digest: index.index.digest,
    config: index.images[0]?.config.digest ?? "",
    layers,
    referrers,
    ...counts,
  };
}

async function pushLayoutImage(options: PushOptions, image: LayoutImage): Promise<PushResult> {
  const { target } = options;
  const tagOrDigest = target.tag ?? target.digest;
  if (target.digest !== undefined && target.digest !== image.manifest.digest) {
    throw new NiftyError(
      "NIFTY700",
      `${formatReference(target)} names the digest ${target.digest}, but the image is ${image.manifest.digest}`,
      "push to a tag (REGISTRY/REPOSITORY:TAG), or name the image's own digest",
    );
  }
  const client = new RegistryClient({
    ...options,
    registry: target.registry,
    onRetry: (what, attempt, reason) => options.onEvent?.({ type: "retry", what, attempt, reason }),
  });
  const known = await readKnown(options.knownBlobsFile);
  const counts = { uploaded: 0, mounted: 0, existing: 0 };
  const referrers: PushResult["referrers"] = [];
  const attached = await (await import("./attach.ts")).attachments(options.attach ?? [], image.manifest);
  image.referrers.push(...attached.referrers);
  try {
    for (const blob of [image.config, ...image.layers]) {
      const action = await pushBlob(client, target.repository, blob, options, known[blob.digest] ?? []);
      counts[action.action === "exists" ? "existing" : action.action]++;
      options.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size, ...action });
      const repos = new Set(known[blob.digest] ?? []);
      repos.add(target.repository);
      known[blob.digest] = [...repos].sort();
    }
    const { action } = await putManifest(client, target.repository, tagOrDigest!, image.manifest);
    options.onEvent?.({ type: "manifest", digest: image.manifest.digest, action });
    // Referrers after their subject: a registry may refuse a subject it does not have.
    const subject = image.manifest.digest;
    referrers.push(...(await pushReferrers(client, subject, image.referrers, options, known, counts)));
  } finally {
    await client.close();
    await attached.dispose();
  }
  if (options.knownBlobsFile !== undefined) {
    // Only digests and repository names: nothing about credentials.
    await mkdir(dirname(options.knownBlobsFile), { recursive: true });
    await writeFileAtomic(options.knownBlobsFile, JSON.stringify(known, Object.keys(known).sort()) + "\n");
  }
  return {
    pushed: `${target.registry}/${target.repository}@${image.manifest.digest}`,
    digest: image.manifest.digest,
    config: image.config.digest,
    layers: image.layers.map((l) => l.digest),
    referrers,
    ...counts,
  };
}

/** Each referrer's blobs, its manifest, and what makes a client find it (the API, or the tag schema). */
async function pushReferrers(
  client: RegistryClient,
  subject: string,
  list: LayoutImage["referrers"],
  options: PushOptions,
  known: KnownBlobs,
  counts: { uploaded: number; mounted: number; existing: number },
): Promise<PushResult["referrers"]> {
  const repository = options.target.repository;
  const referrers: PushResult["referrers"] = [];
  for (const r of list) {
    for (const blob of r.blobs) {
      const a = await pushBlob(client, repository, blob, options, known[blob.digest] ?? []);
      counts[a.action === "exists" ? "existing" : a.action]++;
      options.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size, ...a });
      known[blob.digest] = [...new Set([...(known[blob.digest] ?? []), repository])].sort();
    }
    const manifest = { bytes: r.bytes, digest: r.descriptor.digest, mediaType: r.descriptor.mediaType };
    const pushed = await putManifest(client, repository, r.descriptor.digest, manifest);
    const via = await linkReferrer(client, repository, subject, r.descriptor, pushed.subjectHandled);
    referrers.push({ digest: r.descriptor.digest, artifactType: r.descriptor.artifactType!, via: via.via });
    options.onEvent?.({
      type: "referrer",
      digest: r.descriptor.digest,
      artifactType: r.descriptor.artifactType!,
      via: via.via,
      action: pushed.action === "exists" && via.action === "exists" ? "exists" : "uploaded",
    });
  }
  return referrers;
}

async function blobExists(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const spec = {
    method: "HEAD" as const,
    url: `/v2/${repository}/blobs/${digest}`,
    scopes: [pushScope(repository)],
  };
  const res = await client.request(spec);
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw client.unexpected(spec, res);
}

export async function pushBlob(
  client: RegistryClient,
  repository: string,
  blob: LayoutBlob,
  options: Pick<PushOptions, "chunkSize" | "onEvent">,
  knownIn: string[],
): Promise<{ action: "exists" | "mounted" | "uploaded"; from?: string }> {
  const chunkSize = options.chunkSize ?? 32 * 1024 * 1024;
  // An upload session outlives a dropped chunk: the next attempt resumes it.
  let session: { location: string; offset: number } | undefined;
  return client
    .retrying(`pushing ${blob.digest}`, async () => {
      if (session === undefined) {
        if (await blobExists(client, repository, blob.digest)) return { action: "exists" as const };
        for (const from of knownIn.filter((r) => r !== repository)) {
          const spec = {
            method: "POST" as const,
            url: `/v2/${repository}/blobs/uploads/?mount=${blob.digest}&from=${encodeURIComponent(from)}`,
            headers: { "content-length": "0" },
            scopes: [pushScope(repository), `repository:${from}:pull`],
          };
          const res = await client.request(spec);
          if (res.status === 201) return { action: "mounted" as const, from };
          if (res.status === 202 && header(res, "location")) {
            // Not mountable after all: the registry opened an ordinary upload instead.
            session = { location: header(res, "location")!, offset: 0 };
            break;
          }
          if (res.status !== 404 && res.status !== 403) throw client.unexpected(spec, res);
        }
        session ??= { location: await startUpload(client, repository), offset: 0 };
      } else {
        session = await resume(client, repository, session);
      }
      if (blob.size <= chunkSize && session.offset === 0) {
        await finish(client, repository, session.location, blob, 0);
      } else {
        while (session.offset < blob.size) {
          const end: number = Math.min(session.offset + chunkSize, blob.size) - 1;
          const spec = {
            method: "PATCH" as const,
            url: session.location,
            headers: {
              "content-type": "application/octet-stream",
              "content-range": `${session.offset}-${end}`,
              "content-length": String(end - session.offset + 1),
            },
            body: () => fileRange(blob, session!.offset, end, options),
            scopes: [pushScope(repository)],
          };
          const res = await client.request(spec);
          if (res.status === 416) {
            // The registry holds other bytes than we thought: start this blob again.
            session = { location: await startUpload(client, repository), offset: 0 };
            continue;
          }
          if (res.status !== 202) throw client.unexpected(spec, res);
          session = { location: header(res, "location") ?? session.location, offset: end + 1 };
        }
        await finish(client, repository, session.location, blob, blob.size);
      }
      session = undefined;
      return { action: "uploaded" as const };
    })
    .catch((error) => {
      session = undefined;
      throw error;
    });
}

async function startUpload(client: RegistryClient, repository: string): Promise<string> {
  const spec = {
    method: "POST" as const,
    url: `/v2/${repository}/blobs/uploads/`,
    headers: { "content-length": "0" },
    scopes: [pushScope(repository)],
  };
  const res = await client.request(spec);
  const location = header(res, "location");
  if (res.status !== 202 || !location) throw client.unexpected(spec, res);
  return location;
}

/** Where a dropped upload stands: the registry's Range, or a fresh session when it forgot it. */
async function resume(
  client: RegistryClient,
  repository: string,
  session: { location: string; offset: number },
): Promise<{ location: string; offset: number }> {
  const spec = { method: "GET" as const, url: session.location, scopes: [pushScope(repository)] };
  const res = await client.request(spec);
  if (res.status === 204) {
    // distribution says "0-0" for both nothing and one byte: take nothing; a wrong start is refused (416) and starts afresh.
    const range = /^(?:bytes=)?0-(\d+)$/.exec(header(res, "range") ?? "");
    const end = range ? Number(range[1]) : 0;
    return { location: header(res, "location") ?? session.location, offset: end === 0 ? 0 : end + 1 };
  }
  return { location: await startUpload(client, repository), offset: 0 };
}

/** PUT ?digest=: with the whole blob (monolithic) or, after chunks, with none. */
async function finish(
  client: RegistryClient,
  repository: string,
  location: string,
  blob: LayoutBlob,
  from: number,
): Promise<void> {
  const url = client.resolve(location, "PUT");
  url.searchParams.set("digest", blob.digest);
  const rest = blob.size - from;
  const spec = {
    method: "PUT" as const,
    url: url.toString(),
    headers: { "content-type": "application/octet-stream", "content-length": String(rest) },
    body: () => (rest > 0 ? fileRange(blob, from, blob.size - 1, undefined) : undefined),
    scopes: [pushScope(repository)],
  };
  const res = await client.request(spec);
  if (res.status !== 201) throw client.unexpected(spec, res);
}

function fileRange(
  blob: LayoutBlob,
  start: number,
  end: number,
  options: Pick<PushOptions, "onEvent"> | undefined,
) {
  let sent = start;
  const stream = createReadStream(blob.path, { start, end });
  if (!options?.onEvent) return stream;
  const onEvent = options.onEvent;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      onEvent({ type: "upload-progress", digest: blob.digest, sent, total: blob.size });
      done(null, chunk);
    },
  });
  stream.on("error", (e) => counter.destroy(e));
  return stream.pipe(counter);
}

export async function putManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  manifest: { bytes: Buffer; digest: string; mediaType: string },
): Promise<{ action: "exists" | "uploaded"; subjectHandled: boolean }> {
  return client.retrying(`pushing the manifest ${manifest.digest}`, async () => {
    const head = {
      method: "HEAD" as const,
      url: `/v2/${repository}/manifests/${reference}`,
      headers: { accept: manifest.mediaType },
      scopes: [pushScope(repository)],
    };
    const existing = await client.request(head);
    if (existing.status === 200 && header(existing, "docker-content-digest") === manifest.digest)
      return { action: "exists" as const, subjectHandled: false };
    const spec = {
      method: "PUT" as const,
      url: `/v2/${repository}/manifests/${reference}`,
      headers: { "content-type": manifest.mediaType, "content-length": String(manifest.bytes.length) },
      body: () => manifest.bytes,
      scopes: [pushScope(repository)],
    };
    const res = await client.request(spec);
    if (res.status !== 201) throw client.unexpected(spec, res);
    const digest = header(res, "docker-content-digest");
    if (digest !== undefined && digest !== manifest.digest) {
      throw new NiftyError(
        "NIFTY703",
        `${client.registry} stored the manifest as ${digest}, not ${manifest.digest}`,
        "the registry rewrote the manifest; push to a registry that keeps manifests as given",
      );
    }
    // distribution-spec 1.1: OCI-Subject says the registry indexed the subject itself.
    return { action: "uploaded" as const, subjectHandled: header(res, "oci-subject") !== undefined };
  });
}

const INDEX = "application/vnd.oci.image.index.v1+json";

/**
 * Make a referrer findable: a registry with the referrers API lists it by
 * itself; for others (distribution 2.8) the spec's fallback is an image index
 * tagged sha256-<hex of the subject> that lists every referrer.
 */
async function linkReferrer(
  client: RegistryClient,
  repository: string,
  subject: string,
  referrer: import("./layout.ts").Descriptor,
  subjectHandled: boolean,
): Promise<{ via: "referrers-api" | "tag-schema"; action: "exists" | "uploaded" }> {
  return client.retrying(`listing the referrer ${referrer.digest}`, async () => {
    if (subjectHandled) return { via: "referrers-api" as const, action: "uploaded" as const };
    const api = {
      method: "GET" as const,
      url: `/v2/${repository}/referrers/${subject}`,
      headers: { accept: INDEX },
      scopes: [pushScope(repository)],
    };
    const listed = await client.request(api);
    if (
      listed.status === 200 &&
      /application\/vnd\.oci\.image\.index\.v1\+json/.test(header(listed, "content-type") ?? "")
    ) {
      return { via: "referrers-api" as const, action: "exists" as const };
    }
    const tag = subject.replace(":", "-");
    const get = {
      method: "GET" as const,
      url: `/v2/${repository}/manifests/${tag}`,
      headers: { accept: INDEX },
      scopes: [pushScope(repository)],
    };
    const current = await client.request(get);
    let manifests: Array<Record<string, unknown>> = [];
    if (current.status === 200) {
      let parsed: { manifests?: unknown } | undefined;
      try {
        parsed = JSON.parse(current.text) as typeof parsed;
      } catch {}
      const list = parsed !== null && typeof parsed === "object" ? (parsed.manifests ?? []) : undefined;
      if (!Array.isArray(list) || !list.every((m) => m !== null && typeof m === "object")) {
        throw new NiftyError(
          "NIFTY712",
          `${client.registry}'s answer to GET /v2/${repository}/manifests/${tag} cannot be read: not an image index`,
          "check the registry; delete the tag if it holds something else than the referrers' index",
        );
      }
      manifests = list as Array<Record<string, unknown>>;
    } else if (current.status !== 404) {
      throw client.unexpected(get, current);
    }
    if (manifests.some((m) => m.digest === referrer.digest))
      return { via: "tag-schema" as const, action: "exists" as const };
    manifests.push({
      mediaType: referrer.mediaType,
      digest: referrer.digest,
      size: referrer.size,
      artifactType: referrer.artifactType,
    });
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }));
    const put = {
      method: "PUT" as const,
      url: `/v2/${repository}/manifests/${tag}`,
      headers: { "content-type": INDEX, "content-length": String(bytes.length) },
      body: () => bytes,
      scopes: [pushScope(repository)],
    };
    const res = await client.request(put);
    if (res.status !== 201) throw client.unexpected(put, res);
    return { via: "tag-schema" as const, action: "uploaded" as const };
  });
}
