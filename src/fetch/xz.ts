// xz decoded in process by liblzma, without a child process: forking the xz
// tool twice per .deb from a large process cost more than the decoding.
// Two addons, the faster one when it loads:
// - node-liblzma (liblzma 5.8, built optimized): decodes into a 64 KiB
//   buffer and stops when it is full, so output is made only as it is read.
//   It takes no memory limit, so xz-limit.ts reads the headers first.
// - lzma-native (liblzma 5.2, whose prebuilt binaries are built without
//   optimization: about twice the CPU time) where node-liblzma has no binary
//   (it ships linux-x64, darwin-arm64 and win32-x64) or is not installed (an
//   optional dependency). It decodes a whole input chunk at once, so it is fed
//   a kibibyte at a time: xz expands at most about 7,000:1, so one slice's
//   output stays a few megabytes.
import { createRequire } from "node:module";
import { sep } from "node:path";
import { Duplex } from "node:stream";
import { XzHeaderWalk, XzRefused } from "./xz-limit.ts";

/** The decoder's memory cap: a hostile dictionary size is an error, not gigabytes. */
const MEMLIMIT = 512 * 2 ** 20;

/** The decoder failed: its message, in the xz tool's words. */
export class XzError extends Error {}

/** liblzma's results as the xz tool words them. */
const WORDS: Record<string, string> = {
  LZMA_BUF_ERROR: "Unexpected end of input",
  LZMA_DATA_ERROR: "Compressed data is corrupt",
  LZMA_FORMAT_ERROR: "File format not recognized",
  LZMA_MEMLIMIT_ERROR: `Memory usage limit reached (${MEMLIMIT / 2 ** 20} MiB)`,
  LZMA_MEM_ERROR: "Cannot allocate memory",
  LZMA_OPTIONS_ERROR: "Unsupported options",
};

function xzError(name: string, message = name): XzError {
  return new XzError(`xz: ${WORDS[name] ?? message}`);
}

/** Which addon decodes: node-liblzma where its binary loads, else lzma-native. */
export type XzEngine = "node-liblzma" | "lzma-native";

/** An addon's native part alone, through the loader its own entry uses (not its stream classes). */
function nativePart<T>(pkg: string): T {
  const entry = createRequire(import.meta.url).resolve(pkg);
  const marker = `${sep}node_modules${sep}${pkg}${sep}`;
  const root = entry.slice(0, entry.lastIndexOf(marker) + marker.length - 1);
  const nodeGypBuild = createRequire(entry)("node-gyp-build") as (dir: string) => T;
  return nodeGypBuild(root);
}

// ---- node-liblzma --------------------------------------------------------------------------

interface Liblzma {
  LZMA: new (
    mode: number,
    options: object,
  ) => {
    /** liblzma's lzma_code: [result, input bytes left, output bytes left]. */
    codeSync(
      action: number,
      input: Buffer | null,
      inputAt: number,
      inputLength: number,
      output: Buffer,
      outputAt: number,
    ): [number, number, number];
    close(): void;
  };
  STREAM_DECODE: number;
  LZMA_RUN: number;
  LZMA_FINISH: number;
  LZMA_OK: number;
  LZMA_STREAM_END: number;
  LZMA_FILTER_LZMA2: number;
  [result: string]: unknown;
}

/** Decoded bytes per output buffer: the most one decoder call makes before the reader takes it. */
const OUT = 1 << 16;

