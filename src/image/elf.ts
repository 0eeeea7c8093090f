// What an ELF file needs at run time (interpreter, shared libraries and their search paths),
// whether an image provides it, and the applet list of a BusyBox-style multicall binary.
import { execFile } from "node:child_process";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import type { Tree, TreeNode } from "./tree.ts";

export interface ElfInfo {
  class: 32 | 64;
  endian: "little" | "big";
  /** e_machine, e.g. 62 for x86-64. */
  machine: number;
  type: "exec" | "dyn" | "rel" | "core";
  /** PT_INTERP: the program loader, e.g. /lib64/ld-linux-x86-64.so.2. */
  interpreter?: string;
  /** DT_NEEDED in file order. */
  needed: string[];
  soname?: string;
  runpath: string[];
  rpath: string[];
  /** Needs nothing from the image at run time: no interpreter and no DT_NEEDED. */
  isStatic: boolean;
}

export const EM_X86_64 = 62;

/** e_machine values a Debian port uses, by the name Debian gives the architecture. */
const MACHINES: Readonly<Record<number, string>> = {
  3: "i386",
  8: "mips",
  20: "powerpc",
  21: "ppc64",
  22: "s390x",
  40: "arm",
  62: "x86-64",
  183: "arm64 (aarch64)",
  243: "riscv64",
  258: "loong64",
};

/** Whether an ELF runs on the image's architecture: x86-64, 64-bit, little-endian (amd64). */
export function runsOnAmd64(info: Pick<ElfInfo, "class" | "endian" | "machine">): boolean {
  return info.machine === EM_X86_64 && info.class === 64 && info.endian === "little";
}

/** What machine an ELF is for, as a message says it: `arm64 (aarch64), 64-bit`. */
export function describeMachine(info: Pick<ElfInfo, "class" | "endian" | "machine">): string {
  const name = MACHINES[info.machine] ?? `machine ${info.machine}`;
  return `${name}, ${info.class}-bit${info.endian === "big" ? " big-endian" : ""}`;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

// Bounds that real files stay far below; they keep garbage input from costing much.
const MAX_INTERP = 4096;
const MAX_DYNAMIC = 1 << 20;
const MAX_STRTAB = 16 << 20;

type ReadAt = (offset: number, length: number) => Buffer;

function fail(what: string): never {
  throw new Error(`malformed ELF: ${what}`);
}

function readExact(read: ReadAt, offset: number, length: number, what: string): Buffer {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    fail(`${what} at an impossible offset`);
  }
  const b = read(offset, length);
  if (b.length < length) fail(`file truncated in ${what}`);
  return b;
}

