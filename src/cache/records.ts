// Every kind of JSON record kept in the store, with its format version. A
// record written in another format reads as a miss, so changing a shape means
// bumping its number here, and nowhere else.
export const RECORD_FORMATS = {
  /** Checked recipes, keyed by text, place and --arg values (src/pipeline/compile.ts). */
  recipes: 3,
  /** One step's tree changes, keyed by the step's cache key. */
  steps: 3,
  /** The layer tarballs (and their gzip), image config (without the recipe's name) and used blobs of one tree and epoch. */
  outputs: 4,
  /** The layer tarballs (and their gzip) of a tree's content and epoch, whatever metadata the recipe adds (src/pipeline/layers.ts tarballsKey). */
  tarballs: 1,
  /** The assembled output files of one key (the recipe's name, formats, tree, step chain, SBOM inputs; a bundle's directory 0700). */
  assembled: 5,
  /** One archive member taken out of a download, keyed by the archive and member. */
  extracts: 2,
  /** The applet names of a multicall binary, keyed by its digest. */
  applets: 2,
  /** Where a downloaded blob came from: the recipe-level sources it was fetched for. */
  origins: 1,
  /** A suite's parsed Packages index (the compact form of src/debian/package-index.ts), keyed by the index's sha256. */
  "debian-index": 2,
  /** The entries and control data of a .deb, keyed by its sha256 (2: MD5 only of conffiles, or of every file without md5sums). */
  "deb-contents": 2,
  /** Which Packages index a verified InRelease names, keyed by the InRelease's sha256, component and architecture. */
  "debian-release-index": 1,
  /** What a mirror sent with an InRelease (ETag, Last-Modified) and the digest of those bytes, keyed by the URL's sha256: asked for conditionally next time. */
  "inrelease-validators": 1,
  /** A .deb's control stanza (what the package says it is), keyed by its sha256. */
  "deb-control": 1,
  /** A lock found to say what its packages are, keyed by its text and the signed indices it was checked against. */
  "debian-lock-checked": 1,
} as const;

export type RecordKind = keyof typeof RECORD_FORMATS;

/** What a record file holds: the format it was written in, then the record. */
export interface RecordFile<T> {
  format: number;
  record: T;
}

/**
 * How old a use record (uses/, which blobs a build used and when) may be before
 * a build that repeats it writes it again. gc counts in days; the up-to-date
 * short cut (src/cli/build-stamp.ts) answers only while its build's record is fresher.
 */
export const USE_REFRESH_MS = 60 * 60 * 1000;
