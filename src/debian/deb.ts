// Reading a whole .deb without running anything in it: every entry of its
// data.tar (file bytes streamed into the store, so each file is a blob), and
// from its control.tar the control stanza, conffiles, md5sums and which
// maintainer scripts it carries (recorded, never run). MD5 is computed only
// where the dpkg database needs one the package does not ship: its conffiles
// (md5sums leaves them out), and every file when it has no md5sums. The result is kept as
// a store record under the .deb's digest, so the next build does not read the
// package again. Memory stays bounded: one entry's bytes flow at a time.
import { createHash } from "node:crypto";
import type { Header } from "tar-stream";
import type { Limits } from "../core/limits.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { digestHex, Store } from "../cache/store.ts";
import type { BlobFile } from "../cache/store.ts";
import { entryType, hardLinkKey, locateDebMember, refuseUnsafeName, scanTar } from "../fetch/archive.ts";
import type { Entry } from "../fetch/archive.ts";
import { fieldValue, parseStanzas } from "./fields.ts";
import type { Field } from "./fields.ts";

export type DebEntryType = "file" | "dir" | "symlink" | "hardlink";

/** One entry of a package's data.tar. */
export interface DebEntry {
  /** Relative to the root, without `./` or a trailing slash: usr/bin/foo */
  path: string;
  type: DebEntryType;
  /** Permission bits, with setuid, setgid and sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Owner names recorded in the tar, when it has them (dpkg prefers them where the system knows them). */
  uname?: string;
  gname?: string;
  /** Regular files: the blob of their bytes and size. Hard links: their target's. */
  digest?: string;
  size?: number;
  /**
   * The bytes' MD5, for dpkg's Conffiles and md5sums: only for conffiles, and for every file of a
   * package without md5sums (whose md5sums dpkg then makes). Hard links: their target's, if it has one.
   */
  md5?: string;
  /** Symlinks: the target as written. Hard links: the normalized path of the earlier entry they name. */
  target?: string;
}

/** A line of a package's conffiles: the path and its flags (remove-on-upgrade). */
export interface Conffile {
  path: string;
  flags: string[];
}

export const MAINTAINER_SCRIPTS = ["preinst", "postinst", "prerm", "postrm", "config"] as const;
export type MaintainerScript = (typeof MAINTAINER_SCRIPTS)[number];

export interface DebContents {
  /** Bumped when the reader changes what it records or refuses (2: control characters in paths). */
  format: string;
  /** Digest of the .deb. */
  deb: string;
  /** The control stanza, fields in the package's order. */
  control: Field[];
  conffiles: Conffile[];
  /** The conffiles and md5sums control members as they are, when present (dpkg's database copies them). */
  conffilesText?: string;
  md5sumsText?: string;
  /** Maintainer scripts the package has (never run by niftyc). */
  scripts: MaintainerScript[];
  /** Whether the package declares triggers (a control member `triggers`). */
  triggers: boolean;
  /** Names of every control.tar member, e.g. control, md5sums, shlibs, postinst. */
  controlFiles: string[];
  /** data.tar entries in archive order, without the root directory. */
  entries: DebEntry[];
}

export const DEB_FORMAT = "niftyc-deb/2";
/** Control members are small; anything bigger is not a real package. */
const MAX_CONTROL_MEMBER = 16 << 20;

/**
 * Read the .deb stored under `digest` (its entry list cached by that digest), in a reader thread.
 * `what` names it in errors, e.g. "busybox-static 1:1.35.0-4 (amd64)".
 */
export async function readDeb(
  store: Store,
  digest: string,
  what: string,
  limits?: Limits,
): Promise<DebContents & { fromCache: boolean }> {
  const cached = await store.readRecord<DebContents>("deb-contents", digestHex(digest));
  if (cached?.format === DEB_FORMAT && cached.deb === digest && (await blobsPresent(store, cached)))
    return { ...cached, fromCache: true };
  const { runInThread } = await import("../cache/threads.ts");
  const args: Parameters<typeof readDebIntoStore> = [store.dir, digest, what, limits];
  const contents = (await runInThread(import.meta.url, "readDebIntoStore", args)) as DebContents;
  return { ...contents, fromCache: false };
}

/** Read the stored .deb (not through the cache) and record its contents: what a worker thread does. */
export async function readDebIntoStore(
  storeDir: string,
  digest: string,
  what: string,
  limits?: Limits,
): Promise<DebContents> {
  const store = new Store(storeDir);
  const contents = await readDebFile(store, store.blobPath(digest), digest, what, limits);
  await store.writeRecord("deb-contents", digestHex(digest), contents);
  return contents;
}

/** A cached list is only good while the store still has every file it names. */
async function blobsPresent(store: Store, contents: DebContents): Promise<boolean> {
  const digests = new Set(contents.entries.flatMap((e) => (e.type === "file" && e.digest ? [e.digest] : [])));
  for (const d of digests) if (!(await store.has(d))) return false;
  return true;
}

