// Deterministic tar from a tree: bytewise-sorted names, numeric owners, one
// fixed mtime, no atime/ctime, exact modes, pax records for what ustar cannot
// hold. The headers are tar-stream's, byte for byte (the digests niftyc has
// always written; test/pipeline/tar-writer.test.ts compares the two), but
// written here: headers and small files are read straight into a batch
// buffer that goes out in one write, a large file in big chunks handed to
// every tarball that holds it, with no stream or promise per entry.
import { basename } from "node:path";
import { BlobWriter, damagedBlob } from "../cache/store.ts";
import { WriteStream, closeSync, openSync, readSync } from "node:fs";
import { finished } from "node:stream/promises";
import type { Writable } from "node:stream";
import type { Tree, TreeNode } from "../image/tree.ts";

/** ustar's 6 octal digits for uid/gid; beyond them, pax records carry the ids. */
const USTAR_MAX_ID = 0o777777;
/**
 * Headers and files up to this size (padded) are gathered into one write of about this size; a
 * larger file is read and written in chunks of this size.
 */
const BATCH = 1 << 20;
/** Writes a tarball may have under way before the writer waits for one to finish. */
const IN_FLIGHT = 4;
const TYPEFLAG = { file: 0, symlink: 2, dir: 5, pax: 72 } as const;
const ZEROS = "0000000000000000000";
const SEVENS = "7777777777777777777";
const USTAR_MAGIC = Buffer.from("ustar\u000000", "latin1");

export interface TarOptions {
  /** SOURCE_DATE_EPOCH: every entry's mtime, in seconds. */
  mtime: number;
  /** Where a content digest's bytes live on disk. */
  blobPath: (digest: string) => string;
}

/** Write `paths` of `tree` (already sorted) as a tar stream into `out`, then end it. */
export async function writeTar(
  out: Writable,
  tree: Tree,
  paths: readonly string[],
  options: TarOptions,
): Promise<void> {
  await writeTars([{ out, pick: (path) => tree.get(path) }], paths, options);
}

/**
 * One of several tarballs written together: `pick` gives the node a path has
 * in this tarball, or undefined to leave it out.
 */
export interface TarTarget {
  out: Writable;
  pick: (path: string) => TreeNode | undefined;
}

/**
 * Write several tarballs in one pass over `paths` (sorted): each file's bytes
 * are read from the store once and handed to every tarball that holds it.
 */
export async function writeTars(
  targets: readonly TarTarget[],
  paths: readonly string[],
  options: TarOptions,
): Promise<void> {
  const pool = new BufferPool();
  const sinks = targets.map((target) => new TarSink(target.out, pool));
  // Whole seconds; not `| 0`, which wraps every time from 2038 on into a negative number.
  const mtime = Math.floor(options.mtime);
  try {
    for (const path of paths) {
      const holders: Array<{ sink: TarSink; node: TreeNode }> = [];
      for (const [i, target] of targets.entries()) {
        const node = target.pick(path);
        if (node !== undefined) holders.push({ sink: sinks[i]!, node });
      }
      // A promise only when a tarball has to wait for its writes: none per entry.
      const wait = holders.length > 0 ? addEntry(holders, path, mtime, options) : undefined;
      if (wait !== undefined) await wait;
    }
    for (const sink of sinks) sink.end();
    await Promise.all(sinks.map((sink) => sink.finished()));
  } catch (error) {
    for (const sink of sinks) sink.destroy(error as Error);
    throw error;
  }
}

/** One path's entry in each tarball that holds it; a file's bytes are read once for all of them. */
function addEntry(
  holders: ReadonlyArray<{ sink: TarSink; node: TreeNode }>,
  path: string,
  mtime: number,
  options: TarOptions,
): Promise<void> | undefined {
  let stored: { digest: string; size: number } | undefined;
  const storedIn: TarSink[] = [];
  for (const { sink, node } of holders) {
    const inline =
      node.type === "file" && node.content.inline !== undefined
        ? Buffer.from(node.content.inline, "base64")
        : undefined;
    const size = node.type !== "file" ? 0 : (inline?.length ?? node.content.size);
    sink.header(entryHeader(path, node, size, mtime));
    if (inline !== undefined) {
      sink.bytes(inline);
      sink.pad(inline.length);
    } else if (node.type === "file") {
      // Every tarball picking a file gets the same content (a layer never changes a file's bytes).
      stored ??= { digest: node.content.digest, size };
      storedIn.push(sink);
    }
  }
  if (stored !== undefined) return addStoredFile(storedIn, stored, path, options);
  return waitForRoom(holders.map((h) => h.sink));
}

