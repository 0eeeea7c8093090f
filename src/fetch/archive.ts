// Taking one file out of a package or tarball, streaming it into the store so
// the extracted file is itself a content-addressed blob. Formats are told by
// magic bytes, never by name: a .deb (ar holding data.tar[.xz|.zst|.gz]), or
// a tar, plain or compressed with gzip, xz or zstd.
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createZstdDecompress } from "node:zlib";
import tar from "tar-stream";
import type { Extract, Header } from "tar-stream";
import { NiftyError } from "../diagnostics/errors.ts";
import { editDistance } from "../diagnostics/suggest.ts";
import { FetchError } from "../cache/fetch-error.ts";
import type { Store } from "../cache/store.ts";
import { DEFAULT_LIMITS, showSize, type Limits } from "../core/limits.ts";
import { createXzDecoder, XzError } from "./xz.ts";

export interface ExtractedMember {
  digest: string;
  size: number;
  /** Path of the blob in the store. */
  path: string;
  /** The archive path of the regular file the bytes came from, after links. */
  member: string;
  /** Permission bits recorded in the archive. */
  mode: number;
}

export type Compression = "none" | "gzip" | "xz" | "zstd";

export interface TarLocation {
  /** Byte range of the tar (compressed or not) inside the file; end exclusive. */
  start: number;
  end: number;
  compression: Compression;
}

export interface IndexEntry {
  type: "file" | "symlink" | "link" | "directory" | "other";
  linkname: string;
}

const MAX_LINK_HOPS = 40;

/** One entry of a tar being read: its header and a stream of its bytes. */
export type Entry = Extract extends AsyncIterable<infer S> ? S : never;

/**
 * Extract `member` (with or without a leading `/` or `./`) from the archive at
 * `archivePath` into the store, following symlinks and hard links inside the
 * archive.
 */
export async function extractMember(
  store: Store,
  archivePath: string,
  member: string,
  what = path.basename(archivePath),
  limits: Limits = DEFAULT_LIMITS,
): Promise<ExtractedMember> {
  const wanted = requestedKey(member);
  const loc = await locateTar(archivePath);
  const index = new Map<string, IndexEntry>();

  // Pass 1: index every entry, and stream the member out if it (or the file
  // a link names) comes after everything it depends on.
  // The whole archive is read, not only up to the member: a later entry of
  // the same name is what tar and dpkg would unpack, so one is refused.
  let current = wanted;
  let hops = 0;
  let first: ExtractedMember | undefined;
  await scanTar(
    archivePath,
    loc,
    async (entry, key, header) => {
      const type = entryType(header);
      const earlier = index.get(key);
      if (earlier !== undefined && !(earlier.type === "directory" && type === "directory")) {
        throw new FetchError(
          "NIFTY808",
          "member",
          `${what} has two entries named ${JSON.stringify(key.slice(0, 200))}`,
          "tar unpacks the last of them and a reader that stops at the first sees another file; the archive is broken or hostile: use another source",
        );
      }
      index.set(key, { type, linkname: header.linkname ?? "" });
      if (key !== current || first !== undefined) return undefined;
      refuseUnsafeName(header.name, archivePath);
      if (type === "file") {
        first = await storeEntry(store, entry, key, header);
        return undefined;
      }
      if (type === "symlink" || type === "link") {
        if (++hops > MAX_LINK_HOPS) throw linkLoop(member, archivePath);
        current =
          type === "symlink"
            ? followSymlink(key, header.linkname ?? "", archivePath)
            : hardLinkKey(header.linkname ?? "", archivePath);
      }
      return undefined;
    },
    limits,
  );
  if (first) return first;

  // Pass 2: the file sits behind a directory symlink or before its link.
  const target = resolvePath(index, wanted, archivePath, member);
  const found = index.get(target);
  if (!found) throw notFound(member, what, index);
  if (found.type !== "file") {
    throw new FetchError(
      "NIFTY125",
      "member",
      `${member} in ${archivePath} is a ${found.type}${target !== wanted ? ` (${target})` : ""}, not a regular file`,
      "name a regular file inside the archive",
    );
  }
  const second = await scanTar(
    archivePath,
    loc,
    async (entry, key, header) => {
      if (key !== target || entryType(header) !== "file") return undefined;
      refuseUnsafeName(header.name, archivePath);
      return storeEntry(store, entry, key, header);
    },
    limits,
  );
  if (!second) throw notFound(member, what, index);
  return second;
}

async function storeEntry(store: Store, entry: Entry, key: string, header: Header): Promise<ExtractedMember> {
  const info = await store.putStream((writer) => pipeline(entry, writer));
  return { ...info, member: key, mode: (header.mode ?? 0o644) & 0o7777 };
}

