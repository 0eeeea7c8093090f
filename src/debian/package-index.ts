// The parsed form of a Packages index as the store keeps it: one binary blob
// a resolution reads without decoding it whole. Rows (one per stanza, only the
// fields niftyc uses) are sorted by package name; a sorted table of names and
// one of provided (virtual) names point into them, so a lookup is a binary
// search and a row becomes a PackageRecord only when a resolution visits it.
//
// Layout (integers are little-endian u32, every section 4-byte aligned):
//   "NIFTYPKG" | u32 header length | header (ASCII JSON: format, index digest, counts, sections)
//   rowStart[count+1]  nameStart[names+1]  nameRow[names+1]
//   virtualStart[virtuals+1]  virtualFirst[virtuals+1]  providerRows[providers]
//   nameText  virtualText  rows
// A row is its fields, each as a LEB128 varint of (UTF-8 length + 1), 0 for an absent
// field, then its bytes. Names are compared as UTF-8 bytes.
import { NiftyError } from "../diagnostics/errors.ts";
import { parseProvides } from "./relations.ts";
import type { PackageRecord, SuiteRef } from "./types.ts";
import { byteOrder } from "./universe.ts";
import { versionProblem } from "./version.ts";

/** Bump when the parser or this encoding changes: the record is keyed by the index's digest. */
export const PACKAGE_INDEX_FORMAT = "niftyc-packages/2";

const MAGIC = Buffer.from("NIFTYPKG", "latin1");

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
] as const;

const SECTIONS = [
  "rowStart",
  "nameStart",
  "nameRow",
  "virtualStart",
  "virtualFirst",
  "providerRows",
  "nameText",
  "virtualText",
  "rows",
] as const;
type Section = (typeof SECTIONS)[number];

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

/** A record's fields as row text: undefined for an absent optional field. */
function rowValues(r: PackageRecord): Array<string | undefined> {
  return [
    r.name,
    r.version,
    r.architecture,
    r.multiArch,
    r.depends,
    r.preDepends,
    r.provides,
    r.essential === undefined ? undefined : r.essential ? "1" : "0",
    r.priority,
    r.filename,
    String(r.size),
    r.sha256.slice("sha256:".length),
    r.installedSize === undefined ? undefined : String(r.installedSize),
    r.description,
  ];
}

/** A growing byte buffer. */
class Bytes {
  buf = Buffer.allocUnsafe(1 << 20);
  length = 0;

  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  varint(n: number): void {
    this.reserve(5);
    while (n >= 0x80) {
      this.buf[this.length++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.length++] = n;
  }

  text(s: string): void {
    const n = Buffer.byteLength(s, "utf8");
    this.varint(n + 1);
    this.reserve(n);
    this.length += this.buf.write(s, this.length, n, "utf8");
  }
}

/**
 * Collects records as a parse gives them (each encoded at once, so the parse keeps no record
 * objects) and lays out the stored form.
 */
export class PackageIndexWriter {
  #rows = new Bytes();
  #starts: number[] = [];
  #names: string[] = [];
  /** Provided names of each row whose version and Provides are valid, by row. */
  #provides = new Map<number, string[]>();

  add(record: PackageRecord): void {
    const row = this.#starts.length;
    this.#starts.push(this.#rows.length);
    this.#names.push(record.name);
    for (const v of rowValues(record)) {
      if (v === undefined) this.#rows.varint(0);
      else this.#rows.text(v);
    }
    if (record.provides !== "" && versionProblem(record.version) === undefined) {
      const parsed = parseProvides(record.provides);
      if (parsed.ok && parsed.value.length > 0)
        this.#provides.set(row, [...new Set(parsed.value.map((p) => p.name))]);
    }
  }

