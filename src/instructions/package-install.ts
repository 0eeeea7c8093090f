// How PACKAGE puts packages into the image: whole, with the dpkg database
// written for them, or only some files plus what their programs load. Paths
// land through the image's own symlinks (a merged-/usr image gets /lib/… in
// /usr/lib/…), never outside it. Nothing from a package is ever run.
import { largestFirst } from "../core/gate.ts";
import { newHash } from "../core/hash.ts";
import type { Span } from "../core/source.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { loadedLibraries, readElfInfo, treeView, type ElfInfo } from "../image/elf.ts";
import { Tree, type Content, type TreeNode } from "../image/tree.ts";
import type { DebContents, DebEntry } from "../debian/deb.ts";
import type { LockedPackage } from "../debian/lockfile.ts";
import { ADMIN_DIR, dpkgDatabase, installedFromDeb, statusStanza } from "../debian/dpkg-db.ts";
import { STATUS_D, statusDFiles } from "../debian/dpkg-db.ts";
import { fieldValue, formatStanza, parseStanzas } from "../debian/fields.ts";
import { StepError, type BuildContext } from "./context.ts";
import { libraryDirs } from "../image/platform.ts";

/** Every package of the closure, whole, and the dpkg database that lists them. */
export async function installWhole(
  closure: readonly LockedPackage[],
  context: BuildContext,
  span: Span,
): Promise<void> {
  const installed: Array<{ pkg: LockedPackage; contents: DebContents }> = [];
  const reading = askAll(closure, context, span);
  for (const [i, pkg] of closure.entries()) {
    const contents = await reading[i]!;
    const byPath = new Map(contents.entries.map((e) => [e.path, e]));
    for (const entry of contents.entries) place(context.tree, entry, byPath);
    installed.push({ pkg, contents });
  }
  // dpkg's own database, so dpkg-query and scanners see what is installed;
  // the status of packages an earlier PACKAGE line installed is kept.
  const packages = installed.map((i) => installedFromDeb(i.contents));
  const database = dpkgDatabase(packages).filter((entry) => entry.path !== `${ADMIN_DIR}/status`);
  // Stored at once (each larger file is a synced blob), placed in the database's order.
  const stored = await Promise.all(
    database.map((entry) =>
      entry.type === "file" ? context.content(Buffer.from(entry.content)) : undefined,
    ),
  );
  for (const [i, entry] of database.entries()) {
    if (entry.type === "dir") context.tree.mkdirp(entry.path);
    else placeText(context, entry.path, stored[i]!);
  }
  const status = new Map<string, string>();
  const earlier = (await context.readText(`${ADMIN_DIR}/status`)) ?? "";
  for (const stanza of parseStanzas(earlier, "the image's dpkg status")) {
    const key = `${fieldValue(stanza, "Package")}\0${fieldValue(stanza, "Architecture")}`;
    status.set(key, formatStanza(stanza));
  }
  for (const pkg of packages)
    status.set(
      `${fieldValue(pkg.control, "Package")}\0${fieldValue(pkg.control, "Architecture")}`,
      statusStanza(pkg),
    );
  const sorted = [...status].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, text]) => text);
  await writeText(context, `${ADMIN_DIR}/status`, sorted.map((stanza) => `${stanza}\n`).join(""));
  const scripted = installed.filter((i) => i.contents.scripts.length > 0);
  if (scripted.length > 0) {
    context.note(
      span,
      `maintainer scripts not run (niftyc never runs packaged code): ${scripted.map((i) => `${i.pkg.name} (${i.contents.scripts.join(", ")})`).join("; ")}`,
    );
  }
}

/**
 * Only `files` from the packages named, plus the program loader and shared
 * libraries the ELF programs among them load, found in the closure's files the
 * way ld.so searches (DT_NEEDED, RUNPATH, the default directories).
 */
