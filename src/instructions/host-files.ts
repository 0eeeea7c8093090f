// Reading a COPY source from the host as the recipe's directory holds it while
// others may change it: every entry is opened relative to its parent's open
// descriptor (through /proc/self/fd, Linux's openat), never by a path that
// could be re-resolved, with O_NOFOLLOW, and what was opened is fstat'ed and
// read from that one descriptor. A symbolic link swapped in after the listing
// is therefore never followed: the open fails and the entry is told as changed.
import { constants, type BigIntStats } from "node:fs";
import { open, readdir, readlink, realpath, type FileHandle } from "node:fs/promises";
import { relative as relativePath, sep } from "node:path";
import type { HostInputs } from "../core/host-inputs.ts";

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

export interface HostEntry {
  /** Below the source, with / separators; "" for the source itself. */
  relative: string;
  kind: "file" | "dir" | "symlink";
  executable: boolean;
  target?: string;
  /** A regular file, open for reading until the walk's visitor returns. */
  handle?: FileHandle;
  size?: number;
}

/** Why a walk stopped: the source is outside the directory, changed under it, or holds what COPY cannot copy. */
export class HostWalkError extends Error {
  readonly reason: "outside" | "changed" | "special" | "missing" | "unreadable";
  readonly relative: string;
  constructor(reason: HostWalkError["reason"], relative: string, message: string) {
    super(message);
    this.reason = reason;
    this.relative = relative;
  }
}

function fdPath(handle: FileHandle, name: string): string {
  return `/proc/self/fd/${handle.fd}/${name}`;
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Permission denied becomes the source's own error (its path as the recipe names it); anything else is left as it is. */
function unreadable(error: unknown, relative: string): unknown {
  if (code(error) !== "EACCES" && code(error) !== "EPERM") return error;
  return new HostWalkError(
    "unreadable",
    relative,
    `${relative || "the source"} cannot be read: permission denied`,
  );
}

/** Opens `name` inside `dir` without following a final symbolic link; undefined when it is one. */
async function openBeneath(
  dir: FileHandle,
  name: string,
  relative: string,
  directory: boolean,
): Promise<FileHandle | undefined> {
  try {
    return await open(fdPath(dir, name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (directory ? O_DIRECTORY : 0));
  } catch (error) {
    if (code(error) === "ELOOP") return undefined;
    if (code(error) === "ENOENT" || code(error) === "ENOTDIR")
      throw new HostWalkError(
        "changed",
        relative,
        `${relative || "the source"} changed while it was read (it is gone or no longer a ${directory ? "directory" : "file"})`,
      );
    throw unreadable(error, relative);
  }
}

/**
 * Visit the entries of `source` (relative to `dir`) in bytewise order of their
 * paths, parents first. A file's handle is open while `visit` runs and closed
 * after it. The source itself may be reached through symbolic links that stay
 * inside `dir`; below it, symbolic links are entries, never followed.
 * `inputs` is told each file and directory as fstat saw it before it was read.
 */
export async function walkHost(
  dir: string,
  source: string,
  visit: (entry: HostEntry) => Promise<void>,
  inputs?: HostInputs,
): Promise<void> {
  const realDir = await realpath(dir);
  let realRoot: string;
  try {
    realRoot = await realpath(`${realDir}/${source}`);
  } catch (error) {
    if (code(error) === "EACCES")
      throw new HostWalkError("unreadable", "", `${source} cannot be read: permission denied`);
    throw new HostWalkError("missing", "", `${source} disappeared`);
  }
  inputs?.resolved(`${dir}/${source}`, realRoot);
  if (!(realRoot === realDir || realRoot.startsWith(realDir + sep)))
    throw new HostWalkError(
      "outside",
      "",
      `${source} leads outside the recipe's directory through a symbolic link`,
    );
  // Down from the recipe's directory, one component at a time: the resolved
  // path has no links left, so a link met now was swapped in since.
  let current: FileHandle | undefined = await open(realDir, O_RDONLY | O_DIRECTORY);
  try {
    const parts = relativePath(realDir, realRoot)
      .split(sep)
      .filter((p) => p !== "");
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      let next: FileHandle | undefined;
      try {
        next = await openBeneath(current, part, "", !last);
      } catch (error) {
        if (error instanceof HostWalkError && error.reason === "unreadable")
          throw new HostWalkError("unreadable", "", `${source} cannot be read: permission denied`);
        if (code(error) === "ENOTDIR" || error instanceof HostWalkError)
          throw new HostWalkError("changed", "", `${source} changed while it was read`);
        throw error;
      }
      if (next === undefined)
        throw new HostWalkError(
          "changed",
          "",
          `${source} changed while it was read (a symbolic link appeared on its path)`,
        );
      await current.close();
      current = next;
    }
    const root: FileHandle = current;
    current = undefined;
    await visitOpen(
      root,
      "",
      visit,
      inputs === undefined
        ? undefined
        : (relative, stats) => inputs.file(relative === "" ? realRoot : `${realRoot}/${relative}`, stats),
    );
  } finally {
    await current?.close().catch(() => {});
  }
}

/** Visit an opened entry (and its children); closes the handle. */
async function visitOpen(
  handle: FileHandle,
  relative: string,
  visit: (entry: HostEntry) => Promise<void>,
  seen?: (relative: string, stats: BigIntStats) => void,
): Promise<void> {
  try {
    const info = await handle.stat({ bigint: true });
    seen?.(relative, info);
    const executable = (info.mode & 0o111n) !== 0n;
    if (info.isFile()) {
      await visit({ relative, kind: "file", executable, handle, size: Number(info.size) });
      return;
    }
    if (!info.isDirectory())
      throw new HostWalkError(
        "special",
        relative,
        `${relative || "the source"} is not a file, directory or symbolic link`,
      );
    await visit({ relative, kind: "dir", executable });
    const listed = await readdir(fdPath(handle, "."), { withFileTypes: true }).catch((error: unknown) => {
      throw unreadable(error, relative);
    });
    const entries = listed.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    for (const dirent of entries) {
      const name = dirent.name;
      const child = relative === "" ? name : `${relative}/${name}`;
      // A device or FIFO is never opened (opening one can block or act); one swapped in later is caught by fstat.
      if (!(dirent.isFile() || dirent.isDirectory() || dirent.isSymbolicLink()))
        throw new HostWalkError("special", child, `${child} is not a file, directory or symbolic link`);
      const opened = await openBeneath(handle, name, child, false);
      if (opened !== undefined) {
        await visitOpen(opened, child, visit, seen);
        continue;
      }
      let target: string;
      try {
        target = await readlink(fdPath(handle, name));
      } catch (error) {
        if (code(error) === "EINVAL" || code(error) === "ENOENT")
          throw new HostWalkError(
            "changed",
            child,
            `${child} changed while it was read (it is gone or no longer a symbolic link)`,
          );
        throw error;
      }
      await visit({ relative: child, kind: "symlink", executable: true, target });
    }
  } finally {
    await handle.close().catch(() => {});
  }
}
