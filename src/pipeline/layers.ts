// The OCI layers: fetched binaries and their links in the first, everything
// else in the second, so recipes that fetch the same binaries share the
// first layer's digest whatever else they do.
import { posix } from "node:path";
import { DEFAULT_DIR, Tree } from "../image/tree.ts";

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
