// Signatures where cosign and containers/image look for them: an OCI manifest
// tagged sha256-<hex of the signed digest>.sig, one layer per signature, each
// the simple-signing payload (media type application/vnd.dev.cosign.simplesigning.v1+json)
// with its base64 signature in the dev.cosignproject.cosign/signature annotation.
// Signing again adds a layer; a payload and signature already there are not pushed twice.
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import { RegistryClient, type ClientOptions } from "./client.ts";
import type { LayoutBlob } from "./layout.ts";
import { pushBlob, putManifest, type PushEvent } from "./push.ts";
import type { ImageReference } from "./reference.ts";

export const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const CONFIG = "application/vnd.oci.image.config.v1+json";
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** The most of a signature payload read: a payload is a few hundred bytes. */
const MAX_PAYLOAD = 64 << 10;

export interface SignatureLayer {
  payload: Buffer;
  signature: string;
}

export interface SignatureOptions extends Omit<ClientOptions, "registry" | "onRetry"> {
  target: ImageReference;
  onEvent?: (event: PushEvent) => void;
}

/** The tag cosign and containers/image read a digest's signatures from. */
export function signatureTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The signature manifest's layers, or why it is not one. */
function parseSignatureManifest(text: string): Layer[] | string {
  let m: { mediaType?: unknown; layers?: unknown };
  try {
    m = JSON.parse(text) as typeof m;
  } catch {
    return "it is not JSON";
  }
  if (m === null || typeof m !== "object" || Array.isArray(m)) return "it is not a JSON object";
  if (m.mediaType !== undefined && m.mediaType !== MANIFEST)
    return `its media type is ${JSON.stringify(m.mediaType).slice(0, 80)}`;
  if (!Array.isArray(m.layers)) return "it has no list of layers";
  const layers: Layer[] = [];
  for (const [i, l] of (m.layers as unknown[]).entries()) {
    const layer = (l ?? {}) as Partial<Record<keyof Layer, unknown>>;
    if (typeof layer.digest !== "string" || !DIGEST.test(layer.digest))
      return `layer ${i + 1} has no sha256 digest`;
    if (typeof layer.size !== "number" || !Number.isSafeInteger(layer.size) || layer.size < 0)
      return `layer ${i + 1} has no size`;
    const annotations = layer.annotations;
    const valid =
      annotations === undefined ||
      (typeof annotations === "object" &&
        annotations !== null &&
        Object.values(annotations).every((v) => typeof v === "string"));
    if (!valid) return `layer ${i + 1} has annotations that are not strings`;
    layers.push({
      mediaType: String(layer.mediaType),
      digest: layer.digest,
      size: layer.size,
      ...(annotations ? { annotations: annotations as Record<string, string> } : {}),
    });
  }
  return layers;
}

function junk(shown: string, tag: string, why: string): NiftyError {
  return new NiftyError(
    "NIFTY733",
    `the signature tag ${tag} of ${shown} is not a cosign signature: ${why}`,
    "find out who pushed it; delete the tag, then sign again",
  );
}

async function readManifestLayers(
  client: RegistryClient,
  target: ImageReference,
  tag: string,
): Promise<Layer[] | undefined> {
  const spec = {
    method: "GET" as const,
    url: `/v2/${target.repository}/manifests/${tag}`,
    headers: { accept: MANIFEST },
    scopes: [`repository:${target.repository}:pull`],
  };
  const res = await client.retrying(`reading the signatures ${tag}`, () => client.request(spec));
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw client.unexpected(spec, res);
  const layers = parseSignatureManifest(res.text);
  if (typeof layers === "string") throw junk(`${target.registry}/${target.repository}`, tag, layers);
  return layers;
}

/** Every signature stored for `digest` (none without the tag); each payload checked against its digest. */
export async function readSignatures(options: SignatureOptions, digest: string): Promise<SignatureLayer[]> {
  const { target } = options;
  const client = new RegistryClient({ ...options, registry: target.registry, readOnly: true });
  const tag = signatureTag(digest);
  const shown = `${target.registry}/${target.repository}`;
  try {
    const layers = await readManifestLayers(client, target, tag);
    const found: SignatureLayer[] = [];
    for (const layer of layers ?? []) {
      const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
      if (layer.mediaType !== SIMPLE_SIGNING || signature === undefined) continue;
      if (layer.size > MAX_PAYLOAD) throw junk(shown, tag, `a payload of ${layer.size} bytes`);
      const spec = {
        method: "GET" as const,
        url: `/v2/${target.repository}/blobs/${layer.digest}`,
        scopes: [`repository:${target.repository}:pull`],
      };
      const res = await client.retrying(`reading the signature ${layer.digest}`, () => client.request(spec));
      if (res.status !== 200) throw client.unexpected(spec, res);
      if (sha256(res.bytes) !== layer.digest)
        throw junk(shown, tag, `the payload ${layer.digest} has other bytes`);
      found.push({ payload: res.bytes, signature });
    }
    return found;
  } finally {
    await client.close();
  }
}