  /** The stored form, for the index with this digest. */
  finish(indexDigest: string): Buffer {
    const count = this.#starts.length;
    this.#starts.push(this.#rows.length);
    // A name's UTF-8 bytes as a latin1 string: compared with <, they sort as the bytes do.
    const keys = this.#names.map((n) => Buffer.from(n, "utf8").toString("latin1"));
    // Stable: a name's rows keep the index's order, which breaks ties as the eager universe does.
    const order = [...keys.keys()].sort((a, b) => byteOrder(keys[a]!, keys[b]!) || a - b);
    const newRow = new Uint32Array(count);
    for (const [i, old] of order.entries()) newRow[old] = i;

    const rowStart = new Uint32Array(count + 1);
    let at = 0;
    order.forEach((old, i) => {
      rowStart[i] = at;
      at += this.#starts[old + 1]! - this.#starts[old]!;
    });
    rowStart[count] = at;
    // Copied in name order straight into the stored form: the rows are never held twice more.
    const source = this.#rows.buf;
    const starts = this.#starts;
    const rows: Part = {
      length: at,
      copyTo: (out, base) => {
        for (const [i, old] of order.entries())
          source.copy(out, base + rowStart[i]!, starts[old], starts[old + 1]);
      },
    };

    const names = groupNames(order.map((old) => keys[old]!));
    const virtuals = this.#virtualTable(newRow);
    return layout(indexDigest, count, {
      rowStart,
      nameStart: names.start,
      nameRow: names.first,
      virtualStart: virtuals.start,
      virtualFirst: virtuals.first,
      providerRows: virtuals.rows,
      nameText: names.text,
      virtualText: virtuals.text,
      rows,
    });
  }

  /** Virtual name → the rows providing it (ascending), as sorted tables. */
  #virtualTable(newRow: Uint32Array) {
    const byName = new Map<string, number[]>();
    for (const [old, provided] of this.#provides) {
      for (const v of provided) {
        const list = byName.get(v);
        if (list === undefined) byName.set(v, [newRow[old]!]);
        else list.push(newRow[old]!);
      }
    }
    const entries = [...byName].map(([name, rows]) => ({ key: Buffer.from(name, "utf8"), rows }));
    entries.sort((a, b) => Buffer.compare(a.key, b.key));
    const start = new Uint32Array(entries.length + 1);
    const first = new Uint32Array(entries.length + 1);
    const all: number[] = [];
    let text = 0;
    entries.forEach((e, i) => {
      start[i] = text;
      first[i] = all.length;
      text += e.key.length;
      for (const r of e.rows.sort((a, b) => a - b)) all.push(r);
    });
    start[entries.length] = text;
    first[entries.length] = all.length;
    return { start, first, rows: Uint32Array.from(all), text: Buffer.concat(entries.map((e) => e.key)) };
  }
}

/** The distinct names of rows sorted by name (latin1 keys): their text, and each one's first row. */
function groupNames(sorted: readonly string[]) {
  const start: number[] = [];
  const first: number[] = [];
  const parts: string[] = [];
  let text = 0;
  sorted.forEach((key, row) => {
    if (row > 0 && key === sorted[row - 1]) return;
    start.push(text);
    first.push(row);
    parts.push(key);
    text += key.length;
  });
  start.push(text);
  first.push(sorted.length);
  return {
    start: Uint32Array.from(start),
    first: Uint32Array.from(first),
    text: Buffer.from(parts.join(""), "latin1"),
  };
}

/** A section's bytes, or (the rows) their length and how to write them. */
type Part = Uint32Array | Buffer | { length: number; copyTo(out: Buffer, at: number): void };

function layout(indexDigest: string, count: number, parts: Record<Section, Part>): Buffer {
  const align = (n: number) => (n + 3) & ~3;
  const bytes = (p: Part) =>
    p instanceof Buffer || !(p instanceof Uint32Array)
      ? p
      : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  // Offsets count from the end of the header, so the header does not depend on its own length.
  let at = 0;
  const sections = {} as Record<Section, [number, number]>;
  for (const s of SECTIONS) {
    const n = bytes(parts[s]).length;
    sections[s] = [at, n];
    at = align(at + n);
  }
  const header: Header = {
    format: PACKAGE_INDEX_FORMAT,
    index: indexDigest,
    count,
    names: parts.nameStart.length - 1,
    virtuals: parts.virtualStart.length - 1,
    providers: parts.providerRows.length,
    sections,
  };
  const text = JSON.stringify(header);
  const headerLength = align(text.length);
  const body = MAGIC.length + 4 + headerLength;
  const out = Buffer.alloc(body + at);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(headerLength, MAGIC.length);
  out.write(text.padEnd(headerLength, " "), MAGIC.length + 4, "latin1");
  for (const s of SECTIONS) {
    const part = bytes(parts[s]);
    if ("copyTo" in part) part.copyTo(out, body + sections[s][0]);
    else part.copy(out, body + sections[s][0]);
  }
  return out;
}

/** A u32 section as an array (a view where aligned, else a copy). */
function u32(buf: Buffer, [offset, length]: [number, number]): Uint32Array {
  const at = buf.byteOffset + offset;
  if (at % 4 === 0) return new Uint32Array(buf.buffer, at, length / 4);
  return new Uint32Array(buf.buffer.slice(at, at + length));
}

