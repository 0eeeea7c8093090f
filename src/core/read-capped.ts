// Reading a file whose size cannot be trusted (/dev/zero, a FIFO that never ends, a huge file
// where a small one belongs): at most one byte more than allowed, so the caller can tell.
import type { FileHandle } from "node:fs/promises";

/** Up to `limit` + 1 bytes of an open file, from where it stands: more than `limit` says it is too long. */
export async function readCapped(fh: FileHandle, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let size = 0; size <= limit; ) {
    const chunk = Buffer.allocUnsafe(Math.min(1 << 16, limit + 1 - size));
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    size += bytesRead;
  }
  return Buffer.concat(chunks);
}
