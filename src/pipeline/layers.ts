// The OCI layers: fetched binaries and their links in the first, everything
// else in the second, so recipes that fetch the same binaries share the
// first layer's digest whatever else they do.
import { posix } from "node:path";
import { DEFAULT_DIR, Tree } from "../image/tree.ts";
import type { Store } from "../cache/store.ts";

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
  layers: Array<{ digest: string; size: number; comment: string }>;
}

/** rootfs.tar and the two layer tarballs, streamed into the store. */
export async function writeTarballs(store: Store, tree: Tree, basePaths: ReadonlySet<string>, epoch: number): Promise<Tarballs> {
  const { writeTar } = await import("../emit/tar.ts");
  const toStore = async (source: Tree): Promise<{ digest: string; size: number }> => {
    const blob = await store.putStream((writer) => writeTar(writer, source, source.sortedPaths(), { mtime: epoch, blobPath: (d) => store.blobPath(d) }));
    return { digest: blob.digest, size: blob.size };
  };
  const { base, rest } = splitLayers(tree, basePaths);
  const rootfs = await toStore(tree);
  const layers = [
    { ...(await toStore(base)), comment: "fetched binaries and links" },
    { ...(await toStore(rest)), comment: "files, accounts and configuration" },
  ];
  return { rootfs, layers };
}
