// The dpkg database of an image whose packages niftyc installed whole (their
// files unpacked, no maintainer script run), written as dpkg itself writes
// it, so dpkg-query, dpkg -L, dpkg --verify and later dpkg runs inside the
// image see those packages as installed. Pure: packages in, files out.
//
// What dpkg writes (checked against dpkg 1.21 by test/debian/dpkg-db.test.ts,
// which installs the same packages with the real dpkg and compares):
//   var/lib/dpkg/status            one stanza per package, sorted by name then
//                                  architecture, Status: install ok installed,
//                                  known fields in dpkg's order, then the
//                                  package's other fields in their order;
//   var/lib/dpkg/info/P.list       "/." then every path, in archive order;
//   var/lib/dpkg/info/P.md5sums    as shipped, or made from the files' MD5s;
//   var/lib/dpkg/info/P.conffiles  as shipped, when the package has conffiles;
//   var/lib/dpkg/info/format       "1": the multiarch layout, where P is
//                                  "name:arch" for Multi-Arch: same packages;
//   var/lib/dpkg/available, triggers/Unincorp: empty; updates/: a directory.
import { NiftyError } from "../diagnostics/errors.ts";
import type { DebContents } from "./deb.ts";
import { fieldValue, formatStanza, parseStanzas } from "./fields.ts";
import type { Field } from "./fields.ts";

/** What the database needs to know of one installed package. */
export interface InstalledPackage {
  /** The control stanza from the .deb, in its order. */
  control: readonly Field[];
  /** Every path the package installed, relative (usr/bin/x), in its archive order. */
  paths: readonly string[];
  /** MD5 of each regular file and hard link, in archive order. */
  fileMd5s: readonly { path: string; md5: string }[];
  /** Its md5sums as shipped, when it had one. */
  md5sumsText?: string;
  /** Its conffiles as shipped, and each one's MD5 as installed. */
  conffilesText?: string;
  conffiles: readonly { path: string; md5: string; flags: readonly string[] }[];
}

export type DpkgDbEntry = { path: string; type: "dir" } | { path: string; type: "file"; content: string };

export const ADMIN_DIR = "/var/lib/dpkg";

/** The fields dpkg knows, in the order it writes them (lib/dpkg/parse.c fieldinfos). */
const DPKG_FIELD_ORDER = [
  "Package",
  "Essential",
  "Protected",
  "Status",
  "Priority",
  "Section",
  "Installed-Size",
  "Origin",
  "Maintainer",
  "Bugs",
  "Architecture",
  "Multi-Arch",
  "Source",
  "Version",
  "Config-Version",
  "Replaces",
  "Provides",
  "Depends",
  "Pre-Depends",
  "Recommends",
  "Suggests",
  "Breaks",
  "Conflicts",
  "Enhances",
  "Conffiles",
  "Description",
  "Triggers-Pending",
  "Triggers-Awaited",
] as const;
const KNOWN = new Map<string, string>(DPKG_FIELD_ORDER.map((f) => [f.toLowerCase(), f]));
/** Known fields dpkg keeps only in the available file, or never writes for an installed package. */
const NOT_IN_STATUS = new Set([
  "filename",
  "size",
  "md5sum",
  "msdos-filename",
  "status",
  "config-version",
  "conffiles",
  "triggers-pending",
  "triggers-awaited",
  "revision",
]);
/** Booleans dpkg writes only when yes. */
const BOOLEANS = new Set(["essential", "protected"]);
const RELATIONS = new Set([
  "replaces",
  "provides",
  "depends",
  "pre-depends",
  "recommends",
  "suggests",
  "breaks",
  "conflicts",
  "enhances",
]);

/** The parts of a read .deb the database needs. */
export function installedFromDeb(contents: DebContents): InstalledPackage {
  const md5ByPath = new Map<string, string>(
    contents.entries.flatMap((e) => (e.type === "file" && e.md5 ? [[`/${e.path}`, e.md5] as const] : [])),
  );
  const name = fieldValue(contents.control, "Package") ?? "?";
  const pkg: InstalledPackage = {
    control: contents.control,
    paths: contents.entries.map((e) => e.path),
    fileMd5s: contents.entries.flatMap((e) =>
      (e.type === "file" || e.type === "hardlink") && e.md5 ? [{ path: e.path, md5: e.md5 }] : [],
    ),
    conffiles: contents.conffiles.map((c) => {
      const md5 = md5ByPath.get(c.path);
      if (md5 === undefined)
        throw new NiftyError(
          "NIFTY627",
          `cannot install ${name}: its conffile ${c.path} is not a regular file in the package`,
          "the package is malformed; check its source",
        );
      return { path: c.path, md5, flags: c.flags };
    }),
  };
  if (contents.md5sumsText !== undefined) pkg.md5sumsText = contents.md5sumsText;
  if (contents.conffilesText !== undefined) pkg.conffilesText = contents.conffilesText;
  return pkg;
}

