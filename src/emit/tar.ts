// Deterministic tar from a tree, written with tar-stream: bytewise-sorted
// names, numeric owners, one fixed mtime, no atime/ctime, exact modes, pax
// records for what ustar cannot hold. File bytes are read from the store in
// bounded chunks with backpressure, never a whole large file at once.
import { basename } from "node:path";
import { damagedBlob } from "../cache/store.ts";
import { closeSync, openSync, readSync } from "node:fs";
import { once } from "node:events";
import { pipeline } from "node:stream/promises";
import { Transform, type Writable } from "node:stream";
import tarStream from "tar-stream";
import type { Tree, TreeNode } from "../image/tree.ts";

/** ustar's 6 octal digits for uid/gid; beyond this tar-stream would silently clamp. */
const USTAR_MAX_ID = 0o777777;
/**
 * Bytes read per chunk. Reads are synchronous: blobs are local files, and a
 * thread-pool round trip per open, read and close (a read stream per entry)
 * made small files cost five times GNU tar.
 */
const CHUNK = 1 << 16;
/** Bytes handed to the output per write, and read per chunk of a large file (passed on without a copy). */
const WRITE_SIZE = 1 << 18;
/** File-type bits: tar-stream replaces a mode of 0 by its default, so the type keeps it non-zero. */
const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000 } as const;

type TarHeader = Partial<tarStream.Header> & { name: string };

export interface TarOptions {
  /** SOURCE_DATE_EPOCH: every entry's mtime, in seconds. */
  mtime: number;
  /** Where a content digest's bytes live on disk. */
  blobPath: (digest: string) => string;
}

/** Write `paths` of `tree` (already sorted) as a tar stream into `out`, then end it. */
export async function writeTar(
  out: Writable,
  tree: Tree,
  paths: readonly string[],
  options: TarOptions,
): Promise<void> {
  await writeTars([{ out, pick: (path) => tree.get(path) }], paths, options);
}

/**
 * One of several tarballs written together: `pick` gives the node a path has
 * in this tarball, or undefined to leave it out.
 */
export interface TarTarget {
  out: Writable;
  pick: (path: string) => TreeNode | undefined;
}

/**
 * Write several tarballs in one pass over `paths` (sorted): each file's bytes
 * are read from the store once and handed to every tarball that holds it.
 */
export async function writeTars(
  targets: readonly TarTarget[],
  paths: readonly string[],
  options: TarOptions,
): Promise<void> {
  const packs = targets.map(() => tarStream.pack());
  const done = Promise.all(packs.map((pack, i) => pipeline(pack, coalesce(WRITE_SIZE), targets[i]!.out)));
  try {
    for (const path of paths) {
      const entries: Array<{ pack: tarStream.Pack; node: TreeNode }> = [];
      targets.forEach((target, i) => {
        const node = target.pick(path);
        if (node !== undefined) entries.push({ pack: packs[i]!, node });
      });
      if (entries.length > 0) await addEntry(entries, path, options);
    }
    for (const pack of packs) pack.finalize();
  } catch (error) {
    for (const pack of packs) pack.destroy(error as Error);
    await done.catch(() => undefined);
    throw error;
  }
  await done;
}

function header(path: string, node: TreeNode, mtime: number): TarHeader {
  // The root is "./", so unpacking into any directory gives it the image's mode
  // (a 0700 temp dir would lock every non-root user out of "/").
  const name = path === "/" ? "./" : path.slice(1) + (node.type === "dir" ? "/" : "");
  const h: TarHeader = {
    name,
    mode: TYPE_BITS[node.type] | (node.type === "symlink" ? 0o777 : node.mode),
    uid: node.uid,
    gid: node.gid,
    mtime: new Date(mtime * 1000),
    type: node.type === "dir" ? "directory" : node.type === "symlink" ? "symlink" : "file",
    size: node.type === "file" ? node.content.size : 0,
  };
  if (node.type === "symlink") h.linkname = node.target;
  if (node.uid > USTAR_MAX_ID || node.gid > USTAR_MAX_ID) {
    // pax records carry ids ustar cannot; the ustar fields keep the clamped value.
    h.pax = { uid: String(node.uid), gid: String(node.gid) };
  }
  return h;
}

