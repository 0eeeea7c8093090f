// The assembled output files of a build, as the store keeps them: every entry
// of the output directory, file bytes as blobs. Restoring them is copying
// blobs into a staging directory, which both a warm build and the up-to-date
// short cut (src/cli/build-restore.ts) do; so this module loads its builtins
// through process.getBuiltinModule, as the short cut's other modules do.
const { chmodSync, closeSync, constants, copyFileSync, mkdirSync, openSync, readSync, symlinkSync } =
  process.getBuiltinModule("node:fs");
const { join } = process.getBuiltinModule("node:path");

/** A blob whose bytes are not its name's: damaged in the store since it was written. */
export class DamagedBlob extends Error {
  readonly digest: string;
  constructor(digest: string, actual: string) {
    super(`the store's ${digest} holds bytes of ${actual}`);
    this.digest = digest;
  }
}

/** A file's sha256 (`sha256:<hex>`), read a mebibyte at a time: a blob may be a rootfs of gigabytes. */
export function fileDigestSync(path: string): string {
  const { createHash } = process.getBuiltinModule("node:crypto");
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * A blob copied out of the store (a reflink where the file system has them), its copy hashed:
 * what lands in out/ is what the build names, or DamagedBlob. The copy is read back from the
 * page cache, so this costs the hashing alone.
 */
export function copyBlobChecked(from: string, to: string, digest: string): void {
  copyFileSync(from, to, constants.COPYFILE_FICLONE);
  const actual = fileDigestSync(to);
  if (actual !== digest) throw new DamagedBlob(digest, actual);
}

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
 * `checked`: each copy hashed (DamagedBlob); the up-to-date short cut vouches
 * for its blobs by identity instead, and hashes those whose identity moved.
 */
export function restoreEntries(
  dir: string,
  entries: readonly AssembledEntry[],
  blobPath: (digest: string) => string,
  checked = false,
): void {
  const dirs = entries.filter((e) => e.type === "dir");
  for (const d of dirs) mkdirSync(join(dir, d.path), { recursive: true });
  for (const entry of entries) {
    const dest = join(dir, entry.path);
    if (entry.type === "file") {
      if (checked) copyBlobChecked(blobPath(entry.digest), dest, entry.digest);
      else copyFileSync(blobPath(entry.digest), dest, constants.COPYFILE_FICLONE);
      chmodSync(dest, entry.mode);
    } else if (entry.type === "symlink") symlinkSync(entry.target, dest);
  }
  // Directory modes last: a read-only directory would refuse its own entries.
  for (const d of [...dirs].reverse()) chmodSync(join(dir, d.path), d.mode);
}
