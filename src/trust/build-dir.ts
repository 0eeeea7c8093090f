// niftyc verify of a build directory: before anything is rebuilt, every file the provenance
// names must still hold the bytes it names. rootfs.tar is hashed against its subject; an image
// subject is the OCI layout beside it: index.json must tag that manifest (or index), and every
// blob it reaches (manifests, config, layers, the SBOM artifact) must be its digest and size.
// These are the files install, podman and skopeo read, and the rebuild compares only digests.
//
// The provenance lies in the directory it describes, so nothing it says becomes a path: a
// subject is rootfs.tar or the image of the directory or of a platform's (linux-arm64/), and a
// blob's name is a digest checked to be 64 hex digits. Every file is opened beneath its parent's
// open descriptor (through /proc/self/fd) with O_NOFOLLOW, so no symbolic link is followed, and
// only a regular file is read.
import { constants } from "node:fs";
import { lstat, open, type FileHandle } from "node:fs/promises";
import { createHash } from "node:crypto";
import { NiftyError } from "../diagnostics/errors.ts";
import { findPlatform, platformDir } from "../image/platform.ts";
import type { ReadProvenance } from "./verify.ts";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** index.json, a manifest or an index: read whole, so bounded (as a registry's answer is). */
const MAX_JSON = 4 * 1024 * 1024;

/** A file of the build directory that is not what was named: its path below the directory, and why. */
export interface Mismatch {
  path: string;
  why: string;
}

class Mismatched extends Error {
  readonly mismatch: Mismatch;
  constructor(path: string, why: string) {
    super(`${path}: ${why}`);
    this.mismatch = { path, why };
  }
}

const errno = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code;

/** `name` in the open directory `dir`, without following a symbolic link; `path` is how it is shown. */
async function openBeneath(dir: FileHandle, name: string, path: string, file: boolean): Promise<FileHandle> {
  try {
    return await open(
      `/proc/self/fd/${dir.fd}/${name}`,
      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (file ? 0 : O_DIRECTORY),
    );
  } catch (error) {
    const code = errno(error);
    if (code === "ENOENT") throw new Mismatched(path, "it is missing");
    if (code === "ELOOP" || code === "ENOTDIR") {
      const link = await lstat(`/proc/self/fd/${dir.fd}/${name}`).then(
        (s) => s.isSymbolicLink(),
        () => false,
      );
      throw new Mismatched(
        path,
        link ? "it is a symbolic link, which verify does not follow" : "it is not a directory",
      );
    }
    if (code === "EACCES" || code === "EPERM") throw new Mismatched(path, "it cannot be read");
    throw error;
  }
}

/** `rel` (a/b/c) below `root`, each part opened beneath the one before it: a regular file, open. */
async function openInside(root: string, rel: string): Promise<FileHandle> {
  const parts = rel.split("/");
  let handle = await open(root, O_RDONLY | O_DIRECTORY);
  for (const [i, name] of parts.entries()) {
    const parent = handle;
    try {
      handle = await openBeneath(parent, name, parts.slice(0, i + 1).join("/"), i === parts.length - 1);
    } finally {
      await parent.close();
    }
  }
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw new Mismatched(rel, "it is not a regular file");
  }
  return handle;
}

