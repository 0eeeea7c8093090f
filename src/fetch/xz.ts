// xz decoded in process by liblzma (the lzma-native addon), without a child
// process: forking the xz tool twice per .deb from a large process cost more
// than the decoding. The addon decodes a whole input chunk at once, so it is
// fed one small slice at a time, and only when the reader asks for more:
// xz expands at most about 7,000:1, so one slice's output stays a few
// megabytes and draining past a huge member holds no more than that.
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Duplex } from "node:stream";

/** Compressed bytes per decoder call: its output is at most about 7,000 times this. */
const SLICE = 1024;
/** Decoded bytes gathered before they are passed on (fewer, larger chunks for the tar reader). */
const BATCH = 1 << 16;
/** The decoder's own memory cap: a hostile dictionary size is an error, not gigabytes. */
const MEMLIMIT = 512 * 2 ** 20;

/** The decoder failed: its message, in the xz tool's words. */
export class XzError extends Error {}

interface NativeError extends Error {
  name: string;
}

interface NativeStream {
  /** The native method behind index.js's autoDecoder({ memlimit, flags }). */
  autoDecoder_(memlimit: number, flags: number): void;
  /** Decode `chunk` (null: the input ended), reporting through bufferHandler before it returns (synchronous mode). */
  code(chunk: Buffer | null, async: boolean): void;
  bufferHandler: (
    buf: Buffer | null | undefined,
    processed: number | undefined,
    error: NativeError | null,
  ) => void;
}

interface Addon {
  Stream: new () => NativeStream;
  CONCATENATED: number;
}

let addon: Addon | undefined;

/** liblzma's results as the xz tool words them. */
const WORDS: Record<string, string> = {
  LZMA_BUF_ERROR: "Unexpected end of input",
  LZMA_DATA_ERROR: "Compressed data is corrupt",
  LZMA_FORMAT_ERROR: "File format not recognized",
  LZMA_MEMLIMIT_ERROR: `Memory usage limit reached (${MEMLIMIT / 2 ** 20} MiB)`,
  LZMA_MEM_ERROR: "Cannot allocate memory",
  LZMA_OPTIONS_ERROR: "Unsupported options",
};

/**
 * The addon's native part alone, through the loader its index.js uses: the index.js also loads
 * readable-stream and its own stream classes (about 8 ms of CPU in every thread that decodes).
 */
function loadAddon(): Addon {
  const index = createRequire(import.meta.url).resolve("lzma-native");
  const nodeGypBuild = createRequire(index)("node-gyp-build") as (dir: string) => Addon;
  return nodeGypBuild(dirname(index));
}

/** A stream that takes xz (one stream or several concatenated) and gives the decoded bytes. */
export function createXzDecoder(): Duplex {
  addon ??= loadAddon();
  const native = new addon.Stream();
  native.autoDecoder_(MEMLIMIT, addon.CONCATENATED);
  let out: Buffer[] = [];
  let failure: NativeError | undefined;
  native.bufferHandler = (buf, _processed, error) => {
    if (error) failure = error;
    else if (buf) out.push(buf);
  };
  const decode = (slice: Buffer | null): Buffer[] => {
    native.code(slice, false);
    if (failure) throw new XzError(`xz: ${WORDS[failure.name] ?? failure.message}`);
    const got = out;
    out = [];
    return got;
  };
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    let held: Buffer[] = [];
    let size = 0;
    let fed = 0;
    for await (const chunk of source) {
      fed += chunk.length;
      for (let at = 0; at < chunk.length; at += SLICE) {
        for (const b of decode(chunk.subarray(at, at + SLICE))) {
          held.push(b);
          size += b.length;
        }
        if (size >= BATCH) {
          // Small pieces joined; a large output (the addon's 64 KiB buffers) passed on as it is.
          if (held.length === 1 || size > 4 * BATCH) yield* held;
          else yield Buffer.concat(held, size);
          held = [];
          size = 0;
        }
      }
    }
    // No byte at all: what the xz tool says of an empty file, not liblzma's "unexpected end".
    if (fed === 0) throw new XzError(`xz: ${WORDS.LZMA_FORMAT_ERROR}`);
    held.push(...decode(null));
    if (held.length > 0) yield Buffer.concat(held);
  });
}
