// docker-archive: the tar `docker load` / `podman load` read (the format of
// `docker save`): manifest.json, the config, one uncompressed layer per
// directory with the legacy VERSION/json beside it, and `repositories`.
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import { NiftyError } from "../diagnostics/errors.ts";
import type { ImageConfig, LayerFile } from "../image/config.ts";
import { commitFile, stagingFile } from "../core/atomic.ts";
import { DigestStream, Tee } from "./digest-stream.ts";
import type { Writable } from "node:stream";
import { chainIds, imageConfigJson, rfc3339, sha256Hex } from "./oci-config.ts";
import { checkLayer } from "./oci-layout.ts";

export interface DockerArchiveInput {
  config: ImageConfig;
  layers: LayerFile[];
  /** "name:tag", e.g. "nifty:latest" (docker load refuses a tag without ":tag"). */
  repoTag: string;
  /** Also given every byte of the archive as it is written (a store writer), and ended with it. */
  copyTo?: Writable;
}

export interface DockerArchiveResult {
  /** The image ID docker/podman show: the config's digest. */
  configDigest: string;
}

type Entry =
  | { name: string; kind: "dir" }
  | { name: string; kind: "text"; text: string }
  | { name: string; kind: "layer"; layer: LayerFile };

function splitRepoTag(repoTag: string): { repo: string; tag: string } {
  const m = /^([a-z0-9][a-z0-9._/:-]*?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))$/.exec(repoTag);
  if (m === null || m[1] === undefined || m[2] === undefined || m[1].endsWith("/")) {
    throw new NiftyError(
      "NIFTY504",
      `invalid repository tag ${JSON.stringify(repoTag)}`,
      'write it as "name:tag", e.g. "nifty:latest"',
    );
  }
  return { repo: m[1], tag: m[2] };
}

function hex(digest: string): string {
  return digest.slice("sha256:".length);
}

function bytewise(a: Entry, b: Entry): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

/** Write the archive to `file` (via a staging file beside it). */
export async function writeDockerArchive(
  file: string,
  input: DockerArchiveInput,
): Promise<DockerArchiveResult> {
  const { repo, tag } = splitRepoTag(input.repoTag);
  const { config, layers } = input;
  const created = rfc3339(config.created);
  const configJson = imageConfigJson(config, layers);
  const configHex = sha256Hex(configJson);
  // Legacy v1 ids: chain ids, so a layer's directory names it and everything below it.
  const ids = chainIds(layers.map((l) => l.digest)).map(hex);
  const entries: Entry[] = [
    { name: `${configHex}.json`, kind: "text", text: configJson },
    {
      name: "manifest.json",
      kind: "text",
      text: JSON.stringify([
        {
          Config: `${configHex}.json`,
          RepoTags: [input.repoTag],
          Layers: ids.map((id) => `${id}/layer.tar`),
        },
      ]),
    },
  ];
  for (const [i, layer] of layers.entries()) {
    const id = ids[i] as string;
    const legacy: Record<string, unknown> = { id };
    if (i > 0) legacy.parent = ids[i - 1];
    legacy.created = created;
    legacy.os = config.os;
    legacy.architecture = config.architecture;
    if (i === layers.length - 1) legacy.config = (JSON.parse(configJson) as { config: unknown }).config;
    entries.push({ name: `${id}/`, kind: "dir" });
    entries.push({ name: `${id}/VERSION`, kind: "text", text: "1.0" });
    entries.push({ name: `${id}/json`, kind: "text", text: JSON.stringify(legacy) });
    entries.push({ name: `${id}/layer.tar`, kind: "layer", layer });
  }
  const top = ids.at(-1);
  if (top !== undefined)
    entries.push({ name: "repositories", kind: "text", text: JSON.stringify({ [repo]: { [tag]: top } }) });
  entries.sort(bytewise);

  const staged = await stagingFile(file);
  try {
    const pack = tarStream.pack();
    const sink: Writable = createWriteStream(staged, { mode: 0o644 });
    const written =
      input.copyTo === undefined ? pipeline(pack, sink) : pipeline(pack, new Tee(input.copyTo), sink);
    const mtime = new Date(config.created * 1000);
    const base = { uid: 0, gid: 0, mtime };
    try {
      for (const entry of entries) {
        if (entry.kind === "dir") {
          await addEntry(pack, { ...base, name: entry.name, type: "directory", mode: 0o755 });
        } else if (entry.kind === "text") {
          await addEntry(
            pack,
            { ...base, name: entry.name, type: "file", mode: 0o644 },
            Buffer.from(entry.text),
          );
        } else {
          const digest = new DigestStream();
          const sink = pack.entry({
            ...base,
            name: entry.name,
            type: "file",
            mode: 0o644,
            size: entry.layer.size,
          });
          await pipeline(
            createReadStream(entry.layer.path, { end: Math.max(0, entry.layer.size - 1) }),
            digest,
            sink,
          );
          checkLayer(entry.layer, digest.digest(), digest.size);
        }
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
      await written.catch(() => undefined);
      throw error;
    }
    await written;
    await commitFile(staged, file);
    return { configDigest: `sha256:${configHex}` };
  } catch (error) {
    await rm(dirname(staged), { recursive: true, force: true });
    throw error;
  }
}

function addEntry(
  pack: tarStream.Pack,
  header: Parameters<tarStream.Pack["entry"]>[0],
  body?: Buffer,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null): void => (error ? reject(error) : resolve());
    if (body === undefined) pack.entry(header, done);
    else pack.entry(header, body, done);
  });
}
