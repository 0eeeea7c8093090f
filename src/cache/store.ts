// The content-addressed store: blobs named by their sha256, written through a
// temp file in the same directory tree and published with link(2), which is
// atomic and never replaces, so no reader ever sees a partial blob under a
// final name, whatever process writes or dies beside it.
import { RECORD_FORMATS, USE_REFRESH_MS, type RecordFile, type RecordKind } from "./records.ts";
import { createHash, randomBytes } from "node:crypto";
import type { Hash } from "node:crypto";
import {
  closeSync,
  constants as fsConstants,
  fchmodSync,
  fsync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  utimesSync,
  write,
  writeSync,
} from "node:fs";
import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { finished, pipeline } from "node:stream/promises";
import { writeFileAtomic } from "../core/atomic.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { bootId, isCode } from "../core/process.ts";
import { journalName, journalsDir } from "./journals.ts";
import { FetchError } from "./fetch-error.ts";

export { isCode };

export interface BlobInfo {
  /** `sha256:<64 hex>` */
  digest: string;
  size: number;
  /** Absolute path of the read-only blob file. */
  path: string;
}

/** One use record: which blobs a build used, and when it last did. */
export interface UseRecord {
  tag: string;
  digests: string[];
  /** ISO 8601 time of the latest build that recorded this set. */
  lastUsed: string;
}

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._:@+-]{0,199}$/;
/** Directories the store itself owns; JSON namespaces may not use them. */
const RESERVED = new Set(["blobs", "tmp", "quarantine", "uses", "leases", "stamps"]);

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value);
}

/** The hex part of a digest; a malformed digest is a user mistake. */
export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m?.[1]) {
    throw new FetchError(
      "NIFTY100",
      "digest",
      `malformed digest ${JSON.stringify(digest)}`,
      "a digest is written sha256:<64 lowercase hex digits>, as printed by `sha256sum` with the sha256: prefix",
    );
  }
  return m[1];
}

/** The stored blob did not hash to what the caller expected. */
export class DigestMismatchError extends FetchError {
  expected: string;
  actual: string;

  constructor(expected: string, actual: string, what: string) {
    super(
      "NIFTY101",
      "digest",
      `digest mismatch for ${what}: expected ${expected}, got ${actual}`,
      "the source changed or is corrupt; check the digest in the recipe, or use another source",
    );
    this.expected = expected;
    this.actual = actual;
  }
}

export const STORE_DAMAGED_HINT =
  "the content store may be damaged: `niftyc cache verify` checks every blob and sets bad ones aside; then build again";

/** A blob the store holds with fewer or other bytes than were recorded: damaged since it was written. */
export function damagedBlob(digest: string, detail: string): NiftyError {
  return new NiftyError(
    "NIFTY231",
    `the store's copy of ${digest} is damaged: ${detail}`,
    STORE_DAMAGED_HINT,
  );
}

/** This thread's temp file tag, drawn once, and how many names it has given. */
let tempTag: string | undefined;
let tempCount = 0;
/** This thread's journal of unsynced blobs in each store it wrote to (an open descriptor, appended to). */
const journals = new Map<string, number>();

export class Store {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  get blobsDir(): string {
    return path.join(this.dir, "blobs", "sha256");
  }
  get tmpDir(): string {
    return path.join(this.dir, "tmp");
  }
  /**
   * A blob found holding other bytes than its name (copied into out/ and hashed): set aside in
   * quarantine/, as `niftyc cache verify` does, so the next build writes or fetches it again.
   */
  async setAsideDamaged(digest: string): Promise<NiftyError> {
    const { quarantine } = await import("./unsynced.ts");
    await quarantine(this.quarantineDir, this.blobPath(digest), digestHex(digest));
    return new NiftyError(
      "NIFTY231",
      `the store's copy of ${digest} is damaged: its bytes no longer match its name; it is set aside in quarantine/ and nothing was published`,
      "build again, which writes it anew; `niftyc cache verify` checks the rest of the store",
    );
  }

  get quarantineDir(): string {
    return path.join(this.dir, "quarantine");
  }
  get usesDir(): string {
    return path.join(this.dir, "uses");
  }
  /** Journals naming blobs whose bytes were not synced one by one (see journalUnsynced). */
  get unsyncedDir(): string {
    return journalsDir(this.dir);
  }