/** A stored file's bytes: read into the batch in one call when they fit one, else streamed in chunks. */
function addStoredFile(
  sinks: readonly TarSink[],
  content: { digest: string; size: number },
  path: string,
  options: TarOptions,
): Promise<void> | undefined {
  const file = options.blobPath(content.digest);
  const { size } = content;
  if (padded(size) > BATCH) return addLargeFile(sinks, file, size, path, sinks[0]!.pool);
  const fd = openSync(file, "r");
  try {
    const [first, ...rest] = sinks as [TarSink, ...TarSink[]];
    const bytes = first.reserve(size);
    readExactly(fd, bytes, size, file, path);
    for (const sink of rest) sink.bytes(bytes);
    for (const sink of sinks) sink.pad(size);
  } finally {
    closeSync(fd);
  }
  return waitForRoom(sinks);
}

/** A file larger than a batch: chunks read once and handed, without a copy, to every tarball. */
async function addLargeFile(
  sinks: readonly TarSink[],
  file: string,
  size: number,
  path: string,
  pool: BufferPool,
): Promise<void> {
  const fd = openSync(file, "r");
  try {
    for (const sink of sinks) sink.flush();
    for (let left = size; left > 0; ) {
      const buffer = pool.take();
      const chunk = buffer.subarray(0, Math.min(left, BATCH));
      readExactly(fd, chunk, size, file, path);
      left -= chunk.length;
      let holders = sinks.length;
      const release = () => {
        if (--holders === 0) pool.give(buffer);
      };
      for (const sink of sinks) sink.write(chunk, release);
      const wait = waitForRoom(sinks);
      if (wait !== undefined) await wait;
    }
    for (const sink of sinks) sink.pad(size);
  } finally {
    closeSync(fd);
  }
}

/** Back-pressure: when a tarball has too many writes under way, wait for them. */
function waitForRoom(sinks: readonly TarSink[]): Promise<void> | undefined {
  const busy = sinks.filter((sink) => sink.busy);
  return busy.length === 0 ? undefined : Promise.all(busy.map((sink) => sink.room())).then(() => {});
}

const padded = (size: number): number => (size + 511) & ~511;

/** Fill `buffer` from the fd's position; a short blob is an error, never a corrupt archive. */
function readExactly(fd: number, buffer: Buffer, size: number, file: string, path: string): void {
  let filled = 0;
  while (filled < buffer.length) {
    const n = readSync(fd, buffer, filled, buffer.length - filled, null);
    if (n === 0)
      throw damagedBlob(
        `sha256:${basename(file)}`,
        `${path} in the image is shorter than its recorded ${size} bytes`,
      );
    filled += n;
  }
}

/**
 * Buffers of a batch's size, taken again once written: a gigabyte of tarball
 * would otherwise allocate a thousand of them, and the collector then ran for
 * a sixth of the write. Only outputs known to be done with a buffer when they
 * call back give it back: a Transform may still hold a chunk it passed on.
 */
class BufferPool {
  #free: Buffer[] = [];

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(BATCH);
  }

  give(buffer: Buffer): void {
    this.#free.push(buffer);
  }
}

/** One tarball's output: a batch buffer filled in place and written whole, and the writes under way. */
class TarSink {
  readonly #out: Writable;
  readonly pool: BufferPool;
  /** A file or a store blob: a write's callback means its bytes are copied out. */
  readonly #givesBack: boolean;
  #batch: Buffer;
  #fill = 0;
  #inFlight = 0;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(out: Writable, pool: BufferPool) {
    this.#out = out;
    this.pool = pool;
    this.#givesBack = out instanceof WriteStream || out instanceof BlobWriter;
    this.#batch = pool.take();
    out.on("error", (error) => this.#failed(error));
  }

  /** Too many writes under way: wait for room() before handing it more. */
  get busy(): boolean {
    return this.#inFlight >= IN_FLIGHT || this.#error !== undefined;
  }

