// A suite's Packages index for one component and architecture: chosen from
// the verified Release, downloaded through the store pinned by the SHA256 the
// signed text gives, parsed while it downloads into its stored form
// (package-index.ts), written to the store as it is made and named by the
// index's digest once the download matched it, so a resolve opens a compact
// file, decoding only the rows it visits, instead of reading 50 MB of stanzas.
// Also: fetching one .deb by the digest its index gives.
import { createReadStream } from "node:fs";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import { once } from "node:events";
import { type Duplex, Readable, type Writable } from "node:stream";
import { isUtf8 } from "node:buffer";
import { createGunzip } from "node:zlib";
import { NiftyError } from "../diagnostics/errors.ts";
import { DigestMismatchError, digestHex } from "../cache/store.ts";
import type { Store } from "../cache/store.ts";
import { FetchFailedError, fetchBlob } from "../fetch/download.ts";
import type { DownloadTap, FetchProgress, FetchResult, SourceFailure } from "../fetch/download.ts";
import { DEFAULT_LIMITS, showSize } from "../core/limits.ts";
import { poolPathProblem } from "./lockfile.ts";
import { archiveMirrors } from "./release.ts";
import type { Release, VerifiedRelease } from "./release.ts";
import type { PackageRecord, SuiteRef } from "./types.ts";
import {
  DamagedIndexError,
  PACKAGE_INDEX_FORMAT,
  PackageIndex,
  PackageIndexWriter,
  RowBytes,
  encodePackageIndex,
  FIELD,
  fileSource,
  type BlobSource,
  recordOf,
} from "./package-index.ts";

export type IndexCompression = "xz" | "gzip" | "none";

/** The Packages file chosen for a component and architecture. */
export interface IndexFile {
  /** Path below dists/<suite>/, e.g. main/binary-amd64/Packages.xz */
  path: string;
  /** `sha256:<hex>` from the signed Release. */
  sha256: string;
  size: number;
  compression: IndexCompression;
}

/** Network options shared by the fetching functions. */
export interface FetchOptions {
  /** Never touch the network; what is not in the store is an error. */
  offline?: boolean;
  /** Told of a download's bytes as they arrive (a progress line). */
  onProgress?: (p: FetchProgress) => void;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
}

// gzip first: zlib decompresses bookworm main (50 MB) in about 0.25 s where xz takes 1.2 s,
// for 12.1 MB to download instead of 8.8 MB (docs/performance.md, "Resolving packages").
const SUFFIXES: readonly [string, IndexCompression][] = [
  [".gz", "gzip"],
  [".xz", "xz"],
  ["", "none"],
];

/**
 * The best Packages file the Release lists for `component`/`arch`: .gz, else
 * .xz, else plain. Debian's security archive names its components
 * `updates/main` but lists the files under `main/`; either spelling works.
 */
