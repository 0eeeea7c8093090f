// A tree packed as a build directory's rootfs.tar, by GNU tar, for tests that make a build
// directory by hand instead of building a recipe.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** `tree` as dir/rootfs.tar (dir made if missing), packed the reproducible way: sorted, root-owned, mtime 0. */
export function packRootfsTar(dir: string, tree: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync("tar", [
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--mtime=@0",
    "-cf",
    join(dir, "rootfs.tar"),
    "-C",
    tree,
    ".",
  ]);
}