function required(pkg: InstalledPackage, field: string): string {
  const v = fieldValue(pkg.control, field);
  if (v === undefined || v === "")
    throw new NiftyError(
      "NIFTY627",
      `a package's control stanza has no ${field} field`,
      "the package is malformed; check its source",
    );
  return v;
}

/** The name dpkg files a package's info under: name, or name:arch for Multi-Arch: same. */
export function infoName(pkg: InstalledPackage): string {
  const name = required(pkg, "Package");
  const multiArch = fieldValue(pkg.control, "Multi-Arch")?.toLowerCase();
  return multiArch === "same" ? `${name}:${required(pkg, "Architecture")}` : name;
}

/** One package's stanza in /var/lib/dpkg/status. */
export function statusStanza(pkg: InstalledPackage): string {
  const fields: Field[] = [];
  const known = new Map<string, Field>();
  const others: Field[] = [];
  for (const f of pkg.control) {
    const lower = f.name.toLowerCase();
    if (NOT_IN_STATUS.has(lower)) continue;
    const canonical = KNOWN.get(lower);
    if (canonical === undefined) others.push(f);
    else if (BOOLEANS.has(lower)) {
      if (f.value.toLowerCase() === "yes") known.set(canonical, { name: canonical, value: "yes" });
    } else if (RELATIONS.has(lower))
      known.set(canonical, { name: canonical, value: formatRelations(f.value) });
    else known.set(canonical, { name: canonical, value: f.value });
  }
  known.set("Status", { name: "Status", value: "install ok installed" });
  if (pkg.conffiles.length > 0) {
    const lines = pkg.conffiles.map((c) => `\n ${c.path} ${c.md5}${c.flags.map((f) => ` ${f}`).join("")}`);
    known.set("Conffiles", { name: "Conffiles", value: lines.join("") });
  }
  for (const name of DPKG_FIELD_ORDER) {
    const f = known.get(name);
    if (f) fields.push(f);
  }
  return formatStanza([...fields, ...others]);
}

/**
 * A relation field as dpkg writes it back: "a (>= 1), b | c:any (<< 2)".
 * dpkg spells the obsolete `<` and `>` as `<=` and `>=`. A field this reader
 * does not follow is kept as it is.
 */
export function formatRelations(value: string): string {
  const flat = value.replace(/\s+/g, " ").trim();
  if (flat === "") return flat;
  const out: string[] = [];
  for (const group of flat.split(",")) {
    const alts: string[] = [];
    for (const alt of group.split("|")) {
      const m =
        /^\s*([a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?)\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([^\s()]+)\s*\))?\s*$/i.exec(
          alt,
        );
      if (!m) return flat;
      const op = m[2] === "<" ? "<=" : m[2] === ">" ? ">=" : m[2];
      alts.push(op ? `${m[1]} (${op} ${m[3]})` : m[1]!);
    }
    out.push(alts.join(" | "));
  }
  return out.join(", ");
}

/** The .list file: "/." then "/" + each path, in the package's archive order (what dpkg writes). */
export function listFile(paths: readonly string[]): string {
  return ["/.", ...paths.map((p) => `/${p}`)].join("\n") + "\n";
}

/** md5sums as shipped; else, as dpkg makes it, every regular file and hard link in archive order. */
export function md5sumsFile(pkg: InstalledPackage): string {
  if (pkg.md5sumsText !== undefined) return pkg.md5sumsText;
  return pkg.fileMd5s.map((f) => `${f.md5}  ${f.path}\n`).join("");
}

/**
 * Every directory and file of the dpkg database for these packages, sorted by
 * path (parents first). Two packages of one name and architecture are an error.
 */