export function pickPackagesIndex(
  release: Release,
  component: string,
  arch: string,
  what: string,
): IndexFile {
  const bare = component.replace(/^updates\//, "");
  const known =
    release.components.length === 0 ||
    release.components.some((c) => c === component || c.replace(/^updates\//, "") === bare);
  if (!known) {
    throw new NiftyError(
      "NIFTY622",
      `${what} has no component ${component} (it has ${release.components.join(", ")})`,
      "check the component in the recipe; Debian's are main, contrib, non-free, non-free-firmware",
    );
  }
  if (release.architectures.length > 0 && !release.architectures.includes(arch)) {
    throw new NiftyError(
      "NIFTY622",
      `${what} has no architecture ${arch} (it has ${release.architectures.join(", ")})`,
      "the suite does not publish that architecture: build without that --platform, or use a suite that has it",
    );
  }
  const byPath = new Map(release.files.map((f) => [f.path, f]));
  for (const dir of [...new Set([component, bare, `updates/${bare}`])]) {
    for (const [suffix, compression] of SUFFIXES) {
      const f = byPath.get(`${dir}/binary-${arch}/Packages${suffix}`);
      if (f) return { path: f.path, sha256: f.sha256, size: f.size, compression };
    }
  }
  throw new NiftyError(
    "NIFTY622",
    `${what} lists no Packages index for ${component}/binary-${arch}`,
    "the suite does not publish this component for this architecture",
  );
}

/** Where an index can be downloaded: by-hash first where the archive offers it (immune to a mirror updating mid-way). */
export function indexSources(release: VerifiedRelease, file: IndexFile): string[] {
  const out: string[] = [];
  for (const root of release.mirrors) {
    const base = `${root}/dists/${release.ref.suite}`;
    if (release.acquireByHash)
      out.push(`${base}/${file.path.replace(/[^/]+$/, "")}by-hash/SHA256/${digestHex(file.sha256)}`);
    out.push(`${base}/${file.path}`);
  }
  return out;
}

/** Download the index into the store, pinned by its signed digest (no request when it is already there). */
export async function fetchPackagesIndex(
  store: Store,
  release: VerifiedRelease,
  file: IndexFile,
  options: FetchOptions = {},
  tap?: (file: string) => DownloadTap,
): Promise<FetchResult> {
  const name = `${file.path} of ${release.ref.suite}`;
  try {
    return await fetchBlob(store, {
      name,
      sources: indexSources(release, file),
      digest: file.sha256,
      offline: options.offline ?? false,
      ...net(options),
      ...(tap ? { tap } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } catch (err) {
    const mismatches = mismatchesOf(err);
    if (mismatches.length === 0) throw err;
    throw new NiftyError(
      "NIFTY623",
      `${name} does not match the SHA256 its signed InRelease gives: expected ${file.sha256}\n` +
        mismatches.map((m) => `  ${m.url}: got ${m.mismatch!.actual}`).join("\n"),
      "the mirror's copy was changed or is out of step with its InRelease; try again later, or use another mirror",
    );
  }
}

/** The source failures that were digest mismatches, from either error fetchBlob throws for them. */
function mismatchesOf(err: unknown): SourceFailure[] {
  if (err instanceof DigestMismatchError)
    return [
      {
        url: err.message.replace(/^digest mismatch for (\S+):.*$/s, "$1"),
        reason: err.message,
        mismatch: { expected: err.expected, actual: err.actual },
      },
    ];
  if (err instanceof FetchFailedError) return err.failures.filter((f) => f.mismatch);
  return [];
}

function net(o: FetchOptions): { timeoutMs?: number; retries?: number; retryDelayMs?: number } {
  const out: { timeoutMs?: number; retries?: number; retryDelayMs?: number } = {};
  if (o.timeoutMs !== undefined) out.timeoutMs = o.timeoutMs;
  if (o.retries !== undefined) out.retries = o.retries;
  if (o.retryDelayMs !== undefined) out.retryDelayMs = o.retryDelayMs;
  return out;
}

// ---------------------------------------------------------------------------
// Parsing

/** Decompress a stored index as a stream of byte chunks. */
export function openIndex(file: string, compression: IndexCompression): Promise<AsyncIterable<Buffer>> {
  return decompress(createReadStream(file, { highWaterMark: 1 << 20 }), compression);
}

/** An index's bytes decompressed, as a stream of byte chunks. */
async function decompress(input: Readable, compression: IndexCompression): Promise<AsyncIterable<Buffer>> {
  const decoder = await decoderFor(compression);
  if (decoder === undefined) return input;
  input.on("error", (err) => decoder.destroy(err));
  return input.pipe(decoder);
}

/** The decoder of a compressed index; undefined for a plain one. */
async function decoderFor(compression: IndexCompression): Promise<Duplex | undefined> {
  if (compression === "gzip") return createGunzip();
  if (compression !== "xz") return undefined;
  // The .debs' decoder (liblzma in process, a memory cap), loaded only when an xz index is read.
  const { createXzDecoder } = await import("../fetch/xz.ts");
  return createXzDecoder();
}

/** Parse a Packages file on disk (compressed or not) into records. */
export async function parsePackagesFile(
  file: string,
  compression: IndexCompression,
  from: SuiteRef,
  what: string,
  maxBytes: number = DEFAULT_LIMITS.indexBytes,
): Promise<PackageRecord[]> {
  try {
    return await parsePackages(await openIndex(file, compression), from, what, maxBytes);
  } catch (err) {
    throw readError(err, what);
  }
}

/** Field names as Packages files spell them, each with its place in a row. */
const KEPT_NAMES: readonly [string, number][] = [
  ["Package", FIELD.name],
  ["Version", FIELD.version],
  ["Architecture", FIELD.architecture],
  ["Multi-Arch", FIELD.multiArch],
  ["Depends", FIELD.depends],
  ["Pre-Depends", FIELD.preDepends],
  ["Provides", FIELD.provides],
  ["Essential", FIELD.essential],
  ["Priority", FIELD.priority],
  ["Filename", FIELD.filename],
  ["Size", FIELD.size],
  ["SHA256", FIELD.sha256],
  ["Installed-Size", FIELD.installedSize],
  ["Description", FIELD.description],
];
/** The names grouped by length, for an allocation-free lookup. */
const BY_LENGTH: [Buffer, number][][] = [];
for (const [name, field] of KEPT_NAMES)
  (BY_LENGTH[name.length] ??= []).push([Buffer.from(name, "latin1"), field]);
/** Each field's name in messages. */
const LABELS: string[] = [];
for (const [name, field] of KEPT_NAMES) LABELS[field] = name;

/** The kept field named by buf[start, end), compared without regard to ASCII case, as deb822 says; -1 for none. */
function keptField(buf: Buffer, start: number, end: number): number {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return -1;
  for (const [name, field] of candidates) {
    let i = 0;
    while (i < name.length && buf[start + i] === name[i]) i++;
    if (i === name.length) return field;
  }
  for (const [name, field] of candidates) {
    let i = 0;
    while (i < name.length && (buf[start + i]! | 0x20) === (name[i]! | 0x20)) i++;
    if (i === name.length) return field;
  }
  return -1;
}

/** Appends buf[start, stop), without the spaces and tabs around it, to the row; returns whether any was left. */
function appendTrimmed(row: RowBytes, buf: Buffer, start: number, stop: number): boolean {
  while (start < stop && isBlank(buf[start]!)) start++;
  while (stop > start && isBlank(buf[stop - 1]!)) stop--;
  row.append(buf, start, stop);
  return stop > start;
}

function isBlank(c: number): boolean {
  return c === 32 || c === 9;
}

/** Fields whose continuation lines are part of the value (folded: joined with a space). */
const FOLDED = new Set<number>([FIELD.depends, FIELD.preDepends, FIELD.provides]);
const MULTI_ARCH = ["same", "foreign", "allowed", "no"].map((v) => Buffer.from(v, "latin1"));
const SPACE = Buffer.from(" ", "latin1");

/**
 * Parse deb822 Packages stanzas from a stream of byte chunks (strings are
 * taken as UTF-8). Only the fields PackageRecord has are kept; relation
 * fields keep their text, with continuation lines folded into one line;
 * Description keeps its first line. A stanza without Package, Version,
 * Architecture, Filename, Size or SHA256 is an error naming it.
 */
export async function parsePackages(
  chunks: AsyncIterable<Buffer | string>,
  from: SuiteRef,
  what: string,
  maxBytes: number = DEFAULT_LIMITS.indexBytes,
): Promise<PackageRecord[]> {
  const records: PackageRecord[] = [];
  const reader = stanzaReader(what, (row) => records.push(recordOf(row.fields(), from)));
  await eachLine(chunks, what, maxBytes, reader.line);
  reader.line(Buffer.alloc(0), 0, 0);
  return records;
}

/**
 * Packages stanzas from lines (an empty line ends a stanza): the fields kept, continuations folded,
 * copied as bytes into one reused row (no string per line or field): `onRow` reads it before the
 * next line arrives.
 */
function stanzaReader(what: string, onRow: (row: RowBytes) => void) {
  const row = new RowBytes();
  let fields = 0;
  /** The kept field the last field line set (its bytes end the row's buffer), or -1. */
  let last = -1;
  let lineNo = 0;
  let stanzaLine = 0;
  const line = (buf: Buffer, start: number, stop: number): void => {
    lineNo++;
    if (stop > start && buf[stop - 1] === 13) stop--; // CRLF
    if (stop === start) {
      if (fields > 0) onRow(checkRow(row, what, stanzaLine));
      row.clear();
      fields = 0;
      last = -1;
      return;
    }
    const c = buf[start];
    if (c === 32 || c === 9) {
      if (fields === 0) throw malformedIndex(what, lineNo, "a continuation line with no field before it");
      if (last >= 0 && FOLDED.has(last)) {
        // Joined with a space unless either side is empty; the field's bytes end the buffer.
        const mark = row.used;
        if (row.end[last]! > row.start[last]!) row.append(SPACE, 0, 1);
        if (appendTrimmed(row, buf, start, stop)) row.end[last] = row.used;
        else row.used = mark;
      }
      return;
    }
    const colon = buf.indexOf(58, start);
    if (colon < 0 || colon >= stop)
      throw malformedIndex(
        what,
        lineNo,
        `${JSON.stringify(buf.toString("utf8", start, Math.min(stop, start + 60)))} is not "Field: value"`,
      );
    if (fields === 0) stanzaLine = lineNo;
    fields++;
    last = keptField(buf, start, colon);
    if (last < 0) return;
    row.start[last] = row.used;
    appendTrimmed(row, buf, colon + 1, stop);
    row.end[last] = row.used;
  };
  return { line };
}

/**
 * Each line of a stream of byte chunks, given as (buffer, start, stop) without its newline. A line's
 * pieces across chunks are joined once, when its end arrives: one line as long as the index stays
 * linear to read (never re-copied per chunk). The whole stream and each line are bounded.
 */
async function eachLine(
  chunks: AsyncIterable<Buffer | string>,
  what: string,
  maxBytes: number,
  line: (buf: Buffer, start: number, stop: number) => void,
  afterChunk?: () => Promise<void> | undefined,
): Promise<void> {
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let total = 0;
  let lines = 0;
  const deliver = (buf: Buffer, start: number, stop: number) => {
    lines++;
    line(buf, start, stop);
  };
  const tooLong = (length: number) => {
    if (length > MAX_LINE)
      throw indexTooLarge(what, `line ${lines + 1} is longer than ${showSize(MAX_LINE)}`);
  };
  for await (const raw of chunks) {
    const chunk = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw;
    total += chunk.length;
    if (total > maxBytes) {
      throw indexTooLarge(
        what,
        `it is larger than the limit of ${showSize(maxBytes)} once decompressed`,
        true,
      );
    }
    let start = 0;
    let nl = chunk.indexOf(10);
    if (pending.length > 0) {
      tooLong(pendingLength + (nl < 0 ? chunk.length : nl));
      if (nl < 0) {
        pending.push(chunk);
        pendingLength += chunk.length;
        continue;
      }
      pending.push(chunk.subarray(0, nl));
      const joined = Buffer.concat(pending);
      pending = [];
      pendingLength = 0;
      deliver(joined, 0, joined.length);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    for (; nl >= 0; nl = chunk.indexOf(10, start)) {
      tooLong(nl - start);
      deliver(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) {
      tooLong(chunk.length - start);
      pending.push(chunk.subarray(start));
      pendingLength = chunk.length - start;
    }
    await afterChunk?.();
  }
  if (pending.length > 0) {
    const joined = Buffer.concat(pending);
    deliver(joined, 0, joined.length);
  }
}

/** The longest line an index may have: real ones stay under a few KiB (long Depends, Provides). */
export const MAX_LINE = 1 << 20;

function indexTooLarge(what: string, why: string, limit = false): NiftyError {
  const hint = limit
    ? "Debian's largest indices are under 100 MiB: the mirror serves something else; " +
      "use another mirror, or raise the limit: --limit index-size=<size>"
    : "no Packages file has lines that long: the index is hostile or not a Packages file; use another mirror";
  return new NiftyError("NIFTY811", `${what}: ${why}`, hint);
}

/**
 * The stanza's row checked and normalised in place, as the record will read it: a field that is
 * not valid UTF-8 holds what decoding it gives, SHA256 is lowercase, sizes are as Number() reads them.
 */
function checkRow(row: RowBytes, what: string, line: number): RowBytes {
  if (!isUtf8(row.bytes.subarray(0, row.used)))
    for (let i = 0; i < row.start.length; i++) row.set(i, row.text(i));
  const named = () => row.text(FIELD.name);
  const need = (i: number): void => {
    if (row.start[i]! < 0 || row.end[i] === row.start[i]) {
      const name = named();
      throw malformedIndex(what, line, `the stanza${name ? ` of ${name}` : ""} has no ${LABELS[i]} field`);
    }
  };
  need(FIELD.sha256);
  if (!lowerHex64(row, FIELD.sha256)) {
    const sha = JSON.stringify(row.text(FIELD.sha256)!.toLowerCase());
    throw malformedIndex(what, line, `${named()}: SHA256 ${sha} is not 64 hex digits`);
  }
  need(FIELD.filename);
  const unsafe = poolPathProblem(row.text(FIELD.filename)!);
  if (unsafe !== undefined) throw malformedIndex(what, line, `${named()}: Filename ${unsafe}`);
  need(FIELD.name);
  need(FIELD.version);
  need(FIELD.architecture);
  need(FIELD.size);
  wholeNumber(row, FIELD.size, what, line);
  if (row.start[FIELD.multiArch]! >= 0 && !MULTI_ARCH.some((v) => fieldIs(row, FIELD.multiArch, v)))
    row.start[FIELD.multiArch] = -1;
  if (row.start[FIELD.essential]! >= 0) row.set(FIELD.essential, isYes(row, FIELD.essential) ? "1" : "0");
  for (const i of [FIELD.installedSize, FIELD.depends, FIELD.preDepends, FIELD.provides])
    if (row.end[i] === row.start[i]) row.start[i] = -1;
  if (row.start[FIELD.installedSize]! >= 0) wholeNumber(row, FIELD.installedSize, what, line);
  return row;
}

/** Lowercases field `i` in place (ASCII only); whether it is then 64 hex digits. */
function lowerHex64(row: RowBytes, i: number): boolean {
  const b = row.bytes;
  if (row.end[i]! - row.start[i]! !== 64) return false;
  for (let at = row.start[i]!; at < row.end[i]!; at++) {
    if (b[at]! >= 0x41 && b[at]! <= 0x5a) b[at]! |= 0x20;
    const c = b[at]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** Checks field `i` is decimal digits and writes it as Number() reads it, so the row says what the record did ("007" is 7). */
function wholeNumber(row: RowBytes, i: number, what: string, line: number): void {
  const b = row.bytes;
  let at = row.start[i]!;
  const end = row.end[i]!;
  for (let k = at; k < end; k++)
    if (b[k]! < 0x30 || b[k]! > 0x39) {
      const v = JSON.stringify(row.text(i));
      throw malformedIndex(what, line, `${row.text(FIELD.name)}: ${LABELS[i]} ${v} is not a whole number`);
    }
  while (at < end - 1 && b[at] === 0x30) at++;
  // Up to 15 digits Number() reads exactly; longer ones are written as it writes them.
  if (end - at <= 15) row.start[i] = at;
  else row.set(i, String(Number(row.text(i))));
}

/** Whether field `i` is exactly these bytes. */
function fieldIs(row: RowBytes, i: number, v: Buffer): boolean {
  return row.end[i]! - row.start[i]! === v.length && v.compare(row.bytes, row.start[i]!, row.end[i]!) === 0;
}

/** Whether field `i` is "yes" in any ASCII case (what toLowerCase() === "yes" accepts). */
function isYes(row: RowBytes, i: number): boolean {
  const b = row.bytes;
  const at = row.start[i]!;
  return (
    row.end[i]! - at === 3 &&
    (b[at]! | 0x20) === 0x79 &&
    (b[at + 1]! | 0x20) === 0x65 &&
    (b[at + 2]! | 0x20) === 0x73
  );
}

function malformedIndex(what: string, line: number, why: string): NiftyError {
  return new NiftyError(
    "NIFTY624",
    `${what}, line ${line}: ${why}`,
    "the index is not valid Debian control data; it may be truncated, or not a Packages file",
  );
}

// ---------------------------------------------------------------------------
// The parsed form, cached by the index's digest (package-index.ts)

/** What the store's "debian-index" record holds, keyed by the index's sha256. */
interface ParsedIndexRecord {
  format: string;
  /** The blob holding the stored form; its digest is checked on every read. */
  blob: string;
  count: number;
}

/**
 * A parse written into a store writer as it goes (rows in pieces, then the tables): nothing is
 * held whole, and nothing named, until `keep` commits it, which the caller does only once the
 * index's signed digest is known to match.
 */
interface PendingParse {
  /** Commits the stored form; returns its blob, opened (the tables are read, not the rows). */
  keep(): Promise<{ blob: string; source: BlobSource }>;
  discard(): Promise<void>;
}

/** Parse a Packages stream into the stored form, written to the store as it is made (not yet named). */
async function parseIntoStore(
  store: Store,
  chunks: AsyncIterable<Buffer | string>,
  what: string,
  indexDigest: string,
  maxBytes: number,
): Promise<PendingParse> {
  const out = store.createWriter();
  out.on("error", () => {}); // surfaced by commit()
  // A piece the store wrote out at once (its writes are synchronous once the file is open) is reused.
  const writer = new PackageIndexWriter({
    write: (chunk) => {
      out.write(chunk);
      return out.writableLength === 0;
    },
  });
  const reader = stanzaReader(what, (row) => writer.addRowBytes(row));
  // Waits for the disk after a chunk when the writer's queue is full.
  const drained = () => (out.writableNeedDrain ? once(out, "drain").then(() => {}) : undefined);
  try {
    await eachLine(chunks, what, maxBytes, reader.line, drained);
    reader.line(Buffer.alloc(0), 0, 0);
    writer.finish(indexDigest);
  } catch (err) {
    await out.abort();
    throw err;
  }
  return {
    keep: async () => {
      const blob = await out.commit();
      const fh = await fsp.open(blob.path, "r");
      return { blob: blob.digest, source: fileSource(fh, blob.size) };
    },
    discard: () => out.abort(),
  };
}

/** What a download's tap made: the pending parse, or why the bytes could not be parsed. */
type TapOutcome = { parsed: PendingParse } | { error: unknown };

/**
 * A tap (fetch/download.ts) that parses an index as it downloads, reading it back from the file
 * the download is written to (from the page cache: the download is never held in memory for the
 * parse, however far ahead of it the network runs). A parse that fails lets the download end, so
 * its digest is checked first: a mismatch is reported as one, and a parse of bytes the signed
 * digest does not vouch for is discarded, never stored.
 */
function parsingTap(
  store: Store,
  compression: IndexCompression,
  what: string,
  indexDigest: string,
  maxBytes: number,
): (file: string) => DownloadTap {
  return (file) => {
    const arrival = new Arrival();
    const parsing = arrivingIndex(file, arrival, compression).then((chunks) =>
      parseIntoStore(store, chunks, what, indexDigest, maxBytes),
    );
    parsing.catch(() => {});
    return {
      write: (chunk) => arrival.more(chunk.length),
      end: async (): Promise<TapOutcome> => {
        arrival.end();
        return parsing.then(
          (parsed) => ({ parsed }),
          (error: unknown) => ({ error }),
        );
      },
      abort: async () => {
        arrival.fail(new Error("the download was abandoned"));
        await parsing.then(
          (p) => p.discard(),
          () => {},
        );
      },
    };
  };
}

/** The decompressed bytes of an index as its download writes it (file) and tells of it (arrival). */
async function arrivingIndex(
  file: string,
  arrival: Arrival,
  compression: IndexCompression,
): Promise<AsyncIterable<Buffer>> {
  const decoder = await decoderFor(compression);
  if (decoder === undefined) {
    // The parser holds pieces of what it is given (a line's start), so each piece is new here.
    const fresh = async () => Buffer.allocUnsafe(PIECE);
    // A byte stream (Readable.from's default, object mode, would read 16 pieces ahead of the parse).
    return Readable.from(following(file, arrival, fresh), { objectMode: false, highWaterMark: PIECE });
  }
  feed(file, arrival, decoder).catch((err: unknown) => decoder.destroy(err as Error));
  return decoder;
}

/** Pieces of a compressed index read from the download's file at once. */
const PIECE = 1 << 20;

/**
 * Writes the download's bytes into the decoder through two buffers in turn: a buffer is read into
 * again only once the decoder has consumed what it held (the write's callback). A new buffer per
 * piece would leave 12 MB of bookworm's index as garbage, which a parse that makes few objects
 * gives the collector no reason to free before the peak (docs/performance.md).
 */
async function feed(file: string, arrival: Arrival, decoder: Writable): Promise<void> {
  const buffers = [Buffer.allocUnsafe(PIECE), Buffer.allocUnsafe(PIECE)];
  const consumed: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let turn = 0;
  // A decoder closed early (the parse failed and stopped reading) never calls back: stop with it.
  const closed = new Promise<never>((_, reject) =>
    decoder.once("close", () => reject(new Error("the index's decoder was closed"))),
  );
  closed.catch(() => {});
  const next = async () => {
    await Promise.race([consumed[turn], closed]);
    return buffers[turn]!;
  };
  for await (const piece of following(file, arrival, next)) {
    consumed[turn] = new Promise((resolve, reject) => {
      decoder.write(piece, (err) => (err ? reject(err) : resolve()));
    });
    consumed[turn]!.catch(() => {}); // awaited before the buffer is used again, or below
    turn ^= 1;
  }
  await Promise.all(consumed);
  decoder.end();
}

/** How much of a download has arrived, and whether it is over: a reader waits on it. */
class Arrival {
  bytes = 0;
  ended = false;
  failed: Error | undefined;
  #wake: (() => void) | undefined;
  more(n: number): void {
    this.bytes += n;
    this.#poke();
  }
  end(): void {
    this.ended = true;
    this.#poke();
  }
  fail(error: Error): void {
    this.failed = error;
    this.#poke();
  }
  next(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }
  #poke(): void {
    this.#wake?.();
    this.#wake = undefined;
  }
}

/** The file opened for reading, or undefined while it does not exist yet. */
async function openIfThere(file: string): Promise<fsp.FileHandle | undefined> {
  try {
    return await fsp.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** A file's bytes as a download writes them: read up to what has arrived, then waiting for more. */
async function* following(
  file: string,
  arrival: Arrival,
  buffer: () => Promise<Buffer>,
): AsyncGenerator<Buffer> {
  let fh: fsp.FileHandle | undefined;
  let at = 0;
  try {
    for (;;) {
      if (arrival.failed !== undefined) throw arrival.failed;
      if (at < arrival.bytes) {
        fh ??= await openIfThere(file);
        const piece = await buffer();
        const length = Math.min(piece.length, arrival.bytes - at);
        const { bytesRead } = fh === undefined ? { bytesRead: 0 } : await fh.read(piece, 0, length, at);
        if (bytesRead > 0) {
          at += bytesRead;
          yield piece.subarray(0, bytesRead);
          continue;
        }
        // Arrived but not yet written out (the store is still creating the file): wait for more.
        if (arrival.ended) throw new Error(`${file} is shorter than the download`);
      } else if (arrival.ended) return;
      await arrival.next();
    }
  } finally {
    await fh?.close();
  }
}

/**
 * The stored parse of the index with this digest, opened; undefined for a miss (an old format,
 * a collected blob, or a blob that is not what the record names: never trusted, parsed again).
 */
export async function openParsedIndex(
  store: Store,
  indexDigest: string,
  from: SuiteRef,
): Promise<{ packages: PackageIndex; blob: string } | undefined> {
  const found = await readStoredIndex(store, indexDigest, from);
  return found === undefined || "damaged" in found ? undefined : found;
}

/** openParsedIndex, telling a damaged blob (to be replaced) from a miss. */
async function readStoredIndex(
  store: Store,
  indexDigest: string,
  from: SuiteRef,
): Promise<{ packages: PackageIndex; blob: string } | { damaged: string } | undefined> {
  const rec = await store.readRecord<ParsedIndexRecord>("debian-index", digestHex(indexDigest));
  if (rec?.format !== PACKAGE_INDEX_FORMAT || typeof rec.blob !== "string") return undefined;
  const file = store.blobPath(rec.blob);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, "r");
  } catch {
    return undefined; // the blob was collected: parse again
  }
  try {
    // Hashed whole as it is read in pieces; only the tables are kept, rows are read as visited.
    const size = (await fh.stat()).size;
    if ((await hashFile(fh, size)) !== rec.blob) {
      await fh.close();
      return { damaged: file };
    }
    return { packages: new PackageIndex(fileSource(fh, size), indexDigest, from), blob: rec.blob };
  } catch (err) {
    await fh.close();
    if (err instanceof DamagedIndexError) return { damaged: file };
    throw err;
  }
}

/** The sha256 of an open file's first `size` bytes, read a piece at a time. */
async function hashFile(fh: fsp.FileHandle, size: number): Promise<string> {
  const hash = createHash("sha256");
  const piece = Buffer.allocUnsafe(Math.min(size, 1 << 20));
  for (let at = 0; at < size; ) {
    const { bytesRead } = await fh.read(piece, 0, Math.min(piece.length, size - at), at);
    if (bytesRead === 0) break;
    hash.update(piece.subarray(0, bytesRead));
    at += bytesRead;
  }
  return `sha256:${hash.digest("hex")}`;
}

/** Every record of the stored parse of an index, or undefined. */
export async function readParsedIndex(
  store: Store,
  indexDigest: string,
  from: SuiteRef,
): Promise<PackageRecord[] | undefined> {
  const opened = await openParsedIndex(store, indexDigest, from);
  try {
    return opened?.packages.records();
  } finally {
    await opened?.packages.close();
  }
}

/** Name a stored form as the parse of the index with this digest. */
async function noteParsedIndex(
  store: Store,
  indexDigest: string,
  blob: string,
  count: number,
): Promise<void> {
  const rec: ParsedIndexRecord = { format: PACKAGE_INDEX_FORMAT, blob, count };
  await store.writeRecord("debian-index", digestHex(indexDigest), rec);
}

/** Keep the parse of an index given as records (tests, the language server's bench). */
export async function writeParsedIndex(
  store: Store,
  indexDigest: string,
  records: readonly PackageRecord[],
): Promise<string> {
  const blob = await store.putBuffer(encodePackageIndex(records, indexDigest));
  await noteParsedIndex(store, indexDigest, blob.digest, records.length);
  return blob.digest;
}

export interface LoadedIndex {
  /** The stored form, opened for lookups. */
  packages: PackageIndex;
  /** The Packages file the records come from. */
  index: IndexFile;
  /** "cache": the parsed form was in the store (no download, no parse); "parsed": the index was read now. */
  source: "cache" | "parsed";
  /** Whether the index itself had to be downloaded. */
  downloaded: boolean;
  /** Digests of the blobs used (the index when it was read, the parsed form), for the store's use records. */
  blobs: string[];
}

/**
 * The packages of a verified suite's component for `arch`: from the store's
 * parsed form when this exact index (by its signed digest) was read before,
 * else downloaded, parsed and cached.
 */
export async function loadPackages(
  store: Store,
  release: VerifiedRelease,
  arch: string,
  options: FetchOptions & { maxBytes?: number } = {},
): Promise<LoadedIndex> {
  const what = `${release.ref.suite} (${release.url})`;
  const index = pickPackagesIndex(release, release.ref.component, arch, what);
  const cached = await readStoredIndex(store, index.sha256, release.ref);
  if (cached !== undefined && !("damaged" in cached))
    return { packages: cached.packages, index, source: "cache", downloaded: false, blobs: [cached.blob] };
  // Its bytes are not the digest it is named by: removed, so the parse below stores it anew.
  if (cached !== undefined) await fsp.rm(cached.damaged, { force: true });
  const limit = options.maxBytes ?? DEFAULT_LIMITS.indexBytes;
  const name = `${index.path} of ${release.ref.suite}`;
  // The signed size says how much would be downloaded: too much is refused before a byte is.
  if (index.size > limit) {
    throw indexTooLarge(
      name,
      `its signed size, ${index.size} bytes, is over the limit of ${showSize(limit)}`,
      true,
    );
  }
  // Parsed as it downloads; taken only once the download matched its signed digest.
  const tap = parsingTap(store, index.compression, name, index.sha256, limit);
  const blob = await fetchPackagesIndex(store, release, index, options, tap);
  const outcome = blob.tapped as TapOutcome | undefined;
  if (outcome !== undefined && "error" in outcome) throw readError(outcome.error, name);
  // Already in the store (or stored by another process meanwhile): parsed from there.
  const pending =
    outcome?.parsed ??
    (await parseIntoStore(
      store,
      await openIndex(blob.path, index.compression),
      name,
      index.sha256,
      limit,
    ).catch((err: unknown) => {
      throw readError(err, name);
    }));
  const kept = await pending.keep();
  const packages = new PackageIndex(kept.source, index.sha256, release.ref);
  await noteParsedIndex(store, index.sha256, kept.blob, packages.count);
  return { packages, index, source: "parsed", downloaded: !blob.fromCache, blobs: [index.sha256, kept.blob] };
}

/** A failure to read an index, said as NIFTY624 unless it is a diagnostic already. */
function readError(err: unknown, what: string): NiftyError {
  if (err instanceof NiftyError) return err;
  return new NiftyError(
    "NIFTY624",
    `cannot read ${what}: ${(err as Error).message}`,
    "the file is truncated or corrupt; remove it from the cache (`niftyc cache verify`) and resolve again",
  );
}

// ---------------------------------------------------------------------------
// Packages

/** Where a .deb is and what it must hash to: an index record, or a lockfile entry. */
export type DebLocation = Pick<
  PackageRecord,
  "name" | "version" | "architecture" | "from" | "filename" | "sha256"
>;

/** What a package is called in messages: name, version, architecture and suite. */
export function describePackage(r: DebLocation): string {
  return `${r.name} ${r.version} (${r.architecture}, ${r.from.archive} ${r.from.suite})`;
}

/**
 * Download a package's .deb from its archive's mirrors into the store,
 * pinned by the SHA256 its (verified) index gives.
 */
export async function fetchDeb(
  store: Store,
  record: DebLocation,
  options: FetchOptions & { mirrors: Record<string, string[]> },
): Promise<FetchResult> {
  const pkg = describePackage(record);
  const unsafe = poolPathProblem(record.filename);
  if (unsafe !== undefined) {
    const hint = "the index is malformed or hostile; use a trustworthy mirror";
    throw new NiftyError("NIFTY624", `package ${pkg} has an unsafe pool path: ${unsafe}`, hint);
  }
  const sources = archiveMirrors(record.from, options.mirrors).map((root) => `${root}/${record.filename}`);
  try {
    return await fetchBlob(store, {
      name: `${record.name}_${record.version}_${record.architecture}.deb`,
      sources,
      digest: record.sha256,
      offline: options.offline ?? false,
      ...net(options),
    });
  } catch (err) {
    const mismatches = mismatchesOf(err);
    if (mismatches.length === 0) throw err;
    throw new NiftyError(
      "NIFTY625",
      `package ${pkg}: the downloaded .deb does not match the SHA256 its index gives: expected ${record.sha256}`,
      "the mirror's copy was changed or damaged; try another mirror, and resolve again if the archive replaced the package",
      mismatches.map((m) => `${m.url}: got ${m.mismatch!.actual}`),
    );
  }
}
