// Whether another local user could make a path lead somewhere else: replace a directory on the way,
// or a symbolic link, between niftyc's check and its use. A directory another user owns, or one
// that others may write without the sticky bit, lets them rename what is in it; in a sticky one
// (as /tmp) only an entry's owner can, so there an entry of another user is as bad.
import { lstatSync, readlinkSync, type Stats, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";

/** Symbolic links followed before giving up, as the kernel's ELOOP (40). */
const MAX_LINKS = 40;

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Why a user other than root and `uid` could replace `entry` in the directory `dir` (stat `parent`). */
function replaceableIn(
  dir: string,
  parent: Stats,
  entry: Stats | undefined,
  uid: number,
): string | undefined {
  if (parent.uid !== 0 && parent.uid !== uid) return `${dir} belongs to uid ${parent.uid}`;
  if ((parent.mode & 0o022) === 0) return undefined;
  const mode = (parent.mode & 0o7777).toString(8).padStart(4, "0");
  if ((parent.mode & 0o1000) === 0) return `${dir} is writable by other users (mode ${mode})`;
  if (entry !== undefined && entry.uid !== 0 && entry.uid !== uid)
    return `it belongs to uid ${entry.uid} in ${dir}, which every user may write (mode ${mode})`;
  return undefined;
}

/**
 * Why a user other than root and `uid` could make `path` lead elsewhere, or undefined. Every
 * directory on the way (symbolic links followed, as open(2) would) must belong to root or `uid`
 * and be closed to other writers, or sticky with the entry taken from it owned by root or `uid`.
 * The path's last entry itself may belong to anyone. The walk stops at the first entry missing.
 * Each directory's stat is the one taken on the way in (lstat of a directory is its stat).
 */
export function redirectableBy(path: string, uid: number): string | undefined {
  // Relative to the working directory, as open(2) takes it.
  let pending = resolve(path)
    .split("/")
    .filter((p) => p !== "");
  let dir = "/";
  let parent = statSync(dir);
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === "." || name === "..") {
      if (name === "..") dir = dir.slice(0, dir.lastIndexOf("/")) || "/";
      parent = statSync(dir);
      continue;
    }
    const next = dir === "/" ? `/${name}` : `${dir}/${name}`;
    const entry = lstatOrUndefined(next);
    const why = replaceableIn(dir, parent, entry, uid);
    if (why !== undefined) return `${next}: ${why}`;
    if (entry === undefined || (!entry.isSymbolicLink() && !entry.isDirectory())) return undefined;
    if (entry.isDirectory()) {
      dir = next;
      parent = entry;
      continue;
    }
    if (++links > MAX_LINKS) return `${path}: too many symbolic links`;
    const target = readlinkSync(next);
    pending = [...target.split("/").filter((p) => p !== ""), ...pending];
    if (isAbsolute(target)) {
      dir = "/";
      parent = statSync(dir);
    }
  }
  return undefined;
}
