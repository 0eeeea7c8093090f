// Reading back what a push left: an image's referrer of one artifact type (the
// provenance) through the referrers API or the sha256-<hex> tag's index, and an
// image's layers, each checked against its digest as it is stored.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NiftyError } from "../diagnostics/errors.ts";
import { RegistryClient, type ClientOptions } from "./client.ts";
import type { ImageReference } from "./reference.ts";

const INDEX = "application/vnd.oci.image.index.v1+json";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface ReadOptions extends Omit<ClientOptions, "registry" | "onRetry"> {
  target: ImageReference;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function unreadable(client: RegistryClient, what: string, why: string): NiftyError {
  return new NiftyError(
    "NIFTY712",
    `${client.registry}'s answer to GET ${what} cannot be read: ${why}`,
    "check the registry; the image may not have been pushed by niftyc",
  );
}

async function getJson(
  client: RegistryClient,
  repo: string,
  path: string,
  accept: string,
): Promise<{ status: number; json?: unknown; bytes?: Buffer }> {
  const spec = {
    method: "GET" as const,
    url: `/v2/${repo}/${path}`,
    headers: { accept },
    scopes: [`repository:${repo}:pull`],
  };
  const res = await client.retrying(`reading ${path}`, () => client.request(spec));
  if (res.status === 404) return { status: 404 };
  if (res.status !== 200) throw client.unexpected(spec, res);
  try {
    return { status: 200, json: JSON.parse(res.text), bytes: res.bytes };
  } catch {
    throw unreadable(client, `/v2/${repo}/${path}`, "not JSON");
  }
}

function descriptors(
  value: unknown,
  key: "manifests" | "layers",
): Array<{ digest: string; artifactType?: unknown; mediaType?: unknown; size?: unknown }> | undefined {
  const list = (value as Record<string, unknown> | null)?.[key];
  if (!Array.isArray(list)) return undefined;
  return list.filter(
    (d): d is { digest: string } =>
      d !== null &&
      typeof d === "object" &&
      typeof (d as { digest?: unknown }).digest === "string" &&
      DIGEST.test((d as { digest: string }).digest),
  );
}

/**
 * The one layer of the newest referrer of `subject` with this artifactType, checked against its
 * digest; undefined when there is none.
 */
export async function readReferrer(
  options: ReadOptions,
  subject: string,
  artifactType: string,
): Promise<Buffer | undefined> {
  const { target } = options;
  const repo = target.repository;
  const client = new RegistryClient({ ...options, registry: target.registry, readOnly: true });
  try {
    let index = await getJson(client, repo, `referrers/${subject}`, INDEX);
    if (index.status !== 200 || descriptors(index.json, "manifests") === undefined) {
      index = await getJson(client, repo, `manifests/${subject.replace(":", "-")}`, INDEX);
    }
    if (index.status !== 200) return undefined;
    const listed = descriptors(index.json, "manifests");
    if (listed === undefined)
      throw unreadable(client, `/v2/${repo}/manifests/${subject.replace(":", "-")}`, "not an image index");
    const found = listed.filter((d) => d.artifactType === artifactType).at(-1);
    if (found === undefined) return undefined;
    const manifest = await getJson(client, repo, `manifests/${found.digest}`, MANIFEST);
    if (manifest.status !== 200 || sha256(manifest.bytes!) !== found.digest)
      throw unreadable(
        client,
        `/v2/${repo}/manifests/${found.digest}`,
        "missing, or other bytes than its digest",
      );
    const layer = descriptors(manifest.json, "layers")?.[0];
    const subjectOf = (manifest.json as { subject?: { digest?: unknown } }).subject?.digest;
    if (layer === undefined || subjectOf !== subject)
      throw unreadable(client, `/v2/${repo}/manifests/${found.digest}`, "no layer, or another subject");
    const spec = {
      method: "GET" as const,
      url: `/v2/${repo}/blobs/${layer.digest}`,
      scopes: [`repository:${repo}:pull`],
    };
    const res = await client.retrying(`reading ${layer.digest}`, () => client.request(spec));
    if (res.status !== 200) throw client.unexpected(spec, res);
    if (sha256(res.bytes) !== layer.digest)
      throw unreadable(client, `/v2/${repo}/blobs/${layer.digest}`, "other bytes than its digest");
    return res.bytes;
  } finally {
    await client.close();
  }
}

/** The image's layer blobs (as its manifest lists them, each checked against its digest), as files in `dir`. */
export async function downloadLayers(
  options: ReadOptions,
  digest: string,
  dir: string,
  maxBytes: number,
): Promise<string[]> {
  const { target } = options;
  const repo = target.repository;
  const client = new RegistryClient({ ...options, registry: target.registry, readOnly: true });
  try {
    const manifest = await getJson(client, repo, `manifests/${digest}`, MANIFEST);
    if (manifest.status !== 200 || sha256(manifest.bytes!) !== digest)
      throw unreadable(client, `/v2/${repo}/manifests/${digest}`, "missing, or other bytes than its digest");
    const layers = descriptors(manifest.json, "layers") ?? [];
    const files: string[] = [];
    for (const [i, layer] of layers.entries()) {
      const file = join(dir, `layer-${i}`);
      const hash = createHash("sha256");
      let seen = 0;
      const count = new Transform({
        transform(chunk: Buffer, _e, done) {
          seen += chunk.length;
          hash.update(chunk);
          done(
            seen > maxBytes
              ? new NiftyError(
                  "NIFTY711",
                  `the layer ${layer.digest} is over the download limit`,
                  "raise --limit download-size",
                )
              : null,
            chunk,
          );
        },
      });
      const spec = {
        method: "GET" as const,
        url: `/v2/${repo}/blobs/${layer.digest}`,
        scopes: [`repository:${repo}:pull`],
        sink: (body: Readable) => pipeline(body, count, createWriteStream(file)),
      };
      const res = await client.retrying(`downloading ${layer.digest}`, () => client.request(spec));
      if (res.status !== 200) throw client.unexpected(spec, res);
      if (`sha256:${hash.digest("hex")}` !== layer.digest)
        throw unreadable(client, `/v2/${repo}/blobs/${layer.digest}`, "other bytes than its digest");
      files.push(file);
    }
    return files;
  } finally {
    await client.close();
  }
}