export async function installFiles(
  closure: readonly LockedPackage[],
  names: readonly string[],
  files: readonly string[],
  context: BuildContext,
  span: Span,
  fileSpan: Readonly<Record<string, Span>>,
): Promise<void> {
  // The closure's files as they would land in this image: its directories and links
  // first, so a merged-/usr image's /lib64 → usr/lib64 leads where libc6 puts the loader.
  const all = new Tree();
  for (const path of context.tree.sortedPaths()) {
    const node = context.tree.get(path)!;
    if (node.type !== "file") all.set(path, node);
  }
  const owned = new Map<string, Set<string>>();
  const byPath = new Map<string, DebEntry>();
  const origin = new FileOrigins();
  const reading = askAll(closure, context, span);
  for (const [i, pkg] of closure.entries()) {
    const contents = await reading[i]!;
    origin.controls.set(pkg.name, contents.control);
    for (const entry of contents.entries) {
      byPath.set(entry.path, entry);
      const landed = place(all, entry, byPath);
      origin.placed(pkg.name, entry, landed, byPath);
      if (names.includes(pkg.name)) {
        const paths = owned.get(pkg.name) ?? owned.set(pkg.name, new Set()).get(pkg.name)!;
        paths.add(`/${entry.path}`);
        paths.add(landed);
      }
    }
  }
  const elf = new Map<string, Promise<ElfInfo | null>>();
  const elfOf = (node: TreeNode): Promise<ElfInfo | null> => {
    if (node.type !== "file") return Promise.resolve(null);
    const digest = node.content.digest;
    if (!elf.has(digest))
      elf.set(
        digest,
        readElfInfo(context.blobPath(digest)).catch(() => null),
      );
    return elf.get(digest)!;
  };
  const view = {
    ...treeView(all, elfOf),
    platform: { libraryDirs: libraryDirs(context.platform), triplet: context.platform.triplet },
  };
  const wanted = new Set<string>();
  for (const file of files) {
    const found = all.lookup(file);
    const ownedBy = [...owned.values()].some(
      (paths) => paths.has(file) || (found !== undefined && paths.has(found.path)),
    );
    if (found?.node.type !== "file" || !ownedBy) {
      const near = suggest(
        file,
        [...owned.values()]
          .flatMap((paths) => [...paths])
          .filter((p) => byPath.get(p.slice(1))?.type !== "dir"),
      );
      throw notInPackages(file, names, fileSpan[file] ?? span, near);
    }
    wanted.add(file);
    const info = await elfOf(found.node);
    // The program's $ORIGIN is where it is, its links followed (ld.so reads /proc/self/exe).
    if (info === null || info.isStatic) continue;
    for (const lib of await loadedLibraries(found.path, info, view)) wanted.add(lib);
  }
  for (const path of [...wanted].sort()) {
    copyPath(all, context.tree, path);
    origin.held(all.resolve(path));
  }
  await writeStatusD(context, origin);
}

/**
 * Every package's contents asked for at once (the largest .deb first), so the context downloads and
 * reads several .debs together; the caller still takes them one by one in the closure's order, so
 * the tree is the same.
 */
function askAll(
  closure: readonly LockedPackage[],
  context: BuildContext,
  span: Span,
): Array<Promise<DebContents>> {
  return largestFirst(
    closure,
    (pkg) => pkg.size,
    (pkg) => {
      const pending = context.debContents(pkg, span);
      // An earlier package's failure ends the step before this one is awaited: never unhandled.
      pending.catch(() => {});
      return pending;
    },
  );
}

/** A file's bytes: their blob, and their MD5 when the .deb reader made one. */
interface HeldBytes {
  digest: string;
  md5?: string;
}

/** Which package each file of the closure came from (the last to place it), and which the image holds. */
class FileOrigins {
  readonly controls = new Map<string, DebContents["control"]>();
  /** Landed path → package name and bytes. */
  readonly #placed = new Map<string, { name: string; bytes: HeldBytes }>();
  /** Package name → path in the image → bytes. */
  readonly holds = new Map<string, Map<string, HeldBytes>>();

  placed(name: string, entry: DebEntry, landed: string, byPath: ReadonlyMap<string, DebEntry>): void {
    const source = entry.type === "hardlink" ? byPath.get(entry.target!) : entry;
    if ((entry.type === "file" || entry.type === "hardlink") && source?.digest !== undefined) {
      const bytes: HeldBytes = { digest: source.digest };
      if (source.md5 !== undefined) bytes.md5 = source.md5;
      this.#placed.set(landed, { name, bytes });
    } else this.#placed.delete(landed);
  }

  held(path: string | undefined): void {
    const from = path === undefined ? undefined : this.#placed.get(path);
    if (path === undefined || from === undefined) return;
    const paths = this.holds.get(from.name) ?? this.holds.set(from.name, new Map()).get(from.name)!;
    paths.set(path, from.bytes);
  }
}