  room(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#error !== undefined) reject(this.#error);
        else if (this.#inFlight < IN_FLIGHT) resolve();
        else this.#wake = check;
      };
      check();
    });
  }

  /** `length` bytes of the batch, to be filled by the caller; the batch is written first if they do not fit. */
  reserve(length: number): Buffer {
    if (this.#fill + length > BATCH) this.flush();
    const slice = this.#batch.subarray(this.#fill, this.#fill + length);
    this.#fill += length;
    return slice;
  }

  header(blocks: Buffer[]): void {
    for (const block of blocks) this.bytes(block);
  }

  bytes(bytes: Uint8Array): void {
    if (bytes.length > BATCH) {
      this.flush();
      this.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    } else this.reserve(bytes.length).set(bytes);
  }

  /** Zeros up to the next 512-byte block after `size` bytes. */
  pad(size: number): void {
    const rest = padded(size) - size;
    if (rest > 0) this.reserve(rest).fill(0);
  }

  /** Hand what the batch holds to the output, in a fresh batch from then on. */
  flush(): void {
    if (this.#fill === 0) return;
    const batch = this.#batch;
    this.write(batch.subarray(0, this.#fill), () => this.pool.give(batch));
    this.#batch = this.pool.take();
    this.#fill = 0;
  }

  /** A buffer the caller leaves unchanged until `written`, written after what was handed before it. */
  write(chunk: Buffer, written?: () => void): void {
    this.#inFlight++;
    this.#out.write(chunk, (error) => {
      this.#inFlight--;
      if (!error && this.#givesBack) written?.();
      if (error) this.#failed(error);
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
  }

  /** The two zero blocks that end a tarball, then the end of the output. */
  end(): void {
    this.reserve(1024).fill(0);
    this.flush();
    this.#out.end();
  }

  async finished(): Promise<void> {
    // The writable side only: a Transform's output is its reader's to end.
    await finished(this.#out, { readable: false });
    if (this.#error !== undefined) throw this.#error;
  }

  destroy(error: Error): void {
    if (!this.#out.destroyed) this.#out.destroy(error);
  }

  #failed(error: Error): void {
    this.#error ??= error;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: number;
  linkname?: string | undefined;
}

/** The header blocks of one entry: ustar when it holds the entry, else a pax header first (as tar-stream writes them). */
function entryHeader(path: string, node: TreeNode, size: number, mtime: number): Buffer[] {
  // The root is "./", so unpacking into any directory gives it the image's mode
  // (a 0700 temp dir would lock every non-root user out of "/").
  const name = path === "/" ? "./" : path.slice(1) + (node.type === "dir" ? "/" : "");
  const fields: HeaderFields = {
    name,
    mode: node.type === "symlink" ? 0o777 : node.mode,
    uid: node.uid,
    gid: node.gid,
    size,
    mtime,
    typeflag: TYPEFLAG[node.type],
    linkname: node.type === "symlink" ? node.target : undefined,
  };
  const bigIds = node.uid > USTAR_MAX_ID || node.gid > USTAR_MAX_ID;
  const plain = bigIds ? undefined : ustarHeader(fields);
  if (plain !== undefined) return [plain];
  // pax records carry the name, link and ids ustar cannot; the ustar fields keep clamped values.
  let records = paxRecord("path", name);
  if (fields.linkname) records += paxRecord("linkpath", fields.linkname);
  if (bigIds) records += paxRecord("uid", String(node.uid)) + paxRecord("gid", String(node.gid));
  const pax = Buffer.from(records);
  const linkname = fields.linkname && "PaxHeader";
  const paxHeader = encodeHeader({
    ...fields,
    name: "PaxHeader",
    linkname,
    size: pax.length,
    typeflag: TYPEFLAG.pax,
  });
  const padding = Buffer.alloc(padded(pax.length) - pax.length);
  return [paxHeader, pax, padding, encodeHeader({ ...fields, name: "PaxHeader", linkname })];
}

/** The ustar header, or undefined when the name or link does not fit it (non-ASCII, too long). */
function ustarHeader(fields: HeaderFields): Buffer | undefined {
  let name = fields.name;
  let prefix = "";
  if (Buffer.byteLength(name) !== name.length) return undefined;
  while (name.length > 100) {
    const i = name.indexOf("/");
    if (i === -1) return undefined;
    prefix += prefix ? "/" + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (name.length > 100 || prefix.length > 155) return undefined;
  if (fields.linkname && Buffer.byteLength(fields.linkname) > 100) return undefined;
  return encodeHeader({ ...fields, name }, prefix);
}

function encodeHeader(f: HeaderFields, prefix = ""): Buffer {
  const block = Buffer.alloc(512);
  block.write(f.name);
  block.write(octal(f.mode & 0o7777, 6), 100);
  block.write(octal(f.uid, 6), 108);
  block.write(octal(f.gid, 6), 116);
  if (f.size.toString(8).length > 11) {
    // Base-256 for sizes of 8 GiB and more.
    block[124] = 0x80;
    for (let i = 11, n = f.size; i > 0; i--, n = Math.floor(n / 0x100)) block[124 + i] = n & 0xff;
  } else block.write(octal(f.size, 11), 124);
  block.write(octal(f.mtime, 11), 136);
  block[156] = 0x30 + f.typeflag;
  if (f.linkname) block.write(f.linkname, 157);
  USTAR_MAGIC.copy(block, 257);
  block.write(octal(0, 6), 329);
  block.write(octal(0, 6), 337);
  if (prefix) block.write(prefix, 345);
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < 512; i++) sum += block[i]!;
  block.write(octal(sum, 6), 148);
  return block;
}

/** An octal field of `digits` digits and a space; all sevens when the value does not fit. */
function octal(value: number, digits: number): string {
  const text = value.toString(8);
  return text.length > digits
    ? SEVENS.slice(0, digits) + " "
    : ZEROS.slice(0, digits - text.length) + text + " ";
}

/** A pax record: its length in decimal (counting itself), a space, key=value and a newline. */
function paxRecord(key: string, value: string): string {
  const text = ` ${key}=${value}\n`;
  const length = Buffer.byteLength(text);
  let digits = Math.floor(Math.log(length) / Math.log(10)) + 1;
  if (length + digits >= 10 ** digits) digits++;
  return `${length + digits}${text}`;
}