function cString(b: Buffer, start: number, what: string): string {
  if (start < 0 || start >= b.length) fail(`${what} points outside the string table`);
  const end = b.indexOf(0, start);
  if (end < 0) fail(`${what} is not NUL-terminated`);
  return b.toString("latin1", start, end);
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

function parse(read: ReadAt): ElfInfo | null {
  const ident = readIdent(read);
  if (ident === null) return null;
  const r = fieldReader(read, ident);
  const header = readFileHeader(r);
  const segments = readSegments(r, header);
  const interpreter = readInterpreter(r, segments);
  const dynamic = readDynamic(r, segments);
  const strings = readDynamicStrings(r, segments, dynamic);
  return elfInfo(ident, header, interpreter, dynamic, strings);
}

/** What the identification bytes say: the file's class and data encoding. */
interface Ident {
  klass: 32 | 64;
  endian: "little" | "big";
}

/** The identification bytes, or null when the file is not ELF (no magic). */
function readIdent(read: ReadAt): Ident | null {
  const ident = read(0, 16);
  if (ident.length < 4 || ident.readUInt32BE(0) !== 0x7f454c46) return null;
  if (ident.length < 16) fail("file truncated in the identification bytes");
  const klass = ident[4] === 1 ? 32 : ident[4] === 2 ? 64 : fail(`unknown class ${ident[4]}`);
  const endian =
    ident[5] === 1 ? "little" : ident[5] === 2 ? "big" : fail(`unknown data encoding ${ident[5]}`);
  return { klass, endian };
}

/** Reads the file's fields in its own byte order and word size. */
interface FieldReader {
  read: ReadAt;
  is64: boolean;
  u16(b: Buffer, o: number): number;
  u32(b: Buffer, o: number): number;
  u64n(b: Buffer, o: number): bigint;
  /** An address or size: a word of the file's class, refused beyond 2^53. */
  addr(b: Buffer, o: number): number;
}

function fieldReader(read: ReadAt, { klass, endian }: Ident): FieldReader {
  const le = endian === "little";
  const is64 = klass === 64;

  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64n = (b: Buffer, o: number) => (le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const addr = (b: Buffer, o: number): number => {
    if (!is64) return u32(b, o);
    const v = u64n(b, o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? fail("address or size beyond 2^53") : Number(v);
  };
  return { read, is64, u16, u32, u64n, addr };
}

/** What the file header says: the file's type and machine, and where its program headers are. */
interface FileHeader {
  type: ElfInfo["type"];
  machine: number;
  phoff: number;
  phentsize: number;
  phnum: number;
}

function readFileHeader({ read, is64, u16, addr }: FieldReader): FileHeader {
  const hdr = readExact(read, 0, is64 ? 64 : 52, "the file header");
  const eType = u16(hdr, 16);
  const type =
    eType === 1
      ? "rel"
      : eType === 2
        ? "exec"
        : eType === 3
          ? "dyn"
          : eType === 4
            ? "core"
            : fail(`unknown e_type ${eType}`);
  const machine = u16(hdr, 18);
  const phoff = addr(hdr, is64 ? 32 : 28);
  const phentsize = u16(hdr, is64 ? 54 : 42);
  const phnum = u16(hdr, is64 ? 56 : 44);
  return { type, machine, phoff, phentsize, phnum };
}

function readSegments(r: FieldReader, { phoff, phentsize, phnum }: FileHeader): Segment[] {
  const { read, is64, u32, addr } = r;
  const segments: Segment[] = [];
  if (phnum > 0) {
    if (phnum === 0xffff) fail("extended program header count is not supported");
    if (phentsize < (is64 ? 56 : 32) || phentsize > 256) fail(`program header size ${phentsize}`);
    const ph = readExact(read, phoff, phnum * phentsize, "the program headers");
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      segments.push(
        is64
          ? { type: u32(ph, o), offset: addr(ph, o + 8), vaddr: addr(ph, o + 16), filesz: addr(ph, o + 32) }
          : { type: u32(ph, o), offset: u32(ph, o + 4), vaddr: u32(ph, o + 8), filesz: u32(ph, o + 16) },
      );
    }
  }
  return segments;
}

/** PT_INTERP's path, if there is one. */
function readInterpreter({ read }: FieldReader, segments: Segment[]): string | undefined {
  let interpreter: string | undefined;
  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp) {
    if (interp.filesz === 0 || interp.filesz > MAX_INTERP) fail(`PT_INTERP size ${interp.filesz}`);
    const b = readExact(read, interp.offset, interp.filesz, "PT_INTERP");
    const end = b.indexOf(0);
    interpreter = b.toString("latin1", 0, end < 0 ? b.length : end);
  }
  return interpreter;
}

/** The dynamic section's entries niftyc reads: string offsets, and where the string table is. */
interface Dynamic {
  neededOff: number[];
  rpathOff: number[];
  runpathOff: number[];
  sonameOff: number | undefined;
  strtab: number | undefined;
  strsz: number | undefined;
}

function readDynamic(r: FieldReader, segments: Segment[]): Dynamic {
  const { read, is64, u32, u64n } = r;
  const neededOff: number[] = [];
  const rpathOff: number[] = [];
  const runpathOff: number[] = [];
  let sonameOff: number | undefined;
  let strtab: number | undefined;
  let strsz: number | undefined;
  const dyn = segments.find((s) => s.type === PT_DYNAMIC);
  if (dyn && dyn.filesz > 0) {
    if (dyn.filesz > MAX_DYNAMIC) fail(`PT_DYNAMIC size ${dyn.filesz}`);
    const entSize = is64 ? 16 : 8;
    // Some linkers leave PT_DYNAMIC a little short of whole entries; read what is there.
    const b = readExact(read, dyn.offset, dyn.filesz - (dyn.filesz % entSize), "PT_DYNAMIC");
    for (let o = 0; o + entSize <= b.length; o += entSize) {
      const tag = is64 ? u64n(b, o) : BigInt(u32(b, o));
      if (tag === DT_NULL) break;
      const val = is64 ? u64n(b, o + 8) : BigInt(u32(b, o + 4));
      const num = val > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(val);
      if (tag === DT_NEEDED) neededOff.push(num);
      else if (tag === DT_STRTAB) strtab = num;
      else if (tag === DT_STRSZ) strsz = num;
      else if (tag === DT_SONAME) sonameOff = num;
      else if (tag === DT_RPATH) rpathOff.push(num);
      else if (tag === DT_RUNPATH) runpathOff.push(num);
    }
  }
  return { neededOff, rpathOff, runpathOff, sonameOff, strtab, strsz };
}

/** The dynamic string table, found through the PT_LOAD segment that maps it; read only when needed. */
function readDynamicStrings(r: FieldReader, segments: Segment[], dynamic: Dynamic): Buffer | undefined {
  const { neededOff, rpathOff, runpathOff, sonameOff, strtab, strsz } = dynamic;
  let strings: Buffer | undefined;
  const anyString = neededOff.length + rpathOff.length + runpathOff.length > 0 || sonameOff !== undefined;
  if (anyString) {
    if (strtab === undefined || strtab < 0) fail("dynamic strings without DT_STRTAB");
    const load = segments.find(
      (s) => s.type === PT_LOAD && strtab! >= s.vaddr && strtab! < s.vaddr + s.filesz,
    );
    if (!load) fail(`DT_STRTAB 0x${strtab.toString(16)} lies in no PT_LOAD segment`);
    const available = load.vaddr + load.filesz - strtab;
    const size = Math.min(strsz !== undefined && strsz >= 0 ? strsz : available, available);
    if (size > MAX_STRTAB) fail(`string table size ${size}`);
    strings = readExact(r.read, load.offset + (strtab - load.vaddr), size, "the dynamic string table");
  }
  return strings;
}

/** The run-time needs, their names read from the string table. */
function elfInfo(
  { klass, endian }: Ident,
  { machine, type }: FileHeader,
  interpreter: string | undefined,
  { neededOff, rpathOff, runpathOff, sonameOff }: Dynamic,
  strings: Buffer | undefined,
): ElfInfo {
  const str = (off: number, what: string): string => cString(strings!, off, what);
  const paths = (offs: number[], what: string): string[] =>
    offs.flatMap((o) => str(o, what).split(":")).filter((p) => p !== "");

  const needed = neededOff.map((o) => str(o, "DT_NEEDED"));
  const info: ElfInfo = {
    class: klass,
    endian,
    machine,
    type,
    needed,
    runpath: paths(runpathOff, "DT_RUNPATH"),
    rpath: paths(rpathOff, "DT_RPATH"),
    isStatic: interpreter === undefined && needed.length === 0,
  };
  if (interpreter !== undefined) info.interpreter = interpreter;
  if (sonameOff !== undefined) info.soname = str(sonameOff, "DT_SONAME");
  return info;
}

/**
 * The run-time needs of an ELF file, or null when it is not ELF (no `\x7fELF` magic).
 * Reads only the headers, the dynamic section and its string table. Throws an Error naming
 * the fault when the file claims to be ELF but is truncated or inconsistent.
 */
export async function readElfInfo(file: string | Buffer): Promise<ElfInfo | null> {
  if (Buffer.isBuffer(file)) return parse((offset, length) => file.subarray(offset, offset + length));
  // Synchronous: a store blob is a local file, mostly in the page cache since the build wrote it,
  // and the half-dozen reads of its headers cost less than as many thread-pool round trips.
  const fd = openSync(file, "r");
  try {
    const { size } = fstatSync(fd);
    const at = (offset: number, length: number): Buffer => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      let got = 0;
      while (got < buf.length) {
        const bytesRead = readSync(fd, buf, got, buf.length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    };
    // The file header, the program headers and the interpreter's path lie in its first page.
    const head = at(0, ELF_HEAD);
    return parse((offset, length) =>
      offset + length <= head.length ? head.subarray(offset, offset + length) : at(offset, length),
    );
  } finally {
    closeSync(fd);
  }
}

/** How much of the file is read at once first. */
const ELF_HEAD = 4096;

// ---- shared library resolution ---------------------------------------------------------------

/** glibc's built-in search directories on Debian x86-64, in its order. */
export const DEFAULT_LIBRARY_DIRS: readonly string[] = [
  "/lib/x86_64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu",
  "/lib64",
  "/usr/lib64",
  "/lib",
  "/usr/lib",
];

export interface ImageView {
  /** Whether the absolute path exists in the image, following the image's own symlinks. */
  exists(path: string): boolean;
  elfInfo(path: string): Promise<ElfInfo | null>;
  /** ld.so's built-in directories and multiarch triplet of the image's platform (x86-64's by default). */
  platform?: { libraryDirs: readonly string[]; triplet: string };
}

/**
 * The image view of a tree: every path goes through the tree's own links (Tree.resolve),
 * never the host's; `elfOf` reads a file node's ELF facts (null when not ELF).
 */
export function treeView(
  tree: Tree,
  elfOf: (node: Extract<TreeNode, { type: "file" }>) => Promise<ElfInfo | null>,
): ImageView {
  return {
    exists: (path) => tree.lookup(path)?.node.type === "file",
    elfInfo: async (path) => {
      const found = tree.lookup(path);
      return found?.node.type === "file" ? elfOf(found.node) : null;
    },
  };
}

export interface MissingLibraries {
  /** The program's interpreter, when the image lacks it. */
  interpreter?: string;
  missing: Array<{ library: string; neededBy: string }>;
}

interface LibraryWalk extends MissingLibraries {
  /** Paths of the interpreter and the libraries that were found, in load order. */
  found: string[];
}

interface Loaded {
  path: string;
  info: ElfInfo;
  /** The object whose DT_NEEDED brought this one in (the program has none). */
  loader?: Loaded;
}

function expandTokens(dir: string, origin: string, triplet = "x86_64-linux-gnu"): string {
  return dir.replace(/\$(\{ORIGIN\}|ORIGIN|\{LIB\}|LIB|\{PLATFORM\}|PLATFORM)/g, (_m, name: string) => {
    const n = name.replace(/[{}]/g, "");
    return n === "ORIGIN" ? origin : n === "LIB" ? `lib/${triplet}` : triplet.split("-")[0]!;
  });
}

/** Directories ld.so tries for a DT_NEEDED of `obj`, in order. */
function searchDirs(obj: Loaded, platform?: ImageView["platform"]): string[] {
  const dirs: string[] = [];
  const add = (owner: Loaded, list: string[]) => {
    for (const d of list) dirs.push(expandTokens(d, posix.dirname(owner.path), platform?.triplet));
  };
  // DT_RPATH of the object and of every object that loaded it, unless it has DT_RUNPATH
  // (an object's DT_RPATH is ignored when it has DT_RUNPATH).
  if (obj.info.runpath.length === 0) {
    for (let l: Loaded | undefined = obj; l; l = l.loader)
      if (l.info.runpath.length === 0) add(l, l.info.rpath);
  }
  add(obj, obj.info.runpath);
  dirs.push(...(platform?.libraryDirs ?? DEFAULT_LIBRARY_DIRS));
  return dirs;
}

/** ld.so opens a relative path from its working directory, which is / for init's programs. */
function absolute(path: string): string {
  return path.startsWith("/") ? path : `/${path}`;
}

function compatible(a: ElfInfo, b: ElfInfo): boolean {
  return a.class === b.class && a.endian === b.endian && a.machine === b.machine;
}

/**
 * What `program` (its absolute path in the image, described by `info`) would fail to find
 * at run time in `image`: its interpreter, and every DT_NEEDED library, followed through the
 * libraries' own DT_NEEDED, searched the way glibc's ld.so does (minus LD_LIBRARY_PATH and
 * ld.so.cache, which an image build cannot rely on).
 */
export async function missingLibraries(
  program: string,
  info: ElfInfo,
  image: ImageView,
): Promise<MissingLibraries> {
  const { found: _, ...missing } = await walkLibraries(program, info, image);
  return missing;
}

/** The interpreter and every library `program` loads from `image`, in load order (what it misses is left out). */
export async function loadedLibraries(program: string, info: ElfInfo, image: ImageView): Promise<string[]> {
  return (await walkLibraries(program, info, image)).found;
}

async function walkLibraries(program: string, info: ElfInfo, image: ImageView): Promise<LibraryWalk> {
  const result: LibraryWalk = { missing: [], found: [] };
  if (info.interpreter !== undefined) {
    if (image.exists(info.interpreter)) result.found.push(info.interpreter);
    else result.interpreter = info.interpreter;
  }

  const root: Loaded = { path: program, info };
  const loadedNames = new Set<string>();
  const loadedPaths = new Set<string>([program]);
  if (info.soname) loadedNames.add(info.soname);
  const reported = new Set<string>();
  const queue: Loaded[] = [root];
  while (queue.length > 0) {
    const obj = queue.shift()!;
    for (const name of obj.info.needed) {
      // ld.so reuses an object already loaded under that name.
      if (loadedNames.has(name)) continue;
      let found: Loaded | undefined;
      // Joined, not cleaned up: the image resolves `..` after its links the way the kernel does.
      const candidates = name.includes("/")
        ? [absolute(name)]
        : searchDirs(obj, image.platform).map((d) => `${absolute(d).replace(/\/+$/, "")}/${name}`);
      for (const path of candidates) {
        if (!image.exists(path)) continue;
        const libInfo = await image.elfInfo(path);
        // ld.so skips files of another class or machine and keeps searching.
        if (libInfo && compatible(libInfo, info)) {
          found = { path, info: libInfo, loader: obj };
          break;
        }
      }
      if (!found) {
        const key = `${name}\0${obj.path}`;
        if (!reported.has(key)) {
          reported.add(key);
          result.missing.push({ library: name, neededBy: obj.path });
        }
        continue;
      }
      loadedNames.add(name);
      if (found.info.soname) loadedNames.add(found.info.soname);
      if (!loadedPaths.has(found.path)) {
        loadedPaths.add(found.path);
        result.found.push(found.path);
        queue.push(found);
      }
    }
  }
  return result;
}

// ---- BusyBox applets -------------------------------------------------------------------------

export interface ListAppletsOptions {
  /**
   * "auto" (default): run `<binary> --list` when it is an x86-64 ELF, else read the table
   * from the file; "run" or "elf" force one way.
   */
  method?: "auto" | "run" | "elf";
  /** Kill the --list run after this many milliseconds (default 10000). */
  timeoutMs?: number;
}

const APPLET_NAME = /^[\x21-\x2e\x30-\x7e]{1,64}$/;

// Characters of BusyBox applet names (lower case, digits, "._-[]"); upper case keeps other
// sorted string lists (signal names, say) from passing for a table.
const APPLET_CHAR = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyz0123456789._-[]") APPLET_CHAR[c.charCodeAt(0)] = 1;

function runList(binaryPath: string, timeoutMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      binaryPath,
      ["--list"],
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1 << 20, encoding: "latin1", env: {} },
      (err, stdout) => {
        if (err) return reject(new Error(`${binaryPath} --list failed: ${err.message}`));
        const names = stdout.split("\n").filter((l) => l !== "");
        if (names.length === 0 || !names.every((n) => APPLET_NAME.test(n))) {
          return reject(new Error(`${binaryPath} --list did not print applet names`));
        }
        resolve(names);
      },
    );
  });
}

