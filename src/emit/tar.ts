// Deterministic tar from a tree: bytewise-sorted names, numeric owners, one
// fixed mtime, no atime/ctime, exact modes. Headers and file bytes are packed
// into fixed-size batches that go out with backpressure: file bytes are read
// straight into the batch, so memory stays bounded whatever the file sizes,
// and large batches keep the system calls few (a stream per entry cost 5×).
// The layout is ustar, with a pax header (named PaxHeader) for what ustar
// cannot hold: long or non-ASCII names, long link targets, large ids.
import { closeSync, openSync, readSync } from "node:fs";
import { finished } from "node:stream/promises";
import type { Writable } from "node:stream";
import type { Tree, TreeNode } from "../image/tree.ts";

const BLOCK = 512;
/** Bytes handed to `out` per write. */
const BATCH = 1 << 20;
/** ustar's 6 octal digits for uid/gid. */
const USTAR_MAX_ID = 0o777777;

export interface TarOptions {
  /** SOURCE_DATE_EPOCH: every entry's mtime, in seconds. */
  mtime: number;
  /** Where a content digest's bytes live on disk. */
  blobPath: (digest: string) => string;
}

interface Header {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  /** Typeflag character: "0" file, "2" symlink, "5" directory, "x" pax. */
  type: string;
  linkname: string;
}

/** Write `paths` of `tree` (already sorted) as a tar stream into `out`, then end it. */
export async function writeTar(out: Writable, tree: Tree, paths: readonly string[], options: TarOptions): Promise<void> {
  const batch = new Batcher(out);
  try {
    for (const path of paths) {
      const node = tree.get(path);
      if (node === undefined) continue;
      await batch.ready();
      batch.put(entryHeaders(path, node, options.mtime));
      if (node.type !== "file") continue;
      if (node.content.inline !== undefined) batch.put(Buffer.from(node.content.inline, "base64"));
      else await batch.putFile(options.blobPath(node.content.digest), node.content.size, path);
      batch.pad();
    }
    batch.zeros(2 * BLOCK);
    await batch.flush();
    out.end();
    await finished(out);
  } catch (error) {
    out.destroy(error as Error);
    throw error;
  }
}

/** The header blocks of one entry: a ustar header, preceded by a pax header when needed. */
function entryHeaders(path: string, node: TreeNode, mtime: number): Buffer {
  // The root is "./", so unpacking into any directory gives it the image's mode
  // (a 0700 temp dir would lock every non-root user out of "/").
  const name = path === "/" ? "./" : path.slice(1) + (node.type === "dir" ? "/" : "");
  const h: Header = {
    name,
    mode: node.type === "symlink" ? 0o777 : node.mode,
    uid: node.uid,
    gid: node.gid,
    size: node.type === "file" ? node.content.size : 0,
    mtime,
    type: node.type === "dir" ? "5" : node.type === "symlink" ? "2" : "0",
    linkname: node.type === "symlink" ? node.target : "",
  };
  const bigIds = node.uid > USTAR_MAX_ID || node.gid > USTAR_MAX_ID;
  if (!bigIds) {
    const plain = ustar(h);
    if (plain !== undefined) return plain;
  }
  // pax records carry what ustar cannot; the ustar fields keep clamped values.
  let records = paxRecord("path", h.name);
  if (h.linkname !== "") records += paxRecord("linkpath", h.linkname);
  if (bigIds) records += paxRecord("uid", String(h.uid)) + paxRecord("gid", String(h.gid));
  const data = Buffer.from(records, "utf8");
  const placeholder = { name: "PaxHeader", linkname: h.linkname === "" ? "" : "PaxHeader" };
  const pax = ustar({ ...h, ...placeholder, size: data.length, type: "x" })!;
  const real = ustar({ ...h, ...placeholder })!;
  return Buffer.concat([pax, data, Buffer.alloc(padding(data.length)), real]);
}

/** "<length> key=value\n", the length counting its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bytes = Buffer.byteLength(body);
  let length = bytes + String(bytes).length;
  if (String(length).length !== String(bytes).length) length = bytes + String(length).length;
  return `${length}${body}`;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** A 512-byte ustar header, or undefined when the name or link target does not fit. */