function entry(pack: tarStream.Pack, h: TarHeader, bytes?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const callback = (error?: Error | null) => (error ? reject(error) : resolve());
    if (bytes === undefined) pack.entry(h, callback);
    else pack.entry(h, bytes, callback);
  });
}

/** One path's entry in each tarball that holds it; a file's bytes are read once for all of them. */
async function addEntry(
  entries: ReadonlyArray<{ pack: tarStream.Pack; node: TreeNode }>,
  path: string,
  options: TarOptions,
): Promise<void> {
  const files: Array<{ pack: tarStream.Pack; h: TarHeader }> = [];
  const pending: Promise<void>[] = [];
  for (const { pack, node } of entries) {
    const h = header(path, node, options.mtime);
    if (node.type !== "file") pending.push(entry(pack, h));
    else if (node.content.inline !== undefined)
      pending.push(entry(pack, h, Buffer.from(node.content.inline, "base64")));
    else files.push({ pack, h });
  }
  if (files.length > 0) {
    // Every tarball picking a file gets the same content (a layer never changes a file's bytes).
    const node = entries.find((e) => e.node.type === "file" && e.node.content.inline === undefined)!
      .node as Extract<TreeNode, { type: "file" }>;
    const file = options.blobPath(node.content.digest!);
    const size = node.content.size;
    const fd = openSync(file, "r");
    try {
      if (size <= CHUNK) {
        const bytes = readExactly(fd, size, size, file, path);
        for (const { pack, h } of files) pending.push(entry(pack, h, bytes));
      } else {
        const sinks = files.map(({ pack, h }) => pack.entry(h));
        const finished = sinks.map(
          (sink) => new Promise<void>((resolve, reject) => sink.once("error", reject).once("close", resolve)),
        );
        for (let left = size; left > 0; ) {
          const chunk = readExactly(fd, Math.min(left, WRITE_SIZE), size, file, path);
          left -= chunk.length;
          const full = sinks.filter((sink) => !sink.write(chunk));
          await Promise.all(full.map((sink) => once(sink, "drain")));
        }
        for (const sink of sinks) sink.end(null);
        pending.push(...finished);
      }
    } finally {
      closeSync(fd);
    }
  }
  await Promise.all(pending);
}

/** Read `length` bytes at the fd's position; a short blob is an error, never a corrupt archive. */
function readExactly(fd: number, length: number, size: number, file: string, path: string): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const n = readSync(fd, buffer, filled, length - filled, null);
    if (n === 0)
      throw damagedBlob(
        `sha256:${basename(file)}`,
        `${path} in the image is shorter than its recorded ${size} bytes`,
      );
    filled += n;
  }
  return buffer;
}

/**
 * Gather tar-stream's many small pushes (a 512-byte header, a small file) into
 * writes of about `size` bytes: one system call per megabyte, not per block.
 */
function coalesce(size: number): Transform {
  let pending: Buffer[] = [];
  let length = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      // A chunk of file bytes as large as a write passes as it is, after what was pending: no copy.
      if (chunk.length >= size) {
        if (length === 0) return callback(null, chunk);
        const batch = Buffer.concat(pending, length);
        pending = [];
        length = 0;
        this.push(batch);
        return callback(null, chunk);
      }
      pending.push(chunk);
      length += chunk.length;
      if (length >= size) {
        const batch = pending.length === 1 ? chunk : Buffer.concat(pending, length);
        pending = [];
        length = 0;
        callback(null, batch);
      } else {
        callback();
      }
    },
    flush(callback) {
      callback(null, length > 0 ? Buffer.concat(pending, length) : undefined);
    },
  });
}
