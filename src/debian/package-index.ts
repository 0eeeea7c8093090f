// The parsed form of a Packages index as the store keeps it: one binary blob
// a resolution reads without decoding it whole. Rows (one per stanza, only the
// fields niftyc uses) are written in the index's order as the parse gives them,
// so the writer never holds them; sorted tables of package names and of
// provided (virtual) names, written after them, point at them, so a lookup is
// a binary search and a row becomes a PackageRecord only when a resolution
// visits it.
//
// Layout (integers are little-endian u32, every table 4-byte aligned; offsets from the blob's start):
//   rows  rowStart[count+1]  sortedRows[count]  nameStart[names+1]  nameRow[names+1]
//   virtualStart[virtuals+1]  virtualFirst[virtuals+1]  providerRows[providers]  nameText  virtualText
//   header (ASCII JSON: format, index digest, counts, sections) | u32 header length | "NIFTYPKG"
// A row is its fields, each as a LEB128 varint of (UTF-8 length + 1), 0 for an absent field,
// then its bytes. sortedRows lists the rows by name (stable: a name's rows keep the index's
// order); nameRow, providerRows and every row number this module gives out count in that order.
// Names are compared as UTF-8 bytes.
import { readSync } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { NiftyError } from "../diagnostics/errors.ts";
import { parseProvides } from "./relations.ts";
import type { PackageRecord, SuiteRef } from "./types.ts";
import { byteOrder } from "./universe.ts";
import { versionProblem } from "./version.ts";

/** Bump when the parser or this encoding changes: the record is keyed by the index's digest. */
export const PACKAGE_INDEX_FORMAT = "niftyc-packages/3";

const MAGIC = Buffer.from("NIFTYPKG", "latin1");
/** The trailer: u32 header length, then the magic. */
const TRAILER = 4 + MAGIC.length;

/** One stanza's kept fields as the row stores them: text, undefined where absent. */
export interface RowFields {
  name: string;
  version: string;
  architecture: string;
  multiArch?: string | undefined;
  depends?: string | undefined;
  preDepends?: string | undefined;
  provides?: string | undefined;
  /** "1" or "0". */
  essential?: string | undefined;
  priority?: string | undefined;
  filename: string;
  /** Decimal digits. */
  size: string;
  /** 64 lowercase hex digits. */
  sha256: string;
  installedSize?: string | undefined;
  description?: string | undefined;
}

/** The row's fields, in order. */
const FIELDS = [
  "name",
  "version",
  "architecture",
  "multiArch",
  "depends",
  "preDepends",
  "provides",
  "essential",
  "priority",
  "filename",
  "size",
  "sha256",
  "installedSize",
  "description",
] as const satisfies ReadonlyArray<keyof RowFields>;

/** Each field's place in a row. */
export const FIELD = Object.fromEntries(FIELDS.map((f, i) => [f, i])) as Record<keyof RowFields, number>;

/**
 * One row's fields as UTF-8 bytes in a reused buffer (field i of FIELDS is bytes[start[i], end[i]),
 * absent where start[i] is -1): the parse fills it from the index's bytes with no string per field.
 */
export class RowBytes {
  bytes = Buffer.allocUnsafe(1 << 12);
  used = 0;
  readonly start = new Int32Array(FIELDS.length).fill(-1);
  readonly end = new Int32Array(FIELDS.length);

  clear(): void {
    this.used = 0;
    this.start.fill(-1);
  }

  /** Appends src[from, to) to the buffer; returns where it starts. */
  append(src: Uint8Array, from: number, to: number): number {
    const at = this.#room(to - from);
    this.bytes.set(src.subarray(from, to), at);
    this.used += to - from;
    return at;
  }

  /** Sets field `i` to the UTF-8 of `text` (undefined: absent). */
  set(i: number, text: string | undefined): void {
    if (text === undefined) {
      this.start[i] = -1;
      return;
    }
    const at = this.#room(Buffer.byteLength(text, "utf8"));
    this.used += this.bytes.write(text, at, "utf8");
    this.start[i] = at;
    this.end[i] = this.used;
  }