/** Read a .deb file (not through the cache): control first, then every data entry into the store. */
export async function readDebFile(
  store: Store,
  file: string,
  digest: string,
  what: string,
  limits?: Limits,
): Promise<DebContents> {
  const control = await readControl(file, what);
  const stanzas = parseStanzas(control.members.get("control") ?? "", `the control file of ${what}`, {
    comments: true,
  });
  if (
    !control.members.has("control") ||
    stanzas.length !== 1 ||
    fieldValue(stanzas[0]!, "Package") === undefined
  ) {
    throw debError(
      what,
      control.members.has("control")
        ? "its control file is not one stanza with a Package field"
        : "it has no control file",
    );
  }
  const conffilesText = control.members.get("conffiles");
  const conffiles = parseConffiles(conffilesText ?? "", what);
  const md5sums = control.members.get("md5sums");
  const entries = await readData(store, file, what, md5Wanted(md5sums !== undefined, conffiles), limits);
  const contents: DebContents = {
    format: DEB_FORMAT,
    deb: digest,
    control: stanzas[0]!,
    conffiles,
    scripts: MAINTAINER_SCRIPTS.filter((s) => control.names.includes(s)),
    triggers: control.names.includes("triggers"),
    controlFiles: control.names,
    entries,
  };
  if (conffilesText !== undefined) contents.conffilesText = conffilesText;
  if (md5sums !== undefined) contents.md5sumsText = md5sums;
  return contents;
}

/** Only the control stanza of a .deb file: what the package says it is, without reading its data. */
export async function readDebControl(file: string, what: string): Promise<Field[]> {
  const control = await readControl(file, what);
  const stanzas = parseStanzas(control.members.get("control") ?? "", `the control file of ${what}`, {
    comments: true,
  });
  if (stanzas.length !== 1 || fieldValue(stanzas[0]!, "Package") === undefined) {
    throw debError(what, "its control file is not one stanza with a Package field");
  }
  return stanzas[0]!;
}

/** The control.tar members' names, and the text of the few niftyc reads. */
async function readControl(
  file: string,
  what: string,
): Promise<{ names: string[]; members: Map<string, string> }> {
  const loc = await locateDebMember(file, "control.tar");
  const names: string[] = [];
  const members = new Map<string, string>();
  const wanted = new Set(["control", "conffiles", "md5sums"]);
  await scanTar<never>(
    file,
    loc,
    async (entry, key, header) => {
      refuseUnsafeName(header.name, what);
      if (key === "" || entryType(header) === "directory") return undefined;
      if (key.includes("/")) throw debError(what, `its control.tar has a member in a subdirectory: ${key}`);
      names.push(key);
      if (wanted.has(key) && entryType(header) === "file")
        members.set(key, (await readSmall(entry, what, key)).toString("utf8"));
      return undefined;
    },
    undefined,
    debShown(what, file),
  );
  return { names: names.sort(), members };
}

