// Unpacking a rootfs tar into a tree with exact owners, modes and links, safely, and the private
// directory every unpacked tree lives under (the unpack cache, instances, install, bundles).
import { createReadStream, createWriteStream } from "node:fs";
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
} from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import type { Extract, Header } from "tar-stream";
import { redirectableBy } from "../core/owned-path.ts";
import { isCode } from "../core/process.ts";
import { NiftyError } from "../diagnostics/errors.ts";

/**
 * The directory above every tree niftyc unpacks (the unpack cache, an instances directory, the
 * machines directory of `install`, a bundle): created 0700, and made 0700 again when it is open
 * (an older niftyc made such directories 0755). A tree keeps the image's owners and modes, so a
 * setuid-root program in it would run as root for any local user who could reach it; behind this
 * directory only its owner (root, and the engines root runs: systemd-nspawn, runc, podman) can.
 * One the caller does not own is refused: its owner could open it again.
 */
export async function privateDir(dir: string): Promise<{ repaired: boolean }> {
  // Only the directory itself is private: parents made on the way are ordinary ones.
  await mkdir(dirname(dir), { recursive: true, mode: 0o755 });
  await mkdir(dir, { mode: 0o700 }).catch((error: unknown) => {
    if (!isCode(error, "EEXIST")) throw error;
  });
  const uid = process.getuid?.() ?? 0;
  // Another user who could rename a directory on the way, or swap a symbolic link, could put a
  // tree of theirs where this one is looked for, or take this one out of its private directory.
  const redirect = redirectableBy(dir, uid);
  if (redirect !== undefined) {
    throw new NiftyError(
      "NIFTY522",
      `${dir} is not private: another user could make it lead elsewhere (${redirect})`,
      "give a directory on a path only you and root can change (not below a directory others may write, nor through their symbolic links)",
    );
  }
  const st = await stat(dir);
  // Sticky or writable by all, and in use (as /tmp): closing it would lock its users out. An empty
  // one (a fresh tmpfs is 1777) is simply made private.
  const shared = st.isDirectory() && (st.mode & 0o1002) !== 0 && (await readdir(dir)).length > 0;
  if (!st.isDirectory() || st.uid !== uid || shared) {
    const what = !st.isDirectory()
      ? "is not a directory"
      : st.uid !== uid
        ? `belongs to uid ${st.uid}, not to uid ${uid}`
        : `is shared (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")}: every user may write in it) and in use, and closing it would lock its users out`;
    throw new NiftyError(
      "NIFTY522",
      `${dir} ${what}: the tree unpacked below it would not be private`,
      "give a directory of your own (or let niftyc create it); whoever owns it could open it to every user",
    );
  }
  if ((st.mode & 0o077) === 0) return { repaired: false };
  await chmod(dir, 0o700);
  return { repaired: true };
}

function unsafe(name: string, why: string): NiftyError {
  return new NiftyError(
    "NIFTY510",
    `refusing tar entry ${JSON.stringify(name)}: ${why}`,
    "the rootfs tar must hold relative paths inside the root only",
  );
}

/** "./a/b/" → "a/b"; refuses absolute names and "..". Returns "" for the root itself. */
function entryPath(name: string): string {
  if (name.startsWith("/")) throw unsafe(name, "absolute path");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw unsafe(name, "'..' component");
  return parts.join("/");
}

/** A uid or gid from a pax record, when it holds a whole number. */
function paxId(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}

/** Linux's limits on a path (PATH_MAX 4096 with its NUL) and a name (NAME_MAX 255 bytes): told, not ENAMETOOLONG. */
function refuseLongName(name: string, rel: string): void {
  const bytes = Buffer.byteLength(rel);
  const longest = Math.max(0, ...rel.split("/").map((p) => Buffer.byteLength(p)));
  if (bytes > 4000 || longest > 255) {
    throw new NiftyError(
      "NIFTY803",
      `tar entry ${JSON.stringify(name.length > 80 ? `${name.slice(0, 77)}...` : name)} is too long to unpack (${bytes > 4000 ? `${bytes} bytes of path` : `a name of ${longest} bytes`})`,
      "Linux allows names of 255 bytes and paths of 4095; shorten the path in the recipe",
    );
  }
}

/**
 * Unpack a rootfs tar into `dir` (created, its parent must exist; removed again on failure) with exact owners,
 * modes, mtimes and symlinks. Nothing is written outside `dir`: names are
 * checked, no entry is written through a symlink the archive made, and hard
 * links must point at a regular file already unpacked.
 */
export async function unpackRootfs(tarPath: string, dir: string): Promise<void> {
  await mkdir(dir);
  await chmod(dir, 0o755); // unless the tar has an entry for the root
  const unpacking: Unpacking = { dir, symlinks: new Set(), files: new Set(), dirs: [] };
  await unpackEntries(tarPath, unpacking);
  // Children changed the directories' mtimes: set them last, deepest first.
  for (const { path, mtime } of unpacking.dirs.reverse()) await utimes(path, mtime, mtime);
}