  blobPath(digest: string): string {
    return path.join(this.blobsDir, digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    return (await this.stat(digest)) !== undefined;
  }

  /** Whether the store holds every one of these blobs. */
  async hasAll(blobs: ReadonlyArray<{ digest: string }>): Promise<boolean> {
    return (await Promise.all(blobs.map((blob) => this.has(blob.digest)))).every(Boolean);
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    const p = this.blobPath(digest);
    // Synchronous, as the reads below: one system call on a local file costs less than
    // a trip through the thread pool, and a warm build checks its blobs by the dozen.
    const st = statSync(p, { throwIfNoEntry: false });
    return st?.isFile() ? { digest, size: st.size, path: p } : undefined;
  }

  createWriter(): BlobWriter {
    return new BlobWriter(this);
  }

  /**
   * A blob written by synchronous calls (see BlobFile), for a reader thread that writes many small
   * files, named later in a batch: see `journalUnsynced` and `syncBlobNames`.
   */
  createFile(): BlobFile {
    return new BlobFile(this);
  }

  /**
   * Let these blobs be named before their bytes are synced: their digests are appended to this
   * thread's journal in `unsynced/`, and the journal is synced, one sync for a batch instead of one a
   * file. A store opened after the machine restarted hashes every blob a journal of the earlier
   * boot names and quarantines those that do not match (src/cache/unsynced.ts). False where the
   * kernel gives no boot id: the caller syncs each file instead.
   */
  journalUnsynced(digests: readonly string[]): boolean {
    const fd = this.#journal();
    if (fd === undefined) return false;
    if (digests.length === 0) return true;
    writeAllSync(fd, journalLines(digests));
    fsyncSync(fd);
    return true;
  }

  /**
   * journalUnsynced with the append and its sync on the thread pool: for the main thread, whose
   * event loop (the downloads' sockets) a sync must not stop. Appends to the one descriptor are
   * atomic (O_APPEND), and each caller's sync covers its own.
   */
  async journalUnsyncedAsync(digests: readonly string[]): Promise<boolean> {
    const fd = this.#journal();
    if (fd === undefined) return false;
    if (digests.length === 0) return true;
    const lines = journalLines(digests);
    for (let at = 0; at < lines.length; )
      at += (await writeFd(fd, lines, at, lines.length - at)).bytesWritten;
    await fsyncFd(fd);
    return true;
  }

  /** This thread's journal in this store, opened (and its name synced) once; undefined without a boot id. */
  #journal(): number | undefined {
    const boot = bootId();
    if (boot === undefined) return undefined;
    let fd = journals.get(this.dir);
    if (fd === undefined) {
      mkdirSync(this.unsyncedDir, { recursive: true });
      tempTag ??= randomBytes(8).toString("hex");
      const name = journalName(boot, process.pid, tempTag, Date.now());
      fd = openSync(path.join(this.unsyncedDir, name), "a", 0o644);
      journals.set(this.dir, fd);
      syncDirSync(this.unsyncedDir); // the journal's name, before any blob relies on it
    }
    return fd;
  }

  /** Make the names of blobs committed by BlobFiles durable: one directory sync. */
  async syncBlobNames(): Promise<void> {
    await syncDir(this.blobsDir);
  }