/**
 * Run `visit` on each entry in order until it returns a result. Entries it
 * does not consume are drained. Stops reading the file as soon as it is done.
 * Memory stays bounded: one entry's stream at a time, never the whole tar. `shown` names the
 * archive in errors (a package's name and file, say).
 */
export async function scanTar<T>(
  archivePath: string,
  loc: TarLocation,
  visit: (entry: Entry, key: string, header: Header) => Promise<T | undefined>,
  limits: Limits = DEFAULT_LIMITS,
  shown: string = archivePath,
): Promise<T | undefined> {
  const streams: (Readable | Transform)[] = [
    createReadStream(
      archivePath,
      loc.end > loc.start ? { start: loc.start, end: loc.end - 1 } : { start: 0, end: -1 },
    ),
  ];
  const dec = await decompressor(loc.compression);
  if (dec) streams.push(dec);
  const extract = tar.extract();
  for (let i = 0; i < streams.length; i++) {
    const s = streams[i]!;
    s.on("error", (err: Error) => extract.destroy(err));
    // tar-stream's extractor is a streamx Writable, which pipe() feeds like a Node one.
    const next: NodeJS.WritableStream =
      i + 1 < streams.length ? (streams[i + 1] as Transform) : (extract as unknown as NodeJS.WritableStream);
    s.pipe(next);
  }
  try {
    let count = 0;
    for await (const entry of extract) {
      refuseOverLimits(entry.header, ++count, limits, shown);
      const key = entryKey(entry.header.name);
      const result = await visit(entry, key, entry.header);
      if (result) return result;
      entry.resume();
    }
    return undefined;
  } catch (err) {
    if (err instanceof NiftyError) throw err;
    if (err instanceof XzError) {
      const hint = "the archive is corrupt or not what its format says; fetch it from another source";
      throw new FetchError("NIFTY114", "member", `cannot decompress ${shown}: ${err.message}`, hint);
    }
    throw new FetchError(
      "NIFTY127",
      "member",
      `cannot read archive ${shown}: ${(err as Error).message}`,
      "the file is truncated or corrupt; fetch it again (`niftyc cache verify` finds damaged blobs)",
    );
  } finally {
    for (const s of streams) s.destroy();
    extract.destroy();
  }
}

/** An entry past --limit entries, with a longer name or link target than --limit entry-name, or larger than --limit member-size. */
function refuseOverLimits(header: Header, count: number, limits: Limits, archivePath: string): void {
  const over = (what: string, limit: string, flag: string) =>
    new FetchError(
      "NIFTY804",
      "member",
      `${archivePath} ${what}, more than the limit of ${limit}`,
      `a hostile or broken archive; if it is right, raise the limit with --limit ${flag} (see docs/security.md)`,
    );
  if (count > limits.entries)
    throw over(
      `has more than ${limits.entries.toLocaleString("en-US")} entries`,
      limits.entries.toLocaleString("en-US"),
      `entries=${limits.entries * 2}`,
    );
  const longest = Math.max(header.name.length, header.linkname?.length ?? 0);
  if (longest > limits.entryName)
    throw over(
      `has an entry whose name or link target has ${longest.toLocaleString("en-US")} characters`,
      limits.entryName.toLocaleString("en-US"),
      `entry-name=${Math.max(longest, limits.entryName * 2)}`,
    );
  if ((header.size ?? 0) > limits.memberBytes)
    throw over(
      `has an entry of ${(header.size ?? 0).toLocaleString("en-US")} bytes (${JSON.stringify(header.name.slice(0, 100))})`,
      showSize(limits.memberBytes),
      `member-size=${Math.ceil(Math.max(header.size ?? 0, limits.memberBytes * 2) / 1024 ** 3)}G`,
    );
}

async function decompressor(c: Compression): Promise<Transform | undefined> {
  switch (c) {
    case "none":
      return undefined;
    case "gzip":
      return createGunzip();
    case "zstd":
      return createZstdDecompress();
    case "xz":
      return createXzDecoder() as unknown as Transform;
  }
}

/** Where the tar stream lives in the file, and how it is compressed. */
async function locateTar(archivePath: string): Promise<TarLocation> {
  return locate(archivePath, "data.tar", false);
}

/**
 * Where a .deb's `data.tar.*` or `control.tar.*` member lives in the file,
 * and how it is compressed. Anything but an ar archive is refused.
 */
export async function locateDebMember(
  archivePath: string,
  member: "data.tar" | "control.tar",
): Promise<TarLocation> {
  return locate(archivePath, member, true);
}