/** One entry of the tar: its header and a stream of its bytes. */
type TarEntry = Extract extends AsyncIterable<infer S> ? S : never;

/** An entry's path, relative to the root and under it. */
interface EntryPlace {
  rel: string;
  abs: string;
}

/** What unpacking has made so far: the paths later entries are checked against. */
interface Unpacking {
  dir: string;
  symlinks: Set<string>;
  files: Set<string>;
  dirs: Array<{ path: string; mtime: Date }>;
}

/** Unpack every entry in order; on failure, stop reading and remove the half-unpacked tree. */
async function unpackEntries(tarPath: string, u: Unpacking): Promise<void> {
  const extract = tarStream.extract();
  const reading = pipeline(createReadStream(tarPath), extract);
  try {
    for await (const entry of extract) {
      const h = entryHeader(entry);
      await writeEntry(u, entry, h, await makeRoomFor(u, h));
    }
    await reading;
  } catch (error) {
    extract.destroy();
    await reading.catch(() => undefined);
    await rm(u.dir, { recursive: true, force: true }); // no half-unpacked tree
    throw error;
  }
}

/** The entry's header, with the owners pax records hold in place of ustar's. */
function entryHeader(entry: TarEntry): Header {
  const h = entry.header;
  // Owners beyond ustar's six octal digits travel in pax records.
  const pax = (h.pax ?? {}) as Record<string, string | undefined>;
  h.uid = paxId(pax["uid"]) ?? h.uid;
  h.gid = paxId(pax["gid"]) ?? h.gid;
  return h;
}

/** The entry's checked path in the tree, its parents made and an earlier entry of its name cleared. */
async function makeRoomFor(u: Unpacking, h: Header): Promise<EntryPlace> {
  const rel = entryPath(h.name);
  const abs = rel === "" ? u.dir : join(u.dir, rel);
  refuseLongName(h.name, rel);
  if (rel !== "" && throughSymlink(u, rel)) throw unsafe(h.name, "a parent directory is a symlink");
  if (rel !== "") {
    await ensureParent(u.dir, rel);
    await clear(u, abs, rel, h.type === "directory");
  }
  return { rel, abs };
}

function throughSymlink(u: Unpacking, rel: string): boolean {
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) if (u.symlinks.has(parts.slice(0, i).join("/"))) return true;
  return false;
}

async function ensureParent(dir: string, rel: string): Promise<void> {
  const parent = posix.dirname(rel);
  if (parent !== ".") await mkdir(join(dir, parent), { recursive: true, mode: 0o755 });
}

async function clear(u: Unpacking, abs: string, rel: string, directory: boolean): Promise<void> {
  // A later entry of the same name replaces the earlier one (directories merge).
  try {
    const st = await lstat(abs);
    if (st.isDirectory() && !directory) {
      throw new NiftyError(
        "NIFTY803",
        `tar entry ${JSON.stringify(rel)} would replace the directory of the same name unpacked before it`,
        "a rootfs tar names each path once, or only as directories; rebuild it with niftyc",
      );
    }
    if (!st.isDirectory()) await unlink(abs);
  } catch (error) {
    if (!isCode(error, "ENOENT")) throw error;
  }
  u.symlinks.delete(rel);
  u.files.delete(rel);
}

/** Write one entry at its place with its exact owner, mode and mtime. */
async function writeEntry(u: Unpacking, entry: TarEntry, h: Header, at: EntryPlace): Promise<void> {
  const { rel, abs } = at;
  const mtime = h.mtime ?? new Date(0);
  switch (h.type) {
    case "directory":
      await mkdir(abs, { recursive: true, mode: 0o700 });
      await lchown(abs, h.uid, h.gid);
      await chmod(abs, h.mode);
      u.dirs.push({ path: abs, mtime });
      entry.resume();
      break;
    case "file":
    case "contiguous-file":
      await pipeline(entry, createWriteStream(abs, { flags: "wx", mode: 0o600 }));
      await lchown(abs, h.uid, h.gid);
      await chmod(abs, h.mode); // after chown, which clears setuid bits
      await utimes(abs, mtime, mtime);
      u.files.add(rel);
      break;
    case "symlink":
      await symlink(h.linkname, abs);
      await lchown(abs, h.uid, h.gid);
      await lutimes(abs, mtime, mtime);
      u.symlinks.add(rel);
      entry.resume();
      break;
    case "link": {
      const target = entryPath(h.linkname ?? "");
      if (target === "" || !u.files.has(target) || throughSymlink(u, target)) {
        throw unsafe(
          h.name,
          `hard link to ${JSON.stringify(h.linkname)}, which is no regular file unpacked before it`,
        );
      }
      await link(join(u.dir, target), abs);
      u.files.add(rel);
      entry.resume();
      break;
    }
    default:
      throw new NiftyError(
        "NIFTY511",
        `tar entry ${JSON.stringify(h.name)} has unsupported type ${h.type}`,
        "a niftyc rootfs holds only directories, files, symlinks and hard links",
      );
  }
}