/** The sha256 and size of `rel`'s bytes. */
async function hashFile(root: string, rel: string): Promise<{ digest: string; size: number }> {
  const file = await openInside(root, rel);
  try {
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of file.createReadStream({ autoClose: false }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    return { digest: `sha256:${hash.digest("hex")}`, size };
  } finally {
    await file.close();
  }
}

/** `rel`'s bytes as JSON, at most MAX_JSON of them. */
async function readJson(root: string, rel: string): Promise<unknown> {
  const file = await openInside(root, rel);
  let bytes: Buffer;
  try {
    if ((await file.stat()).size > MAX_JSON) throw new Mismatched(rel, `it is over ${MAX_JSON} bytes`);
    bytes = await file.readFile();
  } finally {
    await file.close();
  }
  try {
    return JSON.parse(bytes.toString("utf8")) as unknown;
  } catch {
    throw new Mismatched(rel, "it is not JSON");
  }
}

/**
 * The bytes of `rel` in the build directory `root`, a regular file reached without a symbolic link
 * and at most `max` bytes; undefined otherwise. For provenance.json, which a FIFO or a link to
 * /dev/zero would otherwise make verify wait on or read without end.
 */
export async function readInside(root: string, rel: string, max: number): Promise<Buffer | undefined> {
  let file: FileHandle;
  try {
    file = await openInside(root, rel);
  } catch (error) {
    if (error instanceof Mismatched) return undefined;
    throw error;
  }
  try {
    return (await file.stat()).size > max ? undefined : await file.readFile();
  } finally {
    await file.close();
  }
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * One OCI layout (`layout`, "oci" or "linux-arm64/oci"): its index.json tags exactly one image,
 * the subject's digest, and every blob reachable from index.json is its descriptor's digest and size.
 */
async function checkLayout(root: string, layout: string, subject: string): Promise<void> {
  const indexPath = `${layout}/index.json`;
  const index = obj(await readJson(root, indexPath));
  const entries = list(index?.manifests);
  const images = entries.filter((e) => obj(e)?.artifactType === undefined);
  const tagged = images.map((e) => obj(e)?.digest);
  if (tagged.length !== 1 || tagged[0] !== subject) {
    const named =
      tagged.length === 1
        ? `the image ${typeof tagged[0] === "string" && DIGEST.test(tagged[0]) ? tagged[0] : "of a malformed digest"}`
        : `${tagged.length} images`;
    throw new Mismatched(indexPath, `it names ${named}; the provenance names ${subject}`);
  }
  const seen = new Set<string>();
  // What a descriptor is comes from where it is named (index.json and an index list manifests or
  // indexes, a manifest its config and layers), never from its mediaType, which could hide a layer.
  const visit = async (descriptor: unknown, namedBy: string, manifest: boolean): Promise<void> => {
    const d = obj(descriptor);
    const digest = d?.digest;
    if (typeof digest !== "string" || !DIGEST.test(digest))
      throw new Mismatched(namedBy, "it names a blob whose digest is not sha256 and 64 hex digits");
    if (seen.has(digest)) return;
    seen.add(digest);
    const blob = `${layout}/blobs/sha256/${digest.slice(7)}`;
    const got = await hashFile(root, blob);
    if (got.digest !== digest || got.size !== d!.size) {
      const size = typeof d!.size === "number" ? `${d!.size} bytes` : "no size";
      throw new Mismatched(
        blob,
        `it is ${got.digest}, ${got.size} bytes; ${namedBy} names ${digest}, ${size}`,
      );
    }
    if (!manifest) return;
    const body = obj(await readJson(root, blob));
    const leaves = [body?.config, ...list(body?.layers)];
    for (const leaf of leaves) if (leaf !== undefined) await visit(leaf, blob, false);
    for (const child of [...list(body?.manifests), body?.subject])
      if (child !== undefined) await visit(child, blob, true);
  };
  for (const entry of entries) await visit(entry, indexPath, true);
}

/**
 * Where each subject of `p` lives in a build directory: rootfs.tar is that file, any other name is
 * the image of the OCI layout beside it. A subject is of the directory itself, or (of several
 * platforms) of one platform's directory; any other name is no file of a build directory.
 */
function locate(p: ReadProvenance, where: string) {
  const dirs = new Set([""]);
  if (p.platforms.length > 1)
    for (const name of p.platforms) {
      const platform = findPlatform(name);
      if (platform !== undefined) dirs.add(`${platformDir(platform)}/`);
    }
  const subjects = p.subjects.map((s) => {
    const slash = s.name.lastIndexOf("/") + 1;
    const dir = s.name.slice(0, slash);
    if (!dirs.has(dir) || s.name.slice(slash) === "")
      throw new NiftyError(
        "NIFTY735",
        `the provenance ${where} cannot be read: it names the subject ${JSON.stringify(s.name)}, which is no file of a build directory`,
        "give a build directory niftyc wrote, with the provenance.json it wrote",
      );
    const file = s.name.slice(slash) === "rootfs.tar";
    return { dir, digest: s.digest, path: file ? `${dir}rootfs.tar` : `${dir}oci`, file };
  });
  return { dirs, subjects };
}

/** Whether `rel` is there (as anything, a link included). */
async function present(root: string, rel: string): Promise<boolean> {
  return openInside(root, rel).then(
    async (f) => {
      await f.close();
      return true;
    },
    (error: unknown) => {
      if (!(error instanceof Mismatched)) throw error;
      return error.mismatch.why !== "it is missing";
    },
  );
}

/**
 * The first file of the build directory `root` that is not what its provenance `p` names, in the
 * provenance's order of subjects; undefined when every one is. A rootfs.tar or OCI layout that
 * the provenance does not name at all is a mismatch too: its bytes are vouched for by nothing.
 */
export async function firstMismatch(
  root: string,
  p: ReadProvenance,
  where: string,
): Promise<Mismatch | undefined> {
  const { dirs, subjects: located } = locate(p, where);
  try {
    for (const s of located) {
      if (!s.file) await checkLayout(root, s.path, s.digest);
      else {
        const got = await hashFile(root, s.path);
        if (got.digest !== s.digest)
          throw new Mismatched(s.path, `it is ${got.digest}; the provenance names ${s.digest}`);
      }
    }
    for (const dir of dirs)
      for (const [name, file] of [
        ["rootfs.tar", true],
        ["oci/index.json", false],
      ] as const) {
        const path = `${dir}${name}`;
        const named = located.some((s) => s.dir === dir && s.file === file);
        if (!named && (await present(root, path)))
          throw new Mismatched(path, "the provenance names no subject for it");
      }
  } catch (error) {
    if (error instanceof Mismatched) return error.mismatch;
    throw error;
  }
  return undefined;
}