/**
 * Some files of a package are not the package, so no dpkg database lists them; the distroless
 * convention does: status.d/<package> and status.d/<package>.md5sums for every package the image
 * now holds a file of, merged with what an earlier FILES line wrote there.
 */
async function writeStatusD(context: BuildContext, origin: FileOrigins): Promise<void> {
  const md5OfBlob = new Map<string, Promise<string>>();
  for (const [name, held] of [...origin.holds].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const md5s = new Map<string, string>();
    for (const [path, bytes] of held) {
      if (bytes.md5 !== undefined) md5s.set(path, bytes.md5);
      else {
        if (!md5OfBlob.has(bytes.digest))
          md5OfBlob.set(bytes.digest, fileMd5(context.blobPath(bytes.digest)));
        md5s.set(path, await md5OfBlob.get(bytes.digest)!);
      }
    }
    const earlier = (await context.readText(`${STATUS_D}/${name}.md5sums`)) ?? "";
    const files = statusDFiles(origin.controls.get(name)!, md5s, earlier);
    context.tree.mkdirp(STATUS_D);
    await writeText(context, files.stanzaPath, files.stanza);
    await writeText(context, files.md5sumsPath, files.md5sums);
  }
}

/**
 * The MD5 of a stored file, read a piece at a time: the .deb reader makes MD5s only where the dpkg
 * database needs them, and status.d lists the held files' own.
 */
async function fileMd5(file: string): Promise<string> {
  const hash = newHash("md5");
  for await (const chunk of process.getBuiltinModule("node:fs").createReadStream(file)) hash.update(chunk);
  return hash.digest("hex");
}

/** One package entry into a tree, its parents through the tree's symlinks; returns where it landed. */
function place(tree: Tree, entry: DebEntry, byPath: ReadonlyMap<string, DebEntry>): string {
  const path = `/${entry.path}`;
  const owner = { uid: entry.uid, gid: entry.gid };
  if (entry.type === "dir") {
    // A symlink in the way is followed even when it leads nowhere yet: the
    // merged-/usr link /bin → usr/bin, made before /usr/bin exists, stays a
    // link and the package's ./bin/ becomes /usr/bin.
    const at = tree.walk(path, { followLast: true, create: true }).path!;
    const node = tree.get(at);
    // An existing directory keeps its mode and owner, as dpkg leaves it.
    if (node === undefined) tree.set(at, { type: "dir", mode: entry.mode, ...owner });
    else tree.mkdirp(at);
    return at;
  }
  const where = tree.placement(path);
  if (entry.type === "symlink")
    tree.set(where, { type: "symlink", mode: 0o777, ...owner, target: entry.target! });
  else {
    // A hard link becomes a second file with the same bytes: one blob, two paths.
    const source = entry.type === "hardlink" ? (byPath.get(entry.target!) ?? entry) : entry;
    if (source.digest !== undefined) {
      const content = { digest: source.digest, size: source.size ?? 0 };
      tree.set(where, { type: "file", mode: entry.mode, ...owner, content });
    }
  }
  return where;
}

/**
 * Copy `path` from one tree into another: every symlink met on the way (those the
 * image already has as they are stay untouched), then what it leads to.
 */
function copyPath(from: Tree, to: Tree, path: string): void {
  for (const link of from.linksOn(path)) copyNode(from, to, link);
  const resolved = from.resolve(path);
  if (resolved !== undefined && from.get(resolved)?.type === "file") copyNode(from, to, resolved);
}

function copyNode(from: Tree, to: Tree, path: string): void {
  const node = from.get(path)!;
  const where = to.placement(path);
  if (!sameNode(to.get(where), node)) to.set(where, node);
}

function sameNode(a: TreeNode | undefined, b: TreeNode): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

async function writeText(context: BuildContext, path: string, text: string): Promise<void> {
  placeText(context, path, await context.content(Buffer.from(text)));
}

function placeText(context: BuildContext, path: string, content: Content): void {
  context.tree.set(context.tree.placement(path), { type: "file", mode: 0o644, uid: 0, gid: 0, content });
}

function notInPackages(
  path: string,
  names: readonly string[],
  span: Span,
  near: string | undefined,
): StepError {
  return new StepError(
    "NIFTY605",
    span,
    `${path} is in none of ${names.join(", ")}`,
    near ? `did you mean ${near}?` : "`dpkg -L <package>` lists a package's files",
  );
}