export function dpkgDatabase(packages: readonly InstalledPackage[]): DpkgDbEntry[] {
  const sorted = [...packages].sort(
    (a, b) =>
      compare(required(a, "Package"), required(b, "Package")) ||
      compare(required(a, "Architecture"), required(b, "Architecture")),
  );
  const seen = new Set<string>();
  const files = new Map<string, string>();
  for (const pkg of sorted) {
    const id = `${required(pkg, "Package")}:${required(pkg, "Architecture")}`;
    if (seen.has(id))
      throw new NiftyError(
        "NIFTY628",
        `the package ${id} is installed twice`,
        "install one version of each package",
      );
    seen.add(id);
    const info = `${ADMIN_DIR}/info/${infoName(pkg)}`;
    files.set(`${info}.list`, listFile(pkg.paths));
    const md5sums = md5sumsFile(pkg);
    if (md5sums !== "") files.set(`${info}.md5sums`, md5sums);
    if (pkg.conffilesText !== undefined && pkg.conffiles.length > 0)
      files.set(`${info}.conffiles`, pkg.conffilesText);
  }
  files.set(`${ADMIN_DIR}/status`, sorted.map((p) => `${statusStanza(p)}\n`).join(""));
  files.set(`${ADMIN_DIR}/available`, "");
  files.set(`${ADMIN_DIR}/info/format`, "1\n");
  files.set(`${ADMIN_DIR}/triggers/Unincorp`, "");
  const dirs = [
    "/var",
    "/var/lib",
    ADMIN_DIR,
    `${ADMIN_DIR}/info`,
    `${ADMIN_DIR}/triggers`,
    `${ADMIN_DIR}/updates`,
  ];
  const entries: DpkgDbEntry[] = [
    ...dirs.map((path) => ({ path, type: "dir" as const })),
    ...[...files].map(([path, content]) => ({ path, type: "file" as const, content })),
  ];
  return entries.sort((a, b) => compare(a.path, b.path));
}

/**
 * The distroless convention, for an image that holds only some files of its packages and so no
 * dpkg database: `status.d/<package>`, the package's stanza as in status, and
 * `status.d/<package>.md5sums`, the MD5 of each file of it the image holds (relative paths,
 * sorted), which scanners (syft, trivy) read as installed packages and their files.
 */
export const STATUS_D = `${ADMIN_DIR}/status.d`;

/** The status.d files of one package: its stanza, and md5sums merged with an earlier one (by path). */
export function statusDFiles(
  control: readonly Field[],
  md5s: ReadonlyMap<string, string>,
  earlierMd5sums = "",
): { stanzaPath: string; stanza: string; md5sumsPath: string; md5sums: string } {
  const pkg: InstalledPackage = { control, paths: [], fileMd5s: [], conffiles: [] };
  const name = required(pkg, "Package");
  // The name becomes a file name: only what Debian Policy allows (§5.6.1), never "/" or "..".
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name) || name.includes("..")) {
    const message = `a package's control stanza names it ${JSON.stringify(name)}`;
    throw new NiftyError("NIFTY627", message, "the package is malformed; check its source");
  }
  const lines = new Map<string, string>();
  for (const line of earlierMd5sums.split("\n")) {
    const m = /^([0-9a-f]{32}) {2}(.+)$/.exec(line);
    if (m) lines.set(m[2]!, m[1]!);
  }
  for (const [path, md5] of md5s) lines.set(path.replace(/^\/+/, ""), md5);
  const sorted = [...lines].sort(([a], [b]) => compare(a, b));
  const md5sums = sorted.map(([path, md5]) => `${md5}  ${path}\n`).join("");
  const stanza = `${statusStanza(pkg)}\n`;
  return { stanzaPath: `${STATUS_D}/${name}`, stanza, md5sumsPath: `${STATUS_D}/${name}.md5sums`, md5sums };
}

/** A package as the image's dpkg database names it. */
export interface InstalledName {
  name: string;
  architecture: string;
}

/**
 * The packages an image's dpkg database says it holds, read back as the scanners read it: every
 * stanza of `status` and of each `status.d/<package>` (their texts, in any order) whose Status is
 * `install ok installed`; a text that is no deb822 (a recipe's own file there) names none. Sorted by name, then architecture, each once. The SBOM claims these and
 * no others, so it never says the image holds a package the database does not.
 */
export function installedNames(texts: Iterable<{ path: string; text: string }>): InstalledName[] {
  const found = new Map<string, InstalledName>();
  for (const { path, text } of texts)
    for (const stanza of stanzasOrNone(text, path)) {
      const name = fieldValue(stanza, "Package");
      const architecture = fieldValue(stanza, "Architecture");
      if (name === undefined || architecture === undefined) continue;
      if (fieldValue(stanza, "Status")?.split(/\s+/).join(" ") !== "install ok installed") continue;
      found.set(`${name}:${architecture}`, { name, architecture });
    }
  return [...found].sort(([a], [b]) => compare(a, b)).map(([, p]) => p);
}

function stanzasOrNone(text: string, path: string): ReturnType<typeof parseStanzas> {
  try {
    return parseStanzas(text, path);
  } catch {
    return [];
  }
}

/** Bytewise order, as dpkg's strcmp. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