async function locate(
  archivePath: string,
  member: "data.tar" | "control.tar",
  requireAr: boolean,
): Promise<TarLocation> {
  let fh;
  try {
    fh = await fsp.open(archivePath, "r");
  } catch (err) {
    throw new NiftyError(
      "NIFTY132",
      `cannot read ${archivePath}: ${(err as Error).message}`,
      "give the path of an existing, readable file",
    );
  }
  try {
    const size = (await fh.stat()).size;
    const head = await readAt(fh, 0, 512);
    if (head.subarray(0, 8).toString("latin1") === "!<arch>\n")
      return await locateInAr(fh, size, archivePath, member);
    if (requireAr) throw unknownFormat(archivePath, " (not a .deb: no ar header)");
    const compression = sniffCompression(head);
    if (!compression) throw unknownFormat(archivePath, "");
    return { start: 0, end: size, compression };
  } finally {
    await fh.close();
  }
}

/** The ar format: an 8-byte magic, then per member a 60-byte header and its data, padded to even. */
async function locateInAr(
  fh: fsp.FileHandle,
  size: number,
  archivePath: string,
  wanted: "data.tar" | "control.tar",
): Promise<TarLocation> {
  let off = 8;
  const names: string[] = [];
  while (off + 60 <= size) {
    const h = await readAt(fh, off, 60);
    if (h.subarray(58, 60).toString("latin1") !== "`\n") break;
    let name = h.subarray(0, 16).toString("latin1").trimEnd();
    const memberSize = Number.parseInt(h.subarray(48, 58).toString("latin1").trim(), 10);
    if (!Number.isFinite(memberSize) || memberSize < 0) break;
    let dataStart = off + 60;
    let dataSize = memberSize;
    if (off + 60 + memberSize > size)
      throw badAr(
        archivePath,
        `its member ${JSON.stringify(name)} claims ${memberSize} bytes, past the end of the file`,
      );
    const bsd = /^#1\/(\d+)$/.exec(name);
    if (bsd) {
      // BSD ar: the long name sits before the data and counts in its size.
      const n = Number(bsd[1]);
      if (n > memberSize || n > 4096)
        throw badAr(
          archivePath,
          `its member name length ${bsd[1]} is larger than ${n > memberSize ? "the member" : "4096 bytes"}`,
        );
      name = (await readAt(fh, dataStart, n)).toString("latin1").replace(/\0+$/, "");
      dataStart += n;
      dataSize -= n;
    }
    name = name.replace(/\/$/, "");
    names.push(name);
    if (name === wanted || name.startsWith(`${wanted}.`)) {
      const head = await readAt(fh, dataStart, Math.min(512, dataSize));
      const compression = sniffCompression(head);
      if (!compression) throw unknownFormat(archivePath, ` (its member ${name})`);
      return { start: dataStart, end: dataStart + dataSize, compression };
    }
    off += 60 + memberSize + (memberSize % 2);
  }
  throw new FetchError(
    "NIFTY126",
    "member",
    `${archivePath} is an ar archive without a ${wanted} member (members: ${names.join(", ") || "none"})`,
    "a .deb package holds debian-binary, control.tar.* and data.tar.*; check that the file is a Debian package",
  );
}

function badAr(archivePath: string, why: string): FetchError {
  return new FetchError(
    "NIFTY805",
    "member",
    `${archivePath} is a malformed ar archive: ${why}`,
    "the package is truncated, corrupt or hostile; use another source",
  );
}

function sniffCompression(b: Buffer): Compression | undefined {
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))
    return "xz";
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b.length >= 262 && b.subarray(257, 262).toString("latin1") === "ustar") return "none";
  return undefined;
}

function unknownFormat(archivePath: string, what: string): FetchError {
  return new FetchError(
    "NIFTY120",
    "member",
    `${archivePath}${what} is not an archive format niftyc reads`,
    "supported: .deb packages, and tar archives plain or compressed with gzip, xz or zstd (told by their content, not their name)",
  );
}

async function readAt(fh: fsp.FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  const { bytesRead } = await fh.read(buf, 0, len, pos);
  return buf.subarray(0, bytesRead);
}

export function entryType(h: Header): IndexEntry["type"] {
  switch (h.type) {
    case "file":
    case "contiguous-file":
    case null:
    case undefined:
      return "file";
    case "symlink":
      return "symlink";
    case "link":
      return "link";
    case "directory":
      return "directory";
    default:
      return "other";
  }
}

/**
 * An archive name as a lookup key: no leading `./` or `/`, no trailing `/`.
 * A name with `..` is keyed by where it lands, so asking for that place finds
 * it and refuses it rather than missing it.
 */
export function entryKey(name: string): string {
  const key = name
    .split("/")
    .filter((p) => p !== "" && p !== ".")
    .join("/");
  if (!key.split("/").includes("..")) return key;
  const norm = path.posix.normalize(key);
  return norm === ".." || norm.startsWith("../") ? key : norm;
}

