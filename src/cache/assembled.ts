// The assembled output files of a build, as the store keeps them: every entry
// of the output directory, file bytes as blobs. Restoring them is copying
// blobs into a staging directory, which both a warm build and the up-to-date
// short cut (src/cli/build-restore.ts) do; so this module loads its builtins
// through process.getBuiltinModule, as the short cut's other modules do.
const { chmodSync, constants, copyFileSync, mkdirSync, symlinkSync } = process.getBuiltinModule("node:fs");
const { join } = process.getBuiltinModule("node:path");

export type AssembledEntry =
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "file"; mode: number; digest: string }
  | { path: string; type: "symlink"; target: string };

/**
 * The assembled output files of a fingerprint: every entry with its type and
 * mode, file bytes as blobs, symlinks with their targets. Restoring it gives
 * back exactly what was assembled, or it is not used.
 */
export interface AssembledRecord {
  entries: AssembledEntry[];
}

/** Blobs an assembled record needs. */
export function assembledBlobs(record: AssembledRecord): Array<{ digest: string }> {
  return record.entries.flatMap((e) => (e.type === "file" ? [{ digest: e.digest }] : []));
}

/**
 * Put every entry into `dir` (which exists), file bytes copied from
 * `blobPath(digest)` once (a reflink where the file system has them).
 * Synchronous: the files are local, and a thread-pool round trip for each
 * copy and chmod cost more than the copies. Throws when a blob is missing.
 */
export function restoreEntries(
  dir: string,
  entries: readonly AssembledEntry[],
  blobPath: (digest: string) => string,
): void {
  const dirs = entries.filter((e) => e.type === "dir");
  for (const d of dirs) mkdirSync(join(dir, d.path), { recursive: true });
  for (const entry of entries) {
    const dest = join(dir, entry.path);
    if (entry.type === "file") {
      copyFileSync(blobPath(entry.digest), dest, constants.COPYFILE_FICLONE);
      chmodSync(dest, entry.mode);
    } else if (entry.type === "symlink") symlinkSync(entry.target, dest);
  }
  // Directory modes last: a read-only directory would refuse its own entries.
  for (const d of [...dirs].reverse()) chmodSync(join(dir, d.path), d.mode);
}
