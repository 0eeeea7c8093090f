// Files pushed beside an image as artifacts whose subject is the image (the
// provenance): image-spec 1.1's artifact form, an empty config and the file as
// the one layer, made here as referrers of the layout's image.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LayoutImage } from "./layout.ts";

export interface Attachment {
  /** The artifact's type and its layer's media type. */
  artifactType: string;
  path: string;
}

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const EMPTY = "application/vnd.oci.empty.v1+json";
const sha256 = (bytes: Buffer | string) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** The attachments as referrers of `subject`; `dispose` removes the scratch files once pushed. */
export async function attachments(
  list: readonly Attachment[],
  subject: LayoutImage["manifest"],
): Promise<{ referrers: LayoutImage["referrers"]; dispose: () => Promise<void> }> {
  if (list.length === 0) return { referrers: [], dispose: async () => {} };
  const dir = await mkdtemp(join(tmpdir(), "niftyc-attach-"));
  const empty = { mediaType: EMPTY, digest: sha256("{}"), size: 2, path: join(dir, "empty") };
  await writeFile(empty.path, "{}");
  const referrers: LayoutImage["referrers"] = [];
  for (const a of list) {
    const bytes = await readFile(a.path);
    const layer = { mediaType: a.artifactType, digest: sha256(bytes), size: bytes.length, path: a.path };
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        artifactType: a.artifactType,
        config: { mediaType: EMPTY, digest: empty.digest, size: 2 },
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length },
      }),
    );
    const descriptor = {
      mediaType: MANIFEST,
      digest: sha256(manifest),
      size: manifest.length,
      artifactType: a.artifactType,
    };
    referrers.push({ descriptor, bytes: manifest, blobs: [empty, layer] });
  }
  return { referrers, dispose: () => rm(dir, { recursive: true, force: true }) };
}
