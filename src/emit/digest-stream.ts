// Stream stages for the layer writers: hash and count what passes, and gzip
// with a header that is the same on every machine.
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { constants, createGzip, type Gzip } from "node:zlib";

/** Passes bytes through unchanged, hashing and counting them. */
export class DigestStream extends Transform {
  #hash: Hash = createHash("sha256");
  size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  /** "sha256:<hex>", valid once the stream has ended. */
  digest(): string {
    return `sha256:${this.#hash.copy().digest("hex")}`;
  }
}

const GZIP_OS_UNIX = 3;

/** Forces the gzip header's OS byte (zlib writes its build platform's code) and checks mtime is 0. */
class FixGzipHeader extends Transform {
  #seen = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#seen < 10) {
      const copy = Buffer.from(chunk);
      for (let i = 0; i < copy.length && this.#seen + i < 10; i++) {
        const at = this.#seen + i;
        if (at >= 4 && at <= 7 && copy[i] !== 0) {
          callback(new Error("gzip header carries an mtime"));
          return;
        }
        if (at === 9) copy[i] = GZIP_OS_UNIX;
      }
      this.#seen += copy.length;
      callback(null, copy);
      return;
    }
    callback(null, chunk);
  }
}

/** gzip level 6 (zlib's default, written out so it cannot drift), mtime 0, OS Unix. */
export function deterministicGzip(): [Gzip, Transform] {
  const gzip = createGzip({ level: 6, memLevel: 8, windowBits: 15, strategy: constants.Z_DEFAULT_STRATEGY });
  return [gzip, new FixGzipHeader()];
}