function liblzmaDecoder(lib: Liblzma): Duplex {
  // The constructor reads encoder options even to decode; the decoder ignores them.
  const native = new lib.LZMA(lib.STREAM_DECODE, {
    check: 0,
    preset: 6,
    filters: [lib.LZMA_FILTER_LZMA2],
    mode: 0,
    threads: 1,
  });
  const resultName = (code: number) =>
    Object.keys(lib).find((k) => /^LZMA_[A-Z_]*ERROR$/.test(k) && lib[k] === code) ?? `error ${code}`;
  const walk = new XzHeaderWalk(MEMLIMIT);
  let out = Buffer.allocUnsafe(OUT);
  let used = 0;
  /** Decode `input` (null: the end), yielding each output buffer as it fills. */
  function* code(input: Buffer | null): Generator<Buffer> {
    const action = input === null ? lib.LZMA_FINISH : lib.LZMA_RUN;
    let at = 0;
    let left = input?.length ?? 0;
    for (;;) {
      const [result, inputLeft, outputLeft] = native.codeSync(action, input, at, left, out, used);
      at += left - inputLeft;
      left = inputLeft;
      used = OUT - outputLeft;
      if (result !== lib.LZMA_OK && result !== lib.LZMA_STREAM_END) throw xzError(resultName(result));
      if (outputLeft === 0) {
        yield out;
        out = Buffer.allocUnsafe(OUT);
        used = 0;
      } else if (result === lib.LZMA_STREAM_END || (left === 0 && input !== null)) {
        return;
      } else if (input === null) {
        // Finishing with room left and no end: the input stopped inside the stream.
        throw xzError("LZMA_BUF_ERROR");
      }
    }
  }
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    let fed = 0;
    try {
      for await (const chunk of source) {
        fed += chunk.length;
        walkHeaders(walk, chunk);
        yield* code(chunk);
      }
      // No byte at all: what the xz tool says of an empty file, not liblzma's "unexpected end".
      if (fed === 0) throw xzError("LZMA_FORMAT_ERROR");
      yield* code(null);
      if (used > 0) yield out.subarray(0, used);
    } finally {
      native.close();
    }
  });
}

function walkHeaders(walk: XzHeaderWalk, chunk: Buffer): void {
  try {
    walk.feed(chunk);
  } catch (error) {
    throw error instanceof XzRefused ? xzError(error.refusal) : error;
  }
}

// ---- lzma-native ---------------------------------------------------------------------------

interface NativeError extends Error {
  name: string;
}

interface LzmaNative {
  Stream: new () => {
    /** The native method behind index.js's autoDecoder({ memlimit, flags }). */
    autoDecoder_(memlimit: number, flags: number): void;
    /** Decode `chunk` (null: the input ended), reporting through bufferHandler before it returns (synchronous mode). */
    code(chunk: Buffer | null, async: boolean): void;
    bufferHandler: (
      buf: Buffer | null | undefined,
      processed: number | undefined,
      error: NativeError | null,
    ) => void;
  };
  CONCATENATED: number;
}

/** Compressed bytes per lzma-native call: its output is at most about 7,000 times this. */
const SLICE = 1024;
/** Decoded bytes gathered before they are passed on (fewer, larger chunks for the tar reader). */
const BATCH = 1 << 16;

function lzmaNativeDecoder(addon: LzmaNative): Duplex {
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
    if (failure) throw xzError(failure.name, failure.message);
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
    if (fed === 0) throw xzError("LZMA_FORMAT_ERROR");
    held.push(...decode(null));
    if (held.length > 0) yield Buffer.concat(held);
  });
}

// ---- choosing ------------------------------------------------------------------------------

let liblzma: Liblzma | null | undefined;
let lzmaNative: LzmaNative | undefined;

function loadLiblzma(): Liblzma | null {
  if (liblzma === undefined) {
    try {
      liblzma = nativePart<Liblzma>("node-liblzma");
    } catch {
      liblzma = null; // not installed, or no binary for this system: lzma-native decodes
    }
  }
  return liblzma;
}

/** The addon that decodes here. */
export function xzEngine(): XzEngine {
  return loadLiblzma() === null ? "lzma-native" : "node-liblzma";
}

/**
 * A stream that takes xz (one stream or several concatenated) and gives the decoded bytes.
 * `engine` picks the addon (tests decode with both); by default the faster one that loads.
 */
export function createXzDecoder(engine: XzEngine = xzEngine()): Duplex {
  if (engine === "node-liblzma") {
    const lib = loadLiblzma();
    if (lib === null) throw new Error("node-liblzma is not installed or has no binary for this system");
    return liblzmaDecoder(lib);
  }
  lzmaNative ??= nativePart<LzmaNative>("lzma-native");
  return lzmaNativeDecoder(lzmaNative);
}
