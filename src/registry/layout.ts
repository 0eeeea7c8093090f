// Reading an OCI image layout (what src/emit/oci-layout.ts writes) for a push:
// the tagged manifest's exact bytes, checked against its digest, and the
// blobs it names, each a file of the size the manifest gives.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface LayoutBlob extends Descriptor {
  path: string;
}

export interface LayoutImage {
  manifest: { bytes: Buffer; digest: string; mediaType: string };
  config: LayoutBlob;
  layers: LayoutBlob[];
  /** Artifacts whose subject is the image (an SBOM), each with its manifest and blobs. */
  referrers: Array<{ descriptor: Descriptor; bytes: Buffer; blobs: LayoutBlob[] }>;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function damaged(dir: string, why: string): never {
  throw new NiftyError("NIFTY708", `the OCI layout ${dir} is damaged: ${why}`, "build again to rewrite it");
}

interface ManifestJson {
  config?: Descriptor;
  layers?: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
}

async function readManifest(dir: string, d: Descriptor): Promise<{ bytes: Buffer; json: ManifestJson }> {
  if (!DIGEST.test(d.digest)) damaged(dir, `a descriptor has the digest ${JSON.stringify(d.digest)}`);
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, "blobs", "sha256", d.digest.slice(7)));
  } catch {
    return damaged(dir, `the manifest ${d.digest} is missing`);
  }
  if (`sha256:${createHash("sha256").update(bytes).digest("hex")}` !== d.digest)
    damaged(dir, `the manifest ${d.digest} has other bytes`);
  return { bytes, json: JSON.parse(bytes.toString("utf8")) as ManifestJson };
}

async function blob(dir: string, d: Descriptor | undefined): Promise<LayoutBlob> {
  if (!d || !DIGEST.test(d.digest) || !(d.size >= 0)) return damaged(dir, "a manifest has a bad descriptor");
  const path = join(dir, "blobs", "sha256", d.digest.slice(7));
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) damaged(dir, `the blob ${d.digest} is missing`);
  if (st.size !== d.size) damaged(dir, `the blob ${d.digest} is ${st.size} bytes, not ${d.size}`);
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, path };
}

/** An image index of several platforms' manifests (what a multi-platform build writes), with each image. */
export interface LayoutIndex {
  index: { bytes: Buffer; digest: string; mediaType: string };
  images: LayoutImage[];
}

const INDEX = "application/vnd.oci.image.index.v1+json";

/** The image index tagged `refName` (or the layout's only image entry), when it is an index; else undefined. */
export async function readLayoutIndex(dir: string, refName?: string): Promise<LayoutIndex | undefined> {
  let top: { manifests?: Descriptor[] };
  try {
    top = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as typeof top;
  } catch {
    return undefined;
  }
  const entries = (top.manifests ?? []).filter((m) => m.artifactType === undefined);
  const chosen =
    refName === undefined && entries.length === 1
      ? entries[0]
      : entries.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === refName);
  if (chosen?.mediaType !== INDEX) return undefined;
  const { bytes } = await readManifest(dir, chosen);
  const parsed = JSON.parse(bytes.toString("utf8")) as { manifests?: Descriptor[] };
  const images: LayoutImage[] = [];
  for (const d of parsed.manifests ?? []) {
    const { bytes: manifest, json } = await readManifest(dir, d);
    const config = await blob(dir, json.config);
    const layers = await Promise.all((json.layers ?? []).map((l) => blob(dir, l)));
    const referrers = await referrersOf(dir, top.manifests ?? [], d.digest);
    const own = { bytes: manifest, digest: d.digest, mediaType: d.mediaType };
    images.push({ manifest: own, config, layers, referrers });
  }
  return { index: { bytes, digest: chosen.digest, mediaType: INDEX }, images };
}

/** The artifacts index.json lists whose subject is `subject` (an image's SBOM), with their blobs. */
async function referrersOf(
  dir: string,
  listed: readonly Descriptor[],
  subject: string,
): Promise<LayoutImage["referrers"]> {
  const referrers: LayoutImage["referrers"] = [];
  for (const d of listed) {
    if (d.artifactType === undefined) continue;
    const m = await readManifest(dir, d);
    if (m.json.subject?.digest !== subject) continue;
    const { mediaType, digest, size, artifactType } = d;
    const descriptor: Descriptor = { mediaType, digest, size, artifactType };
    const layers = await Promise.all((m.json.layers ?? []).map((l) => blob(dir, l)));
    const blobs = [await blob(dir, m.json.config), ...layers];
    referrers.push({ descriptor, bytes: m.bytes, blobs });
  }
  return referrers;
}

/** The image manifest tagged `refName` (or the index's only image), with its blobs. */
export async function readLayout(dir: string, refName?: string): Promise<LayoutImage> {
  let index: { manifests?: Descriptor[] };
  try {
    index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as typeof index;
  } catch {
    throw new NiftyError(
      "NIFTY704",
      `${dir} is not an OCI image layout (no readable index.json)`,
      "build with the oci format (the default; --format oci,...) or give the recipe to push",
    );
  }
  const manifests = index.manifests ?? [];
  const images = manifests.filter((m) => m.artifactType === undefined);
  const chosen =
    refName === undefined && images.length === 1
      ? images[0]
      : images.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === refName);
  if (!chosen)
    damaged(
      dir,
      refName === undefined ? "it has no single image manifest" : `it has no image tagged ${refName}`,
    );
  const { bytes, json } = await readManifest(dir, chosen);
  const config = await blob(dir, json.config);
  const layers = await Promise.all((json.layers ?? []).map((l) => blob(dir, l)));
  const referrers: LayoutImage["referrers"] = [];
  for (const d of manifests) {
    if (d === chosen || d.artifactType === undefined) continue;
    const m = await readManifest(dir, d);
    if (m.json.subject?.digest !== chosen.digest) continue;
    const descriptor: Descriptor = {
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
      artifactType: d.artifactType,
    };
    referrers.push({
      descriptor,
      bytes: m.bytes,
      blobs: [
        await blob(dir, m.json.config),
        ...(await Promise.all((m.json.layers ?? []).map((l) => blob(dir, l)))),
      ],
    });
  }
  return {
    manifest: { bytes, digest: chosen.digest, mediaType: chosen.mediaType },
    config,
    layers,
    referrers,
  };
}