async function readSmall(entry: Entry, what: string, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_CONTROL_MEMBER)
      throw debError(what, `its control member ${name} is larger than ${MAX_CONTROL_MEMBER >> 20} MiB`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** conffiles: one absolute path a line, optionally after flags (dpkg ≥ 1.20.1: remove-on-upgrade). */
export function parseConffiles(text: string, what: string): Conffile[] {
  const out: Conffile[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const words = line.split(/\s+/);
    const path = words.at(-1)!;
    if (!path.startsWith("/"))
      throw debError(what, `its conffiles line ${JSON.stringify(line)} does not end with an absolute path`);
    out.push({ path, flags: words.slice(0, -1) });
  }
  return out;
}

/**
 * Which data.tar paths (relative, as DebEntry.path) need their MD5: dpkg's database copies a shipped
 * md5sums, so only the conffiles' (for Conffiles) are needed then; without one, every file's.
 */
function md5Wanted(hasMd5sums: boolean, conffiles: readonly Conffile[]): (path: string) => boolean {
  if (!hasMd5sums) return () => true;
  const paths = new Set(conffiles.map((c) => c.path));
  return (path) => paths.has(`/${path}`);
}

/** What reading one data.tar shares between its entries. */
interface DataReading {
  store: Store;
  what: string;
  commits: Commits;
  /** The entries read so far, by path: hard links name earlier ones, and a path comes once. */
  byPath: Map<string, DebEntry>;
  wantMd5: (path: string) => boolean;
}

async function readData(
  store: Store,
  file: string,
  what: string,
  wantMd5: (path: string) => boolean,
  limits?: Limits,
): Promise<DebEntry[]> {
  const loc = await locateDebMember(file, "data.tar");
  const entries: DebEntry[] = [];
  const reading: DataReading = { store, what, commits: new Commits(), byPath: new Map(), wantMd5 };
  try {
    await scanData(reading, file, loc, limits, (key, e) => {
      reading.byPath.set(key, e);
      entries.push(e);
    });
  } catch (error) {
    // The archive's own problem is the one to report, not a later member's failed sync.
    await reading.commits.settle(store).catch(() => {});
    throw error;
  }
  // Every member is on disk under its name before the contents that name it are returned.
  await reading.commits.settle(store);
  return entries;
}

/**
 * Members written and closed but not yet named. Named together once the package is read, after one
 * sync of the store's journal of unsynced blobs stands for all their bytes (Store.journalUnsynced);
 * each file is synced on its own only where the kernel gives no boot id.
 */
class Commits {
  readonly #files: BlobFile[] = [];

  add(file: BlobFile): void {
    file.finish();
    this.#files.push(file);
  }

  /** Name every finished member (on failure too: they are whole), then sync the names. */
  async settle(store: Store): Promise<void> {
    const files = this.#files.splice(0);
    try {
      if (!store.journalUnsynced(files.map((f) => f.digest))) for (const f of files) f.sync();
      for (const f of files) f.name();
    } catch (error) {
      for (const f of files) f.abort();
      throw error;
    }
    await store.syncBlobNames();
  }
}

async function scanData(
  reading: DataReading,
  file: string,
  loc: Awaited<ReturnType<typeof locateDebMember>>,
  limits: Limits | undefined,
  add: (key: string, e: DebEntry) => void,
): Promise<void> {
  const { what, byPath } = reading;
  await scanTar<never>(
    file,
    loc,
    async (entry, key, header) => {
      refuseUnsafeName(header.name, what);
      if (key === "") return undefined; // the root directory: the image's, not the package's
      // dpkg's .list and md5sums hold one path a line: a newline would add a line, an ESC drive a terminal.
      if (/[\x00-\x1f\x7f]/.test(key)) {
        throw debError(what, `its data.tar has a path with a control character: ${JSON.stringify(key)}`);
      }
      if (byPath.has(key)) throw debError(what, `its data.tar has ${key} twice`);
      add(key, await toEntry(reading, entry, key, header));
      return undefined;
    },
    limits,
    debShown(what, file),
  );
}

/** A .deb as errors about its archive name it: the package, and the file read. */
function debShown(what: string, file: string): string {
  return `the .deb of ${what} (${file})`;
}

async function toEntry(reading: DataReading, entry: Entry, key: string, header: Header): Promise<DebEntry> {
  const { what } = reading;
  const base = { path: key, mode: (header.mode ?? 0) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0 };
  const names: { uname?: string; gname?: string } = {};
  if (header.uname) names.uname = header.uname;
  if (header.gname) names.gname = header.gname;
  switch (entryType(header)) {
    case "directory":
      return { ...base, type: "dir", ...names };
    case "symlink":
      if (!header.linkname) throw debError(what, `its symlink ${key} has no target`);
      return { ...base, type: "symlink", ...names, target: header.linkname };
    case "link": {
      const target = hardLinkKey(header.linkname ?? "", what);
      const to = reading.byPath.get(target);
      if (to?.type !== "file")
        throw debError(
          what,
          `its hard link ${key} names ${target}, which is not an earlier regular file in the package`,
        );
      const link: DebEntry = {
        ...base,
        type: "hardlink",
        ...names,
        target,
        digest: to.digest!,
        size: to.size!,
      };
      if (to.md5 !== undefined) link.md5 = to.md5;
      return link;
    }
    case "file":
      return {
        ...base,
        type: "file",
        ...names,
        ...(await storeMember(reading, entry, reading.wantMd5(key))),
      };
    default:
      throw debError(
        what,
        `its data.tar entry ${key} is a ${header.type} (only files, directories, symlinks and hard links are installed)`,
      );
  }
}

/**
 * Write one entry into the store, hashing it with SHA-256 (and MD5, dpkg's checksum, when asked)
 * on the way. The file is closed, and named with the package's other members once all are read
 * (`commits`).
 */
async function storeMember(
  reading: DataReading,
  entry: Entry,
  withMd5: boolean,
): Promise<{ digest: string; size: number; md5?: string }> {
  const md5 = withMd5 ? createHash("md5") : undefined;
  const file = reading.store.createFile();
  try {
    for await (const chunk of entry as AsyncIterable<Buffer>) {
      md5?.update(chunk);
      file.write(chunk);
    }
  } catch (err) {
    file.abort();
    throw err;
  }
  const { digest, size } = file;
  try {
    reading.commits.add(file);
  } catch (err) {
    file.abort();
    throw err;
  }
  return md5 === undefined ? { digest, size } : { digest, size, md5: md5.digest("hex") };
}

function debError(what: string, why: string): NiftyError {
  return new NiftyError(
    "NIFTY627",
    `cannot install ${what}: ${why}`,
    "the package is malformed or of a kind niftyc does not install; check its source",
  );
}

/** The control field of a package, for callers that hold DebContents. */
export function controlField(contents: DebContents, name: string): string | undefined {
  return fieldValue(contents.control, name);
}