  async putFile(file: string, expected?: string): Promise<BlobInfo> {
    let fh: FileHandle;
    try {
      // Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
      fh = await fsp.open(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new NiftyError(
        "NIFTY132",
        `cannot read ${file}: ${(err as Error).message}`,
        "give the path of an existing, readable file",
      );
    }
    const info = await fh.stat();
    if (!info.isFile()) {
      await fh.close();
      throw new NiftyError(
        "NIFTY132",
        `cannot read ${file}: it is ${info.isDirectory() ? "a directory" : "not a regular file"}`,
        info.isDirectory()
          ? `name the files in it: niftyc cache import ${file.replace(/\/$/, "")}/*`
          : "give the path of an existing, readable file",
      );
    }
    const input = fh.createReadStream();
    return this.putStream((writer) => pipeline(input, writer), expected);
  }

  /**
   * Store what `write` streams into the writer it is given: nothing appears in
   * the store unless it completes (and matches `expected`, when given).
   */
  async putStream(
    write: (writer: BlobWriter) => Promise<unknown>,
    expected?: string,
    source?: string,
  ): Promise<BlobInfo> {
    const writer = this.createWriter();
    try {
      await write(writer);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer.commit(expected, source);
  }

  async putBuffer(buf: Uint8Array, expected?: string): Promise<BlobInfo> {
    const writer = this.createWriter();
    writer.end(buf);
    return writer.commit(expected);
  }

  /** A small JSON record, or undefined when absent or unreadable (a cache miss). */
  async readJson<T = unknown>(namespace: string, key: string): Promise<T | undefined> {
    const file = this.#recordPath(namespace, key);
    let text;
    try {
      // Synchronous: a record is a small local file, and fs.promises.readFile takes four
      // thread-pool round trips (open, stat, read, close); a warm build reads a record per step.
      text = readFileSync(file, "utf8");
    } catch (err) {
      if (isCode(err, "ENOENT")) return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      return undefined;
    }
  }

  async writeJson(namespace: string, key: string, value: unknown): Promise<void> {
    const file = this.#recordPath(namespace, key);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await this.writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
  }

  /** A record of a registered kind, or undefined when absent, unreadable or in another format. */
  async readRecord<T>(kind: RecordKind, key: string): Promise<T | undefined> {
    const file = await this.readJson<RecordFile<T>>(kind, key);
    return file?.format === RECORD_FORMATS[kind] ? file.record : undefined;
  }

  async writeRecord<T>(kind: RecordKind, key: string, record: T): Promise<void> {
    await this.writeJson(kind, key, { format: RECORD_FORMATS[kind], record } satisfies RecordFile<T>);
  }

  /**
   * Remember that a build used these blobs, so gc keeps them. One record per
   * tag and set of digests: repeating the same build only refreshes its time.
   * Returns the record's path.
   */
  async recordUse(digests: string[], tag: string, at: Date = new Date()): Promise<string> {
    const sorted = [...new Set(digests)].sort();
    for (const d of sorted) digestHex(d);
    const setId = createHash("sha256")
      .update(tag + "\n" + sorted.join("\n"))
      .digest("hex")
      .slice(0, 16);
    const safeTag = tag.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 80);
    const file = path.join(this.usesDir, `${safeTag}--${setId}.json`);
    // gc ages are whole days: a record refreshed within the hour needs no new synced write.
    let previous = NaN;
    try {
      previous = Date.parse((JSON.parse(readFileSync(file, "utf8")) as UseRecord).lastUsed);
    } catch {
      // None yet, or unreadable: written below.
    }
    if (at.getTime() - previous >= 0 && at.getTime() - previous < USE_REFRESH_MS) return file;
    const record: UseRecord = { tag, digests: sorted, lastUsed: at.toISOString() };
    await this.writeFileAtomic(file, JSON.stringify(record) + "\n");
    return file;
  }

  async readUseRecords(): Promise<{ file: string; record: UseRecord }[]> {
    const out: { file: string; record: UseRecord }[] = [];
    for (const name of await listDir(this.usesDir)) {
      if (!name.endsWith(".json")) continue;
      const file = path.join(this.usesDir, name);
      try {
        const record = JSON.parse(await fsp.readFile(file, "utf8")) as UseRecord;
        if (Array.isArray(record.digests) && typeof record.lastUsed === "string") out.push({ file, record });
      } catch {
        // A record removed by a concurrent gc, or not ours: nothing to keep for it.
      }
    }
    return out;
  }

  /**
   * A new temp file name: the writer's pid, so gc can tell abandoned ones, then this thread's
   * random tag (a pid repeats, and processes in other pid namespaces may share the store) and a
   * count. Every temp file is created with O_EXCL, so a clash could only fail, never mix two files.
   */
  tempPath(suffix: string): string {
    tempTag ??= randomBytes(8).toString("hex");
    return path.join(this.tmpDir, `${process.pid}-${tempTag}-${(tempCount++).toString(36)}${suffix}`);
  }

  /** Write a whole small file: temp in DIR/tmp (swept by gc), fsync, rename over the target. */
  async writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
    await writeFileAtomic(file, data, { tempPath: this.tempPath(".json") });
  }

  #recordPath(namespace: string, key: string): string {
    for (const [what, v] of [
      ["namespace", namespace],
      ["key", key],
    ] as const) {
      if (!NAME_RE.test(v) || v.includes("..")) {
        throw new NiftyError(
          "NIFTY130",
          `invalid store ${what} ${JSON.stringify(v)}`,
          "use letters, digits and . _ : @ + - only, not starting with a dot",
        );
      }
    }
    if (RESERVED.has(namespace)) {
      throw new NiftyError(
        "NIFTY130",
        `store namespace ${JSON.stringify(namespace)} is reserved`,
        `choose a name other than ${[...RESERVED].join(", ")}`,
      );
    }
    return path.join(this.dir, namespace, `${key}.json`);
  }
}