/** Add a signature of `digest` to its signature tag (blobs first, the manifest last). */
export async function pushSignature(
  options: SignatureOptions,
  digest: string,
  added: SignatureLayer,
  isOurs: (signature: string) => boolean = () => false,
): Promise<{ tag: string; manifest: string; action: "exists" | "uploaded" }> {
  const { target } = options;
  const client = new RegistryClient({
    ...options,
    registry: target.registry,
    onRetry: (what, attempt, reason) => options.onEvent?.({ type: "retry", what, attempt, reason }),
  });
  const tag = signatureTag(digest);
  const dir = await mkdtemp(join(tmpdir(), "niftyc-signature-"));
  try {
    const layers = (await readManifestLayers(client, target, tag)) ?? [];
    const payloadDigest = sha256(added.payload);
    // The payload is the same each time, its ECDSA signature is not: one that verifies with the key is enough.
    const already = layers.some(
      (l) => l.digest === payloadDigest && isOurs(l.annotations?.[SIGNATURE_ANNOTATION] ?? ""),
    );
    if (!already)
      layers.push({
        mediaType: SIMPLE_SIGNING,
        digest: payloadDigest,
        size: added.payload.length,
        annotations: { [SIGNATURE_ANNOTATION]: added.signature },
      });
    // cosign's config: an empty image whose one diff_id per layer is the payload's digest.
    const config = Buffer.from(
      JSON.stringify({
        architecture: "",
        config: {},
        created: "0001-01-01T00:00:00Z",
        history: layers.map(() => ({ created: "0001-01-01T00:00:00Z" })),
        os: "",
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      }),
    );
    const blobs: LayoutBlob[] = [
      { mediaType: CONFIG, digest: sha256(config), size: config.length, path: join(dir, "config") },
      {
        mediaType: SIMPLE_SIGNING,
        digest: payloadDigest,
        size: added.payload.length,
        path: join(dir, "payload"),
      },
    ];
    await writeFile(blobs[0]!.path, config);
    await writeFile(blobs[1]!.path, added.payload);
    for (const blob of blobs) {
      const action = await pushBlob(client, target.repository, blob, options, []);
      options.onEvent?.({ type: "blob", digest: blob.digest, size: blob.size, ...action });
    }
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: { mediaType: CONFIG, size: config.length, digest: blobs[0]!.digest },
        layers,
      }),
    );
    const manifest = sha256(bytes);
    const { action } = await putManifest(client, target.repository, tag, {
      bytes,
      digest: manifest,
      mediaType: MANIFEST,
    });
    return { tag, manifest, action };
  } finally {
    await client.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The digest a tag (or digest) names now: its manifest fetched and hashed, so what is signed or
 * verified is what the registry serves, never only what its Docker-Content-Digest header says.
 */
export async function resolveDigest(options: SignatureOptions): Promise<string> {
  const { target } = options;
  const client = new RegistryClient({ ...options, registry: target.registry, readOnly: true });
  const reference = target.digest ?? target.tag!;
  const shown = `${target.registry}/${target.repository}${target.digest ? `@${target.digest}` : `:${target.tag}`}`;
  try {
    const accept = [
      MANIFEST,
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json",
      "application/vnd.docker.distribution.manifest.list.v2+json",
    ].join(", ");
    const spec = {
      method: "GET" as const,
      url: `/v2/${target.repository}/manifests/${reference}`,
      headers: { accept },
      scopes: [`repository:${target.repository}:pull`],
    };
    const res = await client.retrying(`looking up ${reference}`, () => client.request(spec));
    if (res.status === 404)
      throw new NiftyError(
        "NIFTY714",
        `${shown} is not in the registry: it has no manifest of that ${target.digest ? "digest" : "tag"}`,
        "check the reference (niftyc push prints where an image landed), or push the image first",
      );
    if (res.status !== 200) throw client.unexpected(spec, res);
    const digest = sha256(res.bytes);
    const said = res.headers["docker-content-digest"];
    const claimed = target.digest ?? (typeof said === "string" && said.startsWith("sha256:") ? said : digest);
    if (digest !== claimed)
      throw new NiftyError(
        "NIFTY712",
        `${target.registry}'s answer to GET /v2/${target.repository}/manifests/${reference} cannot be read: the manifest it sent is ${digest}, not ${claimed}`,
        "check the registry; nothing was signed or verified",
      );
    return digest;
  } finally {
    await client.close();
  }
}