  /** Field `i` as text, or undefined where absent. */
  text(i: number): string | undefined {
    const at = this.start[i]!;
    return at < 0 ? undefined : this.bytes.toString("utf8", at, this.end[i]);
  }

  /** Every field as text. */
  fields(): RowFields {
    const out: Record<string, string | undefined> = {};
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i]!] = this.text(i);
    return out as unknown as RowFields;
  }

  #room(n: number): number {
    if (this.used + n > this.bytes.length) {
      const next = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + n));
      this.bytes.copy(next, 0, 0, this.used);
      this.bytes = next;
    }
    return this.used;
  }
}

const SECTIONS = [
  "rows",
  "rowStart",
  "sortedRows",
  "nameStart",
  "nameRow",
  "virtualStart",
  "virtualFirst",
  "providerRows",
  "nameText",
  "virtualText",
] as const;
type Section = (typeof SECTIONS)[number];
const BYTE_SECTIONS = new Set<Section>(["rows", "nameText", "virtualText"]);

interface Header {
  format: string;
  /** The Packages index this was derived from. */
  index: string;
  count: number;
  names: number;
  virtuals: number;
  providers: number;
  sections: Record<Section, [offset: number, length: number]>;
}

/** A record the stored form cannot be (a damaged or foreign blob): the caller parses the index again. */
export class DamagedIndexError extends Error {}

/** A record's fields as a row. */
function rowOf(r: PackageRecord): RowFields {
  return {
    name: r.name,
    version: r.version,
    architecture: r.architecture,
    multiArch: r.multiArch,
    depends: r.depends || undefined,
    preDepends: r.preDepends || undefined,
    provides: r.provides || undefined,
    essential: r.essential === undefined ? undefined : r.essential ? "1" : "0",
    priority: r.priority,
    filename: r.filename,
    size: String(r.size),
    sha256: r.sha256.slice("sha256:".length),
    installedSize: r.installedSize === undefined ? undefined : String(r.installedSize),
    description: r.description,
  };
}

/** A row as the record it stands for. */
export function recordOf(f: RowFields, from: SuiteRef): PackageRecord {
  const record: PackageRecord = {
    name: f.name,
    version: f.version,
    architecture: f.architecture,
    depends: f.depends ?? "",
    preDepends: f.preDepends ?? "",
    provides: f.provides ?? "",
    filename: f.filename,
    size: Number(f.size),
    sha256: `sha256:${f.sha256}`,
    from,
  };
  if (f.multiArch !== undefined) record.multiArch = f.multiArch as NonNullable<PackageRecord["multiArch"]>;
  if (f.essential !== undefined) record.essential = f.essential === "1";
  if (f.priority !== undefined) record.priority = f.priority;
  if (f.installedSize !== undefined) record.installedSize = Number(f.installedSize);
  if (f.description !== undefined) record.description = f.description;
  return record;
}

/** Where the stored form's bytes go, in order (a store writer; an array for encodePackageIndex). */
export interface ByteSink {
  /** True when the chunk was written out at once and its memory may be used again. */
  write(chunk: Buffer): boolean;
}

/** Rows are gathered into pieces of this size before they go to the sink. */
const PIECE = 1 << 20;

/** A growable u32 array. */
class U32s {
  a = new Uint32Array(1 << 12);
  length = 0;
  push(n: number): void {
    if (this.length === this.a.length) {
      const next = new Uint32Array(this.a.length * 2);
      next.set(this.a);
      this.a = next;
    }
    this.a[this.length++] = n;
  }
  get view(): Uint32Array {
    return this.a.subarray(0, this.length);
  }
}

/**
 * Strings kept as their UTF-8 bytes outside the JavaScript heap: 63,000 names held as strings
 * through a parse made V8 grow its young generation by some 40 MB (docs/performance.md).
 */