function requestedKey(member: string): string {
  const key = entryKey(member);
  if (key.split("/").includes("..")) {
    throw new FetchError(
      "NIFTY122",
      "member",
      `refusing member name ${JSON.stringify(member)}: it contains ".."`,
      "name the file by its plain path inside the archive, e.g. bin/busybox",
    );
  }
  if (key === "")
    throw new FetchError(
      "NIFTY122",
      "member",
      `empty member name ${JSON.stringify(member)}`,
      "name a file inside the archive, e.g. bin/busybox",
    );
  return key;
}

/** The archive's own names must be relative and must not climb. */
export function refuseUnsafeName(name: string, archivePath: string): void {
  if (name.startsWith("/") || name.split("/").includes("..")) {
    throw new FetchError(
      "NIFTY122",
      "member",
      `refusing archive member ${JSON.stringify(name)} in ${archivePath}: ${name.startsWith("/") ? "its name is absolute" : 'its name contains ".."'}`,
      "the archive is malformed or hostile; use a trustworthy source",
    );
  }
}

/** Join path segments inside the archive; climbing above its root is refused. */
function normalizeInside(segments: string[], what: string, archivePath: string): string[] {
  const out: string[] = [];
  for (const s of segments) {
    if (s === "" || s === ".") continue;
    if (s === "..") {
      if (out.length === 0) {
        throw new FetchError(
          "NIFTY123",
          "member",
          `${what} in ${archivePath} points outside the archive`,
          "only links that stay inside the archive are followed",
        );
      }
      out.pop();
    } else out.push(s);
  }
  return out;
}

/** Absolute link targets are taken from the archive root, as in the rootfs it holds. */
function followSymlink(key: string, linkname: string, archivePath: string): string {
  const base = linkname.startsWith("/") ? [] : key.split("/").slice(0, -1);
  return normalizeInside(
    [...base, ...linkname.split("/")],
    `symlink ${key} -> ${linkname}`,
    archivePath,
  ).join("/");
}

export function hardLinkKey(linkname: string, archivePath: string): string {
  return normalizeInside(linkname.split("/"), `hard link to ${linkname}`, archivePath).join("/");
}

/** Resolve every component of `wanted` through the archive's symlinks. */
function resolvePath(
  index: Map<string, IndexEntry>,
  wanted: string,
  archivePath: string,
  member: string,
): string {
  let todo = wanted.split("/");
  let done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift()!;
    const key = [...done, part].join("/");
    const e = index.get(key);
    if (e?.type === "symlink") {
      if (++hops > MAX_LINK_HOPS) throw linkLoop(member, archivePath);
      todo = [...followSymlink(key, e.linkname, archivePath).split("/").filter(Boolean), ...todo];
      done = [];
      continue;
    }
    if (e?.type === "link" && todo.length === 0) {
      if (++hops > MAX_LINK_HOPS) throw linkLoop(member, archivePath);
      todo = hardLinkKey(e.linkname, archivePath).split("/").filter(Boolean);
      done = [];
      continue;
    }
    done.push(part);
  }
  return done.join("/");
}

function linkLoop(member: string, archivePath: string): FetchError {
  return new FetchError(
    "NIFTY124",
    "member",
    `too many links while resolving ${member} in ${archivePath}`,
    "the archive has a symlink loop; name the file's real path",
  );
}

/** `what` names the archive: its file name where known, with its digest. */
function notFound(member: string, what: string, index: Map<string, IndexEntry>): FetchError {
  const close = closeNames(
    entryKey(member),
    [...index.entries()].filter(([, e]) => e.type !== "directory").map(([k]) => k),
  );
  return new FetchError(
    "NIFTY121",
    "member",
    `${member} is not in ${what}`,
    close.length > 0
      ? `similar names in the archive: ${close.join(", ")}`
      : `the archive has ${index.size} entries, none alike`,
  );
}

/** Up to five names most like `wanted`: same file name first, then by edit distance. */
function closeNames(wanted: string, names: string[]): string[] {
  const base = wanted.split("/").pop() ?? wanted;
  const limit = Math.max(3, Math.floor(wanted.length / 3));
  // Edit distance is quadratic: only names near in length, and none very long, are compared.
  if (wanted.length > 512) return [];
  return names
    .filter(
      (n) => n.length <= 512 && (Math.abs(n.length - wanted.length) <= limit || n.split("/").pop() === base),
    )
    .map((n) => ({ n, same: n.split("/").pop() === base, d: editDistance(wanted, n) }))
    .filter((x) => x.same || x.d <= limit)
    .sort((a, b) => Number(b.same) - Number(a.same) || a.d - b.d || a.n.localeCompare(b.n))
    .slice(0, 5)
    .map((x) => x.n);
}