/** What makes a path unusable as the store's directory, whatever its permissions: a file, a link loop. */
const NOT_A_STORE_DIR = new Set(["ENOTDIR", "EEXIST", "ELOOP", "ENAMETOOLONG"]);

export async function openStore(dir: string): Promise<Store> {
  const store = new Store(dir);
  // At once: every build opens the store, and each of these is a round trip to the thread pool.
  const [journals] = await Promise.all([
    listDir(store.unsyncedDir),
    ...[store.blobsDir, store.tmpDir, store.quarantineDir, store.usesDir].map((d) =>
      fsp.mkdir(d, { recursive: true }),
    ),
  ]).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined || !NOT_A_STORE_DIR.has(code)) throw error;
    throw new NiftyError(
      "NIFTY230",
      `opening the store ${dir} failed: ${(error as Error).message}`,
      "the store is a directory: give --cache (or NIFTY_CACHE) a directory, or a path where one can be made",
    );
  });
  if (journals.length > 0) await (await import("./unsynced.ts")).settleUnsynced(store, journals);
  return store;
}

/**
 * A stream into a unique temp file under DIR/tmp that hashes what it writes.
 * Nothing appears in the store until commit(); abort() or any failure leaves
 * nothing but, at worst (a killed process), the temp file that gc removes.
 * Its digest is journaled before it is named, like a BlobFile's.
 */
export class BlobWriter extends Writable {
  readonly tempPath: string;
  #store: Store;
  #hash: Hash = createHash("sha256");
  #size = 0;
  #fh: FileHandle | undefined;
  #flushed = false;
  #done = false;

  constructor(store: Store) {
    super({ highWaterMark: 1 << 16 });
    this.#store = store;
    this.tempPath = store.tempPath(".part");
  }