class ByteList {
  #bytes = Buffer.allocUnsafe(1 << 16);
  #used = 0;
  readonly #ends = new U32s();

  get length(): number {
    return this.#ends.length;
  }

  pushBytes(src: Uint8Array, from: number, to: number): void {
    const n = to - from;
    this.#grow(n);
    this.#bytes.set(src.subarray(from, to), this.#used);
    this.#used += n;
    this.#ends.push(this.#used);
  }

  push(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.#grow(n);
    this.#used += this.#bytes.write(s, this.#used, n, "utf8");
    this.#ends.push(this.#used);
  }

  #grow(n: number): void {
    if (this.#used + n <= this.#bytes.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#bytes.length * 2, this.#used + n));
    this.#bytes.copy(next, 0, 0, this.#used);
    this.#bytes = next;
  }

  /** Entry `i`'s bytes as a latin1 string: compared with <, such strings sort as the bytes do. */
  key(i: number): string {
    return this.#bytes.toString("latin1", i === 0 ? 0 : this.#ends.a[i - 1]!, this.#ends.a[i]!);
  }
}

/**
 * Encodes rows as a parse gives them and sends them on in pieces (the writer holds one piece,
 * the names and the row offsets, never the rows); finish() sends the tables and the header.
 */
export class PackageIndexWriter {
  readonly #sink: ByteSink;
  #piece = Buffer.allocUnsafe(PIECE);
  #used = 0;
  /** Bytes sent on before the current piece. */
  #sent = 0;
  #starts = new U32s();
  #names = new ByteList();
  /** Provided names, each with its row (in the index's order), for rows whose version and Provides are valid. */
  #provided = new ByteList();
  #providerRow = new U32s();

  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  add(record: PackageRecord): void {
    this.addRow(rowOf(record));
  }

