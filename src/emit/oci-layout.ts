// OCI image layout (image-spec 1.1): oci-layout, index.json tagging one
// manifest, and blobs/sha256/ with the config, the manifest and gzip layers.
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { NiftyError } from "../diagnostics/errors.ts";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { replaceDir, stagingDir, writeExact } from "../core/atomic.ts";
import { DigestStream, deterministicGzip } from "./digest-stream.ts";
import { copyBlobChecked } from "../cache/assembled.ts";
import { imageConfigJson, sha256Hex } from "./oci-config.ts";

export const MEDIA_TYPE = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  empty: "application/vnd.oci.empty.v1+json",
  spdx: "application/spdx+json",
} as const;

export interface OciLayoutInput {
  config: ImageConfig;
  /** Uncompressed layer tars, base first; each digest is checked while streaming. */
  layers: LayerFile[];
  /** The tag: org.opencontainers.image.ref.name, e.g. "latest". */
  refName: string;
  /** SPDX JSON: stored as an artifact whose subject is the image (an OCI 1.1 referrer). */
  sbom?: string;
}

export interface OciLayoutResult {
  manifestDigest: string;
  configDigest: string;
  layers: Array<{ digest: string; diffId: string; size: number }>;
  /** The SBOM artifact's manifest, when there is one. */
  sbomManifestDigest?: string;
}

const REF_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$/;

/** Check a layer file against its recorded diff_id while gzip-compressing it into `dest`. */
export async function compressLayer(
  layer: LayerFile,
  dest: string,
): Promise<{ digest: string; size: number }> {
  const raw = new DigestStream();
  const packed = new DigestStream();
  const [gzip, fixHeader] = deterministicGzip();
  await pipeline(
    createReadStream(layer.path),
    raw,
    gzip,
    fixHeader,
    packed,
    createWriteStream(dest, { mode: 0o644 }),
  );
  checkLayer(layer, raw.digest(), raw.size);
  return { digest: packed.digest(), size: packed.size };
}

/** A layer gzipped when it was written: copied (a reflink where the file system has them), its bytes checked. */
async function copyCompressed(
  gzip: NonNullable<LayerFile["gzip"]>,
  dest: string,
): Promise<{ digest: string; size: number }> {
  copyBlobChecked(gzip.path, dest, gzip.digest);
  const { size } = await stat(dest);
  if (size !== gzip.size) {
    throw new NiftyError(
      "NIFTY505",
      `compressed layer ${gzip.path} has ${size} bytes, but the build recorded ${gzip.size}`,
      "the layer file changed after it was built; rebuild",
    );
  }
  return { digest: gzip.digest, size };
}

export function checkLayer(layer: LayerFile, digest: string, size: number): void {
  if (digest !== layer.digest || size !== layer.size) {
    throw new NiftyError(
      "NIFTY505",
      `layer ${layer.path} is ${digest} (${size} bytes), but the build recorded ${layer.digest} (${layer.size} bytes)`,
      "the layer file changed after it was built; rebuild",
    );
  }
}

async function putBlob(blobs: string, json: string): Promise<{ digest: string; size: number }> {
  const hex = sha256Hex(json);
  await writeExact(join(blobs, hex), json);
  return { digest: `sha256:${hex}`, size: Buffer.byteLength(json) };
}

/** Write the layout to `dir` (replacing a previous one as a whole). */
export async function writeOciLayout(dir: string, input: OciLayoutInput): Promise<OciLayoutResult> {
  if (!REF_NAME.test(input.refName)) {
    throw new NiftyError(
      "NIFTY504",
      `invalid image reference name ${JSON.stringify(input.refName)}`,
      "use A-Z a-z 0-9 and - . _ : @ / +",
    );
  }
  const staging = await stagingDir(dir);
  try {
    const blobs = join(staging, "blobs", "sha256");
    await mkdir(blobs, { recursive: true, mode: 0o755 });
    await chmod(join(staging, "blobs"), 0o755);
    await chmod(blobs, 0o755);
    const layers: OciLayoutResult["layers"] = [];
    for (const [i, layer] of input.layers.entries()) {
      const tmp = join(staging, `layer-${i}.tmp`);
      const { digest, size } =
        layer.gzip === undefined ? await compressLayer(layer, tmp) : await copyCompressed(layer.gzip, tmp);
      await chmod(tmp, 0o644);
      await rename(tmp, join(blobs, digest.slice("sha256:".length)));
      layers.push({ digest, diffId: layer.digest, size });
    }
    const config = await putBlob(blobs, imageConfigJson(input.config, input.layers));
    const manifest = await putBlob(
      blobs,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: config.digest, size: config.size },
        layers: layers.map((l) => ({ mediaType: MEDIA_TYPE.layerGzip, digest: l.digest, size: l.size })),
      }),
    );
    const manifests: Array<Record<string, unknown>> = [
      {
        mediaType: MEDIA_TYPE.manifest,
        digest: manifest.digest,
        size: manifest.size,
        annotations: { "org.opencontainers.image.ref.name": input.refName },
      },
    ];
    let sbomManifest: { digest: string; size: number } | undefined;
    if (input.sbom !== undefined) {
      // image-spec 1.1's artifact form: an empty config, the document as the one layer, the image as subject.
      const empty = await putBlob(blobs, "{}");
      const doc = await putBlob(blobs, input.sbom);
      sbomManifest = await putBlob(
        blobs,
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPE.manifest,
          artifactType: MEDIA_TYPE.spdx,
          config: { mediaType: MEDIA_TYPE.empty, digest: empty.digest, size: empty.size },
          layers: [{ mediaType: MEDIA_TYPE.spdx, digest: doc.digest, size: doc.size }],
          subject: { mediaType: MEDIA_TYPE.manifest, digest: manifest.digest, size: manifest.size },
        }),
      );
      manifests.push({
        mediaType: MEDIA_TYPE.manifest,
        digest: sbomManifest.digest,
        size: sbomManifest.size,
        artifactType: MEDIA_TYPE.spdx,
      });
    }
    const index = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests };
    await writeExact(join(staging, "index.json"), JSON.stringify(index));
    await writeExact(join(staging, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await replaceDir(staging, dir, true);
    return {
      manifestDigest: manifest.digest,
      configDigest: config.digest,
      layers,
      ...(sbomManifest ? { sbomManifestDigest: sbomManifest.digest } : {}),
    };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}