function ustar(h: Header): Buffer | undefined {
  let name = h.name;
  let prefix = "";
  if (Buffer.byteLength(name) !== name.length) return undefined;
  while (name.length > 100) {
    const slash = name.indexOf("/");
    if (slash < 0) return undefined;
    prefix += (prefix ? "/" : "") + name.slice(0, slash);
    name = name.slice(slash + 1);
  }
  if (prefix.length > 155 || Buffer.byteLength(h.linkname) > 100) return undefined;
  const buf = Buffer.alloc(BLOCK);
  buf.write(name, 0, "latin1");
  buf.write(octal(h.mode & 0o7777, 6), 100);
  buf.write(octal(h.uid, 6), 108);
  buf.write(octal(h.gid, 6), 116);
  writeSize(buf, h.size);
  buf.write(octal(h.mtime, 11), 136);
  buf.write(h.type, 156);
  buf.write(h.linkname, 157, "utf8");
  buf.write("ustar\x0000", 257, "latin1");
  buf.write(octal(0, 6), 329);
  buf.write(octal(0, 6), 337);
  buf.write(prefix, 345, "latin1");
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += buf[i]!;
  buf.write(octal(sum, 6), 148);
  return buf;
}

/** `digits` octal digits and a space; all sevens when the value does not fit. */
function octal(value: number, digits: number): string {
  const text = Math.trunc(value).toString(8);
  return (text.length > digits ? "7".repeat(digits) : text.padStart(digits, "0")) + " ";
}

function writeSize(buf: Buffer, size: number): void {
  if (size.toString(8).length <= 11) {
    buf.write(octal(size, 11), 124);
    return;
  }
  // Over 8 GiB: base-256, big-endian, marked by the high bit.
  buf[124] = 0x80;
  let rest = size;
  for (let i = 11; i > 0; i--) {
    buf[124 + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

/** Fills BATCH-sized buffers and writes each whole one to `out`, waiting when it asks to. */
class Batcher {
  private readonly out: Writable;
  private buf: Buffer = Buffer.allocUnsafe(BATCH);
  private used = 0;
  private total = 0;

  constructor(out: Writable) {
    this.out = out;
  }

  put(bytes: Buffer): void {
    let offset = 0;
    while (offset < bytes.length) {
      const n = bytes.copy(this.buf, this.used, offset);
      offset += n;
      this.used += n;
      this.total += n;
      if (this.used === BATCH) this.rotate();
    }
  }

  zeros(n: number): void {
    this.put(Buffer.alloc(n));
  }

  pad(): void {
    const n = padding(this.total);
    if (n > 0) this.zeros(n);
  }

  /**
   * Read exactly `size` bytes of `file` straight into the batches. Reads are
   * synchronous: blobs are local files, and a thread-pool round trip per
   * open, read and close made small files cost more than their bytes.
   */
  async putFile(file: string, size: number, path: string): Promise<void> {
    const fd = openSync(file, "r");
    try {
      let left = size;
      while (left > 0) {
        await this.ready();
        const bytesRead = readSync(fd, this.buf, this.used, Math.min(left, BATCH - this.used), null);
        if (bytesRead === 0) throw new Error(`${file} (${path} in the image) is shorter than its recorded ${size} bytes`);
        this.used += bytesRead;
        this.total += bytesRead;
        left -= bytesRead;
        if (this.used === BATCH) this.rotate();
      }
    } finally {
      closeSync(fd);
    }
  }

  private readonly spare: Buffer[] = [];
  private pending: Promise<void> | undefined;
  private failed: Error | undefined;

  /** Hand the batch to `out` and start a fresh one; when `out` is full, later reads wait for its drain. */
  private rotate(): void {
    const sent = this.buf;
    const full = this.used === BATCH ? sent : sent.subarray(0, this.used);
    // Batches come back once written: a few buffers serve the whole archive,
    // instead of garbage that the collector reclaims late.
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(BATCH);
    this.used = 0;
    const written = this.out.write(full, (error) => {
      if (!error && this.spare.length < 4) this.spare.push(sent);
    });
    if (!written && this.pending === undefined) {
      this.pending = new Promise<void>((resolve) => {
        const done = (error?: Error): void => {
          this.out.off("drain", done);
          this.out.off("error", done);
          this.pending = undefined;
          this.failed ??= error;
          resolve();
        };
        this.out.on("drain", done);
        this.out.on("error", done);
      });
    }
  }

  /** Wait until `out` takes more, so batches never pile up in memory. */
  async ready(): Promise<void> {
    if (this.pending) await this.pending;
    if (this.failed) throw this.failed;
  }

  async flush(): Promise<void> {
    if (this.used > 0) this.rotate();
    await this.ready();
  }
}