  addRow(fields: RowFields): void {
    const row = (this.#scratch ??= new RowBytes());
    row.clear();
    for (let i = 0; i < FIELDS.length; i++) row.set(i, fields[FIELDS[i]!]);
    this.addRowBytes(row);
  }
  #scratch: RowBytes | undefined;

  /** Adds a row from its fields' bytes (the caller has checked them: see RowFields). */
  addRowBytes(row: RowBytes): void {
    const n = this.#names.length;
    this.#starts.push(this.#sent + this.#used);
    this.#names.pushBytes(row.bytes, row.start[FIELD.name]!, row.end[FIELD.name]!);
    for (let i = 0; i < FIELDS.length; i++) this.#field(row.bytes, row.start[i]!, row.end[i]!);
    if (row.start[FIELD.provides]! < 0 || row.end[FIELD.provides] === row.start[FIELD.provides]) return;
    // Decoded only here: a few thousand rows of an index provide something.
    if (versionProblem(row.text(FIELD.version)!) !== undefined) return;
    const parsed = parseProvides(row.text(FIELD.provides)!);
    if (parsed.ok)
      for (const name of new Set(parsed.value.map((p) => p.name))) {
        this.#provided.push(name);
        this.#providerRow.push(n);
      }
  }

  /** A field as the row stores it: LEB128 of (length + 1), 0 where absent, then its bytes. */
  #field(src: Buffer, from: number, to: number): void {
    if (from < 0) {
      this.#reserve(1);
      this.#piece[this.#used++] = 0;
      return;
    }
    const n = to - from;
    this.#reserve(n + 5);
    let v = n + 1;
    while (v >= 0x80) {
      this.#piece[this.#used++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#piece[this.#used++] = v;
    this.#used += src.copy(this.#piece, this.#used, from, to);
  }

  #reserve(n: number): void {
    if (this.#used + n <= this.#piece.length) return;
    this.#flush();
    if (n > this.#piece.length) this.#piece = Buffer.allocUnsafe(n);
  }

  #flush(): void {
    if (this.#used === 0) return;
    const done = this.#sink.write(this.#piece.subarray(0, this.#used));
    this.#sent += this.#used;
    if (!done || this.#piece.length !== PIECE) this.#piece = Buffer.allocUnsafe(PIECE);
    this.#used = 0;
  }

  /** Sends the rest: the tables and the header, for the index with this digest. */
  finish(indexDigest: string): void {
    const count = this.#names.length;
    this.#starts.push(this.#sent + this.#used);
    this.#flush();
    const rowsLength = this.#sent;
    const keys = Array.from({ length: count }, (_, i) => this.#names.key(i));
    this.#names = new ByteList();
    // Stable: a name's rows keep the index's order, which breaks ties as the eager universe does.
    const sortedRows = new Uint32Array(count);
    for (let i = 0; i < count; i++) sortedRows[i] = i;
    sortedRows.sort((a, b) => byteOrder(keys[a]!, keys[b]!) || a - b);
    const position = new Uint32Array(count);
    for (let i = 0; i < count; i++) position[sortedRows[i]!] = i;
    const names = groupNames(sortedRows, keys);
    const virtuals = virtualTable(this.#provided, this.#providerRow.view, position);
    this.#provided = new ByteList();
    this.#providerRow = new U32s();
    const parts: Array<[Section, Uint32Array | Buffer]> = [
      ["rowStart", this.#starts.view],
      ["sortedRows", sortedRows],
      ["nameStart", names.start],
      ["nameRow", names.first],
      ["virtualStart", virtuals.start],
      ["virtualFirst", virtuals.first],
      ["providerRows", virtuals.rows],
      ["nameText", names.text],
      ["virtualText", virtuals.text],
    ];
    const sections = { rows: [0, rowsLength] } as Record<Section, [number, number]>;
    let at = rowsLength;
    for (const [name, part] of parts) {
      const pad = -at & 3;
      if (pad > 0) this.#sink.write(Buffer.alloc(pad));
      at += pad;
      const bytes =
        part instanceof Buffer ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
      if (bytes.length > 0) this.#sink.write(bytes);
      sections[name] = [at, bytes.length];
      at += bytes.length;
    }
    const header: Header = {
      format: PACKAGE_INDEX_FORMAT,
      index: indexDigest,
      count,
      names: names.start.length - 1,
      virtuals: virtuals.start.length - 1,
      providers: virtuals.rows.length,
      sections,
    };
    const text = Buffer.from(JSON.stringify(header), "latin1");
    const trailer = Buffer.alloc(TRAILER);
    trailer.writeUInt32LE(text.length, 0);
    MAGIC.copy(trailer, 4);
    this.#sink.write(Buffer.concat([text, trailer]));
  }
}

/** The stored form of these records, in memory (tests, benches, small indices). */
export function encodePackageIndex(records: Iterable<PackageRecord>, indexDigest: string): Buffer {
  const chunks: Buffer[] = [];
  const writer = new PackageIndexWriter({ write: (c) => chunks.push(Buffer.from(c)) > 0 });
  for (const r of records) writer.add(r);
  writer.finish(indexDigest);
  return Buffer.concat(chunks);
}

/** The distinct names, in sorted order: their text, and each one's first position in sortedRows. */
function groupNames(sortedRows: Uint32Array, keys: readonly string[]) {
  return groupSorted(sortedRows.length, (i) => keys[sortedRows[i]!]!);
}

/** Sorted keys grouped into runs: where each distinct key's text starts, its first position, and the text. */
function groupSorted(count: number, keyAt: (position: number) => string) {
  const start = new U32s();
  const first = new U32s();
  let text = 0;
  let previous: string | undefined;
  for (let i = 0; i < count; i++) {
    const key = keyAt(i);
    if (key === previous) continue;
    previous = key;
    start.push(text);
    first.push(i);
    text += key.length;
  }
  start.push(text);
  first.push(count);
  return { start: start.view, first: first.view, text: textOf(start.view, first.view, keyAt) };
}

/** The keys of a grouped table as one buffer (written in place: no joined string on the heap). */
function textOf(start: Uint32Array, first: Uint32Array, keyAt: (position: number) => string): Buffer {
  const out = Buffer.allocUnsafe(start[start.length - 1]!);
  for (let g = 0; g + 1 < start.length; g++) out.write(keyAt(first[g]!), start[g]!, "latin1");
  return out;
}

/** Provided names (and the row providing each) → sorted tables: each name, and its rows' sorted positions ascending. */
function virtualTable(provided: ByteList, providerRow: Uint32Array, position: Uint32Array) {
  const keys = Array.from({ length: provided.length }, (_, i) => provided.key(i));
  const order = new Uint32Array(keys.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort(
    (a, b) => byteOrder(keys[a]!, keys[b]!) || position[providerRow[a]!]! - position[providerRow[b]!]!,
  );
  const rows = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) rows[i] = position[providerRow[order[i]!]!]!;
  return { ...groupSorted(order.length, (i) => keys[order[i]!]!), rows };
}

/** Where a stored form's bytes are read from: a buffer, or the blob's file (rows read as visited). */
export interface BlobSource {
  size: number;
  close?(): Promise<void>;
  /** `length` bytes at `offset`; shorter only if the blob is. */
  read(offset: number, length: number): Buffer;
}

function bufferSource(buf: Buffer): BlobSource {
  return { size: buf.length, read: (offset, length) => buf.subarray(offset, offset + length) };
}

/**
 * A blob's open file: only the tables are read at once; a row is read when it is decoded.
 * (The blob was hashed whole before, and every read is bounds-checked as it is decoded.)
 */
export function fileSource(file: FileHandle, size: number): BlobSource {
  const fd = file.fd;
  return {
    size,
    close: () => file.close(),
    read: (offset, length) => {
      const out = Buffer.allocUnsafe(length);
      const n = readSync(fd, out, 0, length, offset);
      return out.subarray(0, n);
    },
  };
}

/** A u32 section of the tables as an array (a view where aligned, else a copy). */
function u32(buf: Buffer, offset: number, length: number): Uint32Array {
  const at = buf.byteOffset + offset;
  if (at % 4 === 0) return new Uint32Array(buf.buffer, at, length / 4);
  return new Uint32Array(buf.buffer.slice(at, at + length));
}

/**
 * The stored form opened for lookups. Opening reads the header and the tables (never the rows)
 * and checks that every table stays within its section; rows are checked as they are decoded.
 * (Names out of order would only make lookups miss: the blob's digest, checked before, is what
 * says it is the form niftyc wrote.)
 */
export class PackageIndex {
  readonly count: number;
  readonly from: SuiteRef;
  readonly #source: BlobSource;
  /** The blob from the end of the rows to the header. */
  readonly #tables: Buffer;
  readonly #rowStart: Uint32Array;
  readonly #sortedRows: Uint32Array;
  readonly #nameStart: Uint32Array;
  readonly #nameRow: Uint32Array;
  readonly #virtualStart: Uint32Array;
  readonly #virtualFirst: Uint32Array;
  readonly #providerRows: Uint32Array;
  readonly #nameText: number;
  readonly #virtualText: number;
  readonly #rowsLength: number;

  /** Throws DamagedIndexError when the blob is not the stored form of the index `indexDigest`. */
  constructor(blob: Buffer | BlobSource, indexDigest: string, from: SuiteRef) {
    const source = Buffer.isBuffer(blob) ? bufferSource(blob) : (blob as BlobSource);
    const { header, tablesAt, headerAt } = readHeader(source);
    if (header.format !== PACKAGE_INDEX_FORMAT || header.index !== indexDigest)
      throw new DamagedIndexError(`the record is of ${header.format} ${header.index}`);
    this.#source = source;
    this.from = from;
    this.count = header.count;
    const tables = source.read(tablesAt, headerAt - tablesAt);
    if (tables.length !== headerAt - tablesAt) throw new DamagedIndexError("its tables are cut short");
    this.#tables = tables;
    const s = header.sections;
    const table = (name: Section) => u32(tables, s[name][0] - tablesAt, s[name][1]);
    this.#rowStart = table("rowStart");
    this.#sortedRows = table("sortedRows");
    this.#nameStart = table("nameStart");
    this.#nameRow = table("nameRow");
    this.#virtualStart = table("virtualStart");
    this.#virtualFirst = table("virtualFirst");
    this.#providerRows = table("providerRows");
    this.#nameText = s.nameText[0] - tablesAt;
    this.#virtualText = s.virtualText[0] - tablesAt;
    this.#rowsLength = s.rows[1];
    const fits =
      this.#rowStart.length === header.count + 1 &&
      ascending(this.#rowStart, s.rows[1]) &&
      this.#sortedRows.length === header.count &&
      below(this.#sortedRows, header.count) &&
      this.#nameStart.length === header.names + 1 &&
      ascending(this.#nameStart, s.nameText[1]) &&
      this.#nameRow.length === header.names + 1 &&
      ascending(this.#nameRow, header.count, true) &&
      this.#virtualStart.length === header.virtuals + 1 &&
      ascending(this.#virtualStart, s.virtualText[1]) &&
      this.#virtualFirst.length === header.virtuals + 1 &&
      ascending(this.#virtualFirst, header.providers, true) &&
      this.#providerRows.length === header.providers &&
      below(this.#providerRows, header.count);
    if (!fits) throw new DamagedIndexError("its tables do not fit its sections");
  }

  /** Lets go of the blob's file, when it was opened from one. */
  async close(): Promise<void> {
    await this.#source.close?.();
  }

  /** Position of `key` in a sorted name table, or -1. */
  #find(starts: Uint32Array, base: number, key: string): number {
    const k = Buffer.from(key, "utf8");
    let lo = 0;
    let hi = starts.length - 2;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = k.compare(this.#tables, base + starts[mid]!, base + starts[mid + 1]!);
      if (c === 0) return mid;
      if (c < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  /** The rows of package `name`, in the index's order. */
  rowsOf(name: string): number[] {
    const i = this.#find(this.#nameStart, this.#nameText, name);
    if (i < 0) return [];
    const out: number[] = [];
    for (let r = this.#nameRow[i]!; r < this.#nameRow[i + 1]!; r++) out.push(r);
    return out;
  }

  /** The rows whose (valid) Provides names `virtual`, ascending. */
  providerRowsOf(virtual: string): number[] {
    const i = this.#find(this.#virtualStart, this.#virtualText, virtual);
    if (i < 0) return [];
    return [...this.#providerRows.subarray(this.#virtualFirst[i], this.#virtualFirst[i + 1])];
  }

  /** Every package name, in byte order. */
  *names(): Generator<string> {
    for (let i = 0; i + 1 < this.#nameStart.length; i++)
      yield this.#tables.toString(
        "utf8",
        this.#nameText + this.#nameStart[i]!,
        this.#nameText + this.#nameStart[i + 1]!,
      );
  }

  /** The records of package `name`. */
  recordsOf(name: string): PackageRecord[] {
    return this.rowsOf(name).map((r) => this.record(r));
  }

  /** Every record, sorted by name. */
  records(): PackageRecord[] {
    const out = new Array<PackageRecord>(this.count);
    for (let r = 0; r < this.count; r++) out[r] = this.record(r);
    return out;
  }

  /** The package name of a row, without decoding the rest. */
  nameOf(row: number): string {
    return this.#fields(row, 1)[0]!;
  }

  record(row: number): PackageRecord {
    const f = this.#fields(row, FIELDS.length);
    const [name, version, architecture, multiArch, depends, preDepends, provides] = f;
    const [essential, priority, filename, size, sha256, installedSize, description] = f.slice(7);
    if (name === undefined || version === undefined || architecture === undefined) throw damaged(row);
    if (filename === undefined || size === undefined || sha256 === undefined) throw damaged(row);
    const fields = { name, version, architecture, multiArch, depends, preDepends, provides };
    const rest = { essential, priority, filename, size, sha256, installedSize, description };
    return recordOf({ ...fields, ...rest }, this.from);
  }

  /** The first `n` fields of a row; bounds are checked, so a damaged row cannot read past it. */
  #fields(row: number, n: number): Array<string | undefined> {
    if (!(row >= 0 && row < this.count)) throw damaged(row);
    const stored = this.#sortedRows[row]!;
    const start = this.#rowStart[stored]!;
    const length = this.#rowStart[stored + 1]! - start;
    const buf = this.#source.read(start, length);
    if (buf.length !== length || start + length > this.#rowsLength) throw damaged(row);
    let at = 0;
    const end = length;
    const out: Array<string | undefined> = [];
    for (let i = 0; i < n; i++) {
      let length = 0;
      let shift = 0;
      for (;;) {
        if (at >= end || shift > 28) throw damaged(row);
        const b = buf[at++]!;
        length |= (b & 0x7f) << shift;
        if (b < 0x80) break;
        shift += 7;
      }
      if (length === 0) {
        out.push(undefined);
        continue;
      }
      if (at + length - 1 > end) throw damaged(row);
      out.push(buf.toString("utf8", at, at + length - 1));
      at += length - 1;
    }
    return out;
  }
}

function damaged(row: number): NiftyError {
  return new NiftyError(
    "NIFTY650",
    `the stored parse of a Packages index is damaged (row ${row})`,
    "run `niftyc cache verify` to remove damaged files from the store, then resolve again",
  );
}

/** Whether every entry is below `n`. */
function below(a: Uint32Array, n: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i]! >= n) return false;
  return true;
}

/** Offsets that start at 0, never go down, and end at `end` (or, `exact`, within it). */
function ascending(a: Uint32Array, end: number, exact = false): boolean {
  if (a.length === 0 || a[0] !== 0) return false;
  for (let i = 1; i < a.length; i++) if (a[i]! < a[i - 1]!) return false;
  return exact ? a[a.length - 1] === end : a[a.length - 1]! <= end;
}

/** The header, where the tables start (the end of the rows) and where the header starts. */
function readHeader(source: BlobSource): { header: Header; tablesAt: number; headerAt: number } {
  const trailer = source.size >= TRAILER ? source.read(source.size - TRAILER, TRAILER) : Buffer.alloc(0);
  if (trailer.length !== TRAILER || !trailer.subarray(4).equals(MAGIC))
    throw new DamagedIndexError("not a stored index");
  const length = trailer.readUInt32LE(0);
  const headerAt = source.size - TRAILER - length;
  if (headerAt < 0) throw new DamagedIndexError("its header is cut short");
  let header: Header;
  try {
    header = JSON.parse(source.read(headerAt, length).toString("latin1")) as Header;
  } catch {
    throw new DamagedIndexError("its header is not JSON");
  }
  const [rowsAt, tablesAt] = header.sections?.rows ?? [];
  if (rowsAt !== 0 || !Number.isSafeInteger(tablesAt) || tablesAt! > headerAt)
    throw new DamagedIndexError("its rows section is out of bounds");
  for (const s of SECTIONS) {
    const [offset, size] = header.sections[s] ?? [];
    const ok =
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(size) &&
      size! >= 0 &&
      offset! + size! <= headerAt &&
      (s === "rows" ||
        (offset! >= tablesAt! && (BYTE_SECTIONS.has(s) || (offset! % 4 === 0 && size! % 4 === 0))));
    if (!ok) throw new DamagedIndexError(`its ${s} section is out of bounds`);
  }
  for (const k of ["count", "names", "virtuals", "providers"] as const)
    if (!Number.isSafeInteger(header[k]) || header[k] < 0) throw new DamagedIndexError(`its ${k} is wrong`);
  return { header, tablesAt: tablesAt!, headerAt };
}
