// Stream stages for the layer writers: hash and count what passes, and gzip
// with a header that is the same on every machine.
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback, type Writable } from "node:stream";
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

/**
 * Passes bytes through unchanged and writes each chunk to `side` as well
 * (waiting while it is full); ends `side` when it ends.
 */
export class Tee extends Transform {
  #side: Writable;

  constructor(side: Writable) {
    super();
    this.#side = side;
    side.once("error", (error) => this.destroy(error));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#side.write(chunk)) callback(null, chunk);
    else this.#side.once("drain", () => callback(null, chunk));
  }

  override _flush(callback: TransformCallback): void {
    this.#side.end();
    callback();
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

/**
 * The OCI layers' gzip level. 1 (zlib's fast deflate) compresses the layers of
 * recipes/ssh.nifty about twice as fast as the default 6 for about 6% more
 * bytes (bench/cold.ts measures every level); the bytes are part of each layer
 * blob's digest, so this number is fixed, not a flag.
 */
export const GZIP_LEVEL = 1;

/** gzip at GZIP_LEVEL (every zlib parameter written out so none can drift), mtime 0, OS Unix. */
export function deterministicGzip(): [Gzip, Transform] {
  // chunkSize only sets how much output each thread-pool call hands back: the bytes do not depend on it.
  const gzip = createGzip({
    level: GZIP_LEVEL,
    memLevel: 8,
    windowBits: 15,
    strategy: constants.Z_DEFAULT_STRATEGY,
    chunkSize: 1 << 18,
  });
  return [gzip, new FixGzipHeader()];
}
