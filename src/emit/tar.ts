// Deterministic tar from a tree: bytewise-sorted names, numeric owners, one
// fixed mtime, no atime/ctime, exact modes. File bytes stream from the content
// store; nothing larger than one tar block is held in memory per entry.
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Writable } from "node:stream";
import tarStream from "tar-stream";
import type { Tree, TreeNode } from "../image/tree.ts";

/** ustar's 6 octal digits for uid/gid; beyond this tar-stream would silently clamp. */
const USTAR_MAX_ID = 0o777777;

type TarHeader = Partial<tarStream.Header> & { name: string };

export interface TarOptions {
  /** SOURCE_DATE_EPOCH: every entry's mtime, in seconds. */
  mtime: number;
  /** Where a content digest's bytes live on disk. */
  blobPath: (digest: string) => string;
}

/** Write `paths` of `tree` (already sorted) as a tar stream into `out`. */
export async function writeTar(out: Writable, tree: Tree, paths: readonly string[], options: TarOptions): Promise<void> {
  const pack = tarStream.pack();
  const done = pipeline(pack, out);
  try {
    for (const path of paths) {
      const node = tree.get(path);
      if (node === undefined) continue;
      await addEntry(pack, path, node, options);
    }
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
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
    mode: node.type === "symlink" ? 0o777 : node.mode,
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

async function addEntry(pack: tarStream.Pack, path: string, node: TreeNode, options: TarOptions): Promise<void> {
  const h = header(path, node, options.mtime);
  if (node.type !== "file") {
    await new Promise<void>((resolve, reject) => pack.entry(h, (error) => (error ? reject(error) : resolve())));
    return;
  }
  if (node.content.inline !== undefined) {
    const bytes = Buffer.from(node.content.inline, "base64");
    await new Promise<void>((resolve, reject) => pack.entry(h, bytes, (error) => (error ? reject(error) : resolve())));
    return;
  }
  const entry = pack.entry(h);
  await pipeline(createReadStream(options.blobPath(node.content.digest)), entry);
}
