// The OCI layers: fetched binaries and their links in the first, everything
// else in the second, so recipes that fetch the same binaries share the
// first layer's digest whatever else they do.
import { posix } from "node:path";
import { DEFAULT_DIR, Tree } from "../image/tree.ts";
import type { Store } from "../cache/store.ts";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * Split `tree` into two trees. `base` holds the paths last written by FETCH
 * and LINK, under plain 0755 root directories; `rest` holds every other path,
 * every directory with its final
 * metadata. Their union, in order, is `tree`.
 */
export function splitLayers(tree: Tree, basePaths: ReadonlySet<string>): { base: Tree; rest: Tree } {
  const base = new Tree();
  const rest = new Tree();
  for (const path of tree.sortedPaths()) {
    if (path === "/") continue;
    const node = tree.get(path)!;
    if (basePaths.has(path) && node.type !== "dir") {
      for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) {
        if (!base.get(dir)) base.nodes.set(dir, DEFAULT_DIR);
      }
      base.nodes.set(path, node);
    } else {
      rest.nodes.set(path, node);
    }
  }
  return { base, rest };
}

export interface Tarballs {
  rootfs: { digest: string; size: number };
  /** Each layer's tar, and its gzip (the OCI layout's layer blob), both in the store. */
  layers: Array<{ digest: string; size: number; comment: string; gzip: { digest: string; size: number } }>;
}

/**
 * rootfs.tar and the two layer tarballs, streamed into the store in one pass
 * over the tree (each file read once), the layers gzipped as they are written.
 */
export async function writeTarballs(
  store: Store,
  tree: Tree,
  basePaths: ReadonlySet<string>,
  epoch: number,
): Promise<Tarballs> {
  const [{ writeTars }, { deterministicGzip, Tee }] = await Promise.all([
    import("../emit/tar.ts"),
    import("../emit/digest-stream.ts"),
  ]);
  const { base, rest } = splitLayers(tree, basePaths);
  const rootfs = store.createWriter();
  const raws = [store.createWriter(), store.createWriter()];
  const gzips = [store.createWriter(), store.createWriter()];
  const writers = [rootfs, ...raws, ...gzips];
  // Each layer's tar goes to its blob and, through gzip, to its gzip blob
  // (zlib compresses on the thread pool while this thread writes the tars).
  const compressed: Promise<void>[] = [];
  const layerOut = (i: number): Writable => {
    const tee = new Tee(raws[i]!);
    const [gzip, fixHeader] = deterministicGzip();
    const done = pipeline(tee, gzip, fixHeader, gzips[i]!);
    done.catch(() => {}); // awaited below; a failure here also fails the tar's own pipeline
    compressed.push(done);
    return tee;
  };
  try {
    await writeTars(
      [
        { out: rootfs, pick: (path) => tree.get(path) },
        { out: layerOut(0), pick: (path) => (path === "/" ? undefined : base.nodes.get(path)) },
        { out: layerOut(1), pick: (path) => (path === "/" ? undefined : rest.nodes.get(path)) },
      ],
      tree.sortedPaths(),
      { mtime: epoch, blobPath: (d) => store.blobPath(d) },
    );
    await Promise.all(compressed);
    const [r, b, o, bz, oz] = await Promise.all(writers.map((w) => w.commit()));
    const blob = (x: { digest: string; size: number }) => ({ digest: x.digest, size: x.size });
    return {
      rootfs: blob(r!),
      layers: [
        { ...blob(b!), comment: "fetched binaries and links", gzip: blob(bz!) },
        { ...blob(o!), comment: "files, accounts and configuration", gzip: blob(oz!) },
      ],
    };
  } catch (error) {
    await Promise.allSettled(compressed);
    await Promise.all(writers.map((w) => w.abort()));
    throw error;
  }
}