/**
 * The applet name table inside a BusyBox binary: NUL-terminated, strcmp-sorted names ended by
 * an extra NUL. The longest such run in the file is taken as the table. Other programs hold
 * short sorted lists too (character classes, versions), so a file without BusyBox's version
 * banner gives an empty list.
 */
export function scanAppletTable(data: Buffer): string[] {
  if (data.indexOf("BusyBox v", 0, "latin1") < 0) return [];
  let best: { start: number; count: number; end: number } | undefined;
  let runStart = -1;
  let runCount = 0;
  let prevStart = -1;
  let prevEnd = -1;
  let tokStart = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== 0) continue;
    const len = i - tokStart;
    if (len === 0) {
      // "\0\0": a run that ends here is a candidate table.
      if (runCount > 0 && (!best || runCount > best.count))
        best = { start: runStart, count: runCount, end: prevEnd };
      runCount = 0;
    } else {
      let valid = len <= 64;
      for (let j = tokStart; valid && j < i; j++) {
        const c = data[j]!;
        valid = APPLET_CHAR[c] === 1;
      }
      if (!valid) {
        runCount = 0;
      } else if (
        runCount > 0 &&
        /* this name sorts after the previous one */ data.compare(data, prevStart, prevEnd, tokStart, i) > 0
      ) {
        runCount++;
      } else {
        runStart = tokStart;
        runCount = 1;
      }
      prevStart = tokStart;
      prevEnd = i;
    }
    tokStart = i + 1;
  }
  // A couple of sorted strings happen by chance in any binary; a real table has many.
  if (!best || best.count < 8) return [];
  return data.toString("latin1", best.start, best.end).split("\0");
}

/** Applet names of a BusyBox-style multicall binary, in the binary's (sorted) order. */
export async function listApplets(binaryPath: string, opts: ListAppletsOptions = {}): Promise<string[]> {
  const method = opts.method ?? "auto";
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (method === "run") return runList(binaryPath, timeoutMs);
  if (method === "auto") {
    const info = await readElfInfo(binaryPath);
    if (info && info.machine === EM_X86_64 && info.class === 64 && info.endian === "little") {
      try {
        return await runList(binaryPath, timeoutMs);
      } catch {
        // Not runnable here (or not a multicall binary): fall back to reading the table.
      }
    }
  }
  const names = scanAppletTable(await readFile(binaryPath));
  if (names.length === 0) {
    throw new Error(
      `${binaryPath}: no BusyBox applet name table found (not BusyBox, packed, or a single-applet build)`,
    );
  }
  return names;
}
