// Reading a recipe's lock from the host. The lock sits beside the recipe, so
// whoever wrote the recipe chose it too: it may be a link to /dev/zero, a FIFO
// nobody writes, a directory or a huge file. Only a regular file is read, and
// at most MAX_LOCK_BYTES of it, so none of these holds or fills a build, a
// `niftyc lock` or the language server.
import { constants, type BigIntStats } from "node:fs";
import { open } from "node:fs/promises";
import { readCapped } from "../core/read-capped.ts";
import { NiftyError } from "../diagnostics/errors.ts";

/**
 * The most bytes of a lock read. A stanza takes about 290 bytes: the largest lock under recipes/
 * (systemd-httpd.nifty.lock) is 34,757 bytes for 120 packages. 16 MiB is some 57,000 stanzas, about
 * every package of Debian's main archive for one architecture, far more than any image installs,
 * while reading it stays a fraction of a second.
 */
export const MAX_LOCK_BYTES = 16 * 1024 * 1024;

const HINT = "the lock is written by niftyc: delete it and run `niftyc lock` again";

/** What a file that is not a regular file is, in words. */
function kindOf(stats: BigIntStats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket";
  return "not a file";
}

/**
 * The bytes of the lock at `path` (named `shown` in messages), or undefined when there is none.
 * `seen` is given the file's stat before it is read. A lock that is not a regular file (after
 * links), or is over MAX_LOCK_BYTES, or cannot be read is NIFTY604; nothing blocks on a FIFO.
 */
export async function readLockBytes(
  path: string,
  shown: string,
  seen?: (stats: BigIntStats) => void,
): Promise<Buffer | undefined> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new NiftyError("NIFTY604", `cannot read ${shown}: ${(error as Error).message}`, HINT);
  }
  try {
    const stats = await fh.stat({ bigint: true });
    if (!stats.isFile())
      throw new NiftyError(
        "NIFTY604",
        `cannot read ${shown}: it is ${kindOf(stats)}, not a regular file`,
        HINT,
      );
    seen?.(stats);
    const bytes = await readCapped(fh, MAX_LOCK_BYTES);
    if (bytes.length > MAX_LOCK_BYTES)
      throw new NiftyError(
        "NIFTY604",
        `${shown} has more than ${MAX_LOCK_BYTES.toLocaleString("en-US")} bytes (16 MiB), more than any lock holds`,
        HINT,
      );
    return bytes;
  } catch (error) {
    if (error instanceof NiftyError) throw error;
    throw new NiftyError("NIFTY604", `cannot read ${shown}: ${(error as Error).message}`, HINT);
  } finally {
    await fh.close();
  }
}