/**
 * The stored form opened for lookups. Opening checks the header and that every table stays within
 * its section; rows are checked as they are decoded. (Names out of order would only make lookups
 * miss: the blob's digest, checked before, is what says it is the form niftyc wrote.)
 */
export class PackageIndex {
  readonly count: number;
  readonly from: SuiteRef;
  readonly #buf: Buffer;
  readonly #rowStart: Uint32Array;
  readonly #nameStart: Uint32Array;
  readonly #nameRow: Uint32Array;
  readonly #virtualStart: Uint32Array;
  readonly #virtualFirst: Uint32Array;
  readonly #providerRows: Uint32Array;
  readonly #nameText: number;
  readonly #virtualText: number;
  readonly #rows: number;

  /** Throws DamagedIndexError when `buf` is not the stored form of the index `indexDigest`. */
  constructor(buf: Buffer, indexDigest: string, from: SuiteRef) {
    const header = readHeader(buf);
    if (header.format !== PACKAGE_INDEX_FORMAT || header.index !== indexDigest)
      throw new DamagedIndexError(`the record is of ${header.format} ${header.index}`);
    this.#buf = buf;
    this.from = from;
    this.count = header.count;
    const s = header.sections;
    this.#rowStart = u32(buf, s.rowStart);
    this.#nameStart = u32(buf, s.nameStart);
    this.#nameRow = u32(buf, s.nameRow);
    this.#virtualStart = u32(buf, s.virtualStart);
    this.#virtualFirst = u32(buf, s.virtualFirst);
    this.#providerRows = u32(buf, s.providerRows);
    [this.#nameText, this.#virtualText, this.#rows] = [s.nameText[0], s.virtualText[0], s.rows[0]];
    const fits =
      this.#rowStart.length === header.count + 1 &&
      ascending(this.#rowStart, s.rows[1]) &&
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

  /** Position of `key` in a sorted name table, or -1. */
  #find(starts: Uint32Array, base: number, key: string): number {
    const k = Buffer.from(key, "utf8");
    let lo = 0;
    let hi = starts.length - 2;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = k.compare(this.#buf, base + starts[mid]!, base + starts[mid + 1]!);
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
      yield this.#buf.toString(
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
    const record: PackageRecord = {
      name,
      version,
      architecture,
      depends: depends ?? "",
      preDepends: preDepends ?? "",
      provides: provides ?? "",
      filename,
      size: Number(size),
      sha256: `sha256:${sha256}`,
      from: this.from,
    };
    if (multiArch !== undefined) record.multiArch = multiArch as NonNullable<PackageRecord["multiArch"]>;
    if (essential !== undefined) record.essential = essential === "1";
    if (priority !== undefined) record.priority = priority;
    if (installedSize !== undefined) record.installedSize = Number(installedSize);
    if (description !== undefined) record.description = description;
    return record;
  }

  /** The first `n` fields of a row; bounds are checked, so a damaged row cannot read past it. */
  #fields(row: number, n: number): Array<string | undefined> {
    if (!(row >= 0 && row < this.count)) throw damaged(row);
    const buf = this.#buf;
    let at = this.#rows + this.#rowStart[row]!;
    const end = this.#rows + this.#rowStart[row + 1]!;
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

function readHeader(buf: Buffer): Header {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC))
    throw new DamagedIndexError("not a stored index");
  const length = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (length > buf.length - start) throw new DamagedIndexError("its header is cut short");
  let header: Header;
  try {
    header = JSON.parse(buf.toString("latin1", start, start + length)) as Header;
  } catch {
    throw new DamagedIndexError("its header is not JSON");
  }
  const body = start + length;
  if (body % 4 !== 0) throw new DamagedIndexError("its header is not aligned");
  for (const s of SECTIONS) {
    const [relative, size] = header.sections?.[s] ?? [];
    const offset = Number.isSafeInteger(relative) ? body + relative! : undefined;
    const ok =
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(size) &&
      relative! >= 0 &&
      size! >= 0 &&
      offset! + size! <= buf.length &&
      (s.endsWith("Text") || s === "rows" || (offset! % 4 === 0 && size! % 4 === 0));
    if (!ok) throw new DamagedIndexError(`its ${s} section is out of bounds`);
    header.sections[s] = [offset!, size!];
  }
  for (const k of ["count", "names", "virtuals", "providers"] as const)
    if (!Number.isSafeInteger(header[k]) || header[k] < 0) throw new DamagedIndexError(`its ${k} is wrong`);
  return header;
}