  /** The digest of everything written, once the stream has finished. */
  get digest(): string {
    if (!this.writableFinished) throw new Error("BlobWriter: the digest is known once the stream finished");
    return this.#digestOfAll();
  }
  #digest: string | undefined;
  #digestOfAll(): string {
    return (this.#digest ??= `sha256:${this.#hash.digest("hex")}`);
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#size;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    fsp.open(this.tempPath, "wx", 0o600).then(
      (fh) => {
        this.#fh = fh;
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    // Synchronous, as the tar writer's reads: a local file's write lands in the
    // page cache, and a thread-pool round trip per chunk cost more than the copy.
    try {
      writeAllSync(this.#fh!.fd, chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#flush().then(() => callback(), callback);
  }

  /**
   * Read-only and closed, its bytes synced or its digest in this thread's synced journal
   * (Store.journalUnsynced): only then may the blob get its name. The journal costs a small
   * file's sync where syncing the blob waits for all of its bytes (the tarballs' 100 MB).
   */
  async #flush(): Promise<void> {
    const fh = this.#fh!;
    if (!(await this.#store.journalUnsyncedAsync([this.#digestOfAll()]))) await fh.sync();
    await fh.chmod(0o444);
    this.#fh = undefined;
    await fh.close();
    this.#flushed = true;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fh = this.#fh;
    this.#fh = undefined;
    (async () => {
      if (fh) await fh.close().catch(() => {});
      if (!this.#flushed) await fsp.rm(this.tempPath, { force: true });
    })().then(
      () => callback(error),
      () => callback(error),
    );
  }

  /**
   * Finish writing and publish the blob. With `expected`, a different digest
   * removes the temp file and throws DigestMismatchError (`what` names the
   * source in that message).
   */
  async commit(expected?: string, what = "blob"): Promise<BlobInfo> {
    if (this.#done) throw new Error("BlobWriter already committed or aborted");
    if (expected !== undefined) digestHex(expected);
    if (!this.writableEnded) this.end();
    try {
      await finished(this);
    } catch (err) {
      this.#done = true;
      await fsp.rm(this.tempPath, { force: true });
      throw err;
    }
    this.#done = true;
    const digest = this.digest;
    if (expected !== undefined && expected !== digest) {
      await fsp.rm(this.tempPath, { force: true });
      throw new DigestMismatchError(expected, digest, what);
    }
    const final = this.#store.blobPath(digest);
    try {
      await linkInto(this.tempPath, final);
    } catch (err) {
      if (!isCode(err, "EEXIST")) {
        await fsp.rm(this.tempPath, { force: true });
        throw err;
      }
      // Same bytes already stored (maybe by another process): refresh its age for gc.
      const now = new Date();
      await fsp.utimes(final, now, now).catch(() => {});
    }
    await fsp.rm(this.tempPath, { force: true });
    return { digest, size: this.#size, path: final };
  }

  /** Drop everything written; safe to call at any time, more than once. */
  async abort(): Promise<void> {
    this.#done = true;
    this.#flushed = false;
    if (!this.destroyed) {
      this.destroy();
      await finished(this).catch(() => {});
    }
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => {});
    await fsp.rm(this.tempPath, { force: true });
  }
}

/**
 * A blob written with synchronous calls: a worker thread (src/cache/threads.ts) blocks only
 * itself, and a stream and a thread-pool round trip per call cost more than the small files of a
 * package. A temp file until named: finish() closes it read-only, unsynced; the caller makes the
 * batch safe to name (Store.journalUnsynced, else sync() on each), then name() links each under
 * its digest, and Store.syncBlobNames syncs the directory.
 */
export class BlobFile {
  readonly tempPath: string;
  readonly #store: Store;
  readonly #hash: Hash = createHash("sha256");
  #fd: number | undefined;
  #size = 0;

  constructor(store: Store) {
    this.#store = store;
    this.tempPath = store.tempPath(".part");
    this.#fd = openSync(this.tempPath, "wx", 0o600);
  }

  get size(): number {
    return this.#size;
  }

  /** The digest of what was written: ask once writing is over. */
  get digest(): string {
    return (this.#digest ??= `sha256:${this.#hash.digest("hex")}`);
  }
  #digest: string | undefined;

  write(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    writeAllSync(this.#fd!, chunk);
  }

  /** Close the temp file, read-only. Its bytes are not synced yet. */
  finish(): void {
    const fd = this.#fd!;
    this.#fd = undefined;
    try {
      fchmodSync(fd, 0o444);
    } finally {
      closeSync(fd);
    }
  }

  /** Sync the finished temp file on its own: where no journal can stand for it. */
  sync(): void {
    const fd = openSync(this.tempPath, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Name the finished blob by its digest; the temp file is gone whatever happens. */
  name(): BlobInfo {
    const digest = this.digest;
    const final = this.#store.blobPath(digest);
    try {
      linkIntoSync(this.tempPath, final);
    } catch (err) {
      if (!isCode(err, "EEXIST")) {
        removeSync(this.tempPath);
        throw err;
      }
      // Same bytes already stored (maybe by another process): refresh its age for gc.
      const now = new Date();
      try {
        utimesSync(final, now, now);
      } catch {
        // Removed meanwhile by gc: the temp file is linked again by the next build that needs it.
      }
    }
    removeSync(this.tempPath);
    return { digest, size: this.#size, path: final };
  }

  /** Drop everything written; safe to call at any time, more than once. */
  abort(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    removeSync(this.tempPath);
  }
}

/** unlink(2), where a missing file is fine (rm's lstat first is a system call more). */
function removeSync(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if (!isCode(err, "ENOENT")) throw err;
  }
}

function linkIntoSync(tmp: string, final: string): void {
  try {
    linkSync(tmp, final);
  } catch (err) {
    if (!isCode(err, "ENOENT")) throw err;
    // The blobs directory was removed under us: recreate it once.
    mkdirSync(path.dirname(final), { recursive: true });
    linkSync(tmp, final);
  }
}

const journalLines = (digests: readonly string[]): Buffer =>
  Buffer.from(digests.map((d) => `${d}\n`).join(""));
const writeFd = promisify(write);
const fsyncFd = promisify(fsync);

function writeAllSync(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
}

async function linkInto(tmp: string, final: string): Promise<void> {
  try {
    await fsp.link(tmp, final);
  } catch (err) {
    if (!isCode(err, "ENOENT")) throw err;
    // The blobs directory was removed under us: recreate it once.
    await fsp.mkdir(path.dirname(final), { recursive: true });
    await fsp.link(tmp, final);
  }
  await syncDir(path.dirname(final));
}

function syncDirSync(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await fsp.readdir(dir)).sort();
  } catch (err) {
    if (isCode(err, "ENOENT")) return [];
    throw err;
  }
}
