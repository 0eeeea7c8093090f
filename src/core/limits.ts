// How much an input may make niftyc read, write or hold: the documented
// defaults (docs/security.md) and the `--limit NAME=VALUE` spelling that
// raises them. A limit changes whether a build succeeds, never what it makes,
// so limits join no cache key.

export interface Limits {
  /** Bytes of one file taken out of an archive (FETCH … EXTRACT, a package's files). */
  memberBytes: number;
  /** Bytes of one download, whatever its Content-Length says. */
  downloadBytes: number;
  /** Characters of one archive entry's path or link target. */
  entryName: number;
  /** Entries of one archive. */
  entries: number;
  /** Bytes of a suite's InRelease, refused while downloading, before gpgv reads it. */
  inReleaseBytes: number;
  /** Bytes of a Packages index: its signed size, and its text once decompressed. */
  indexBytes: number;
}

const GiB = 1024 ** 3;

/**
 * The latest SOURCE_DATE_EPOCH: the largest mtime a tar header's 11 octal digits hold
 * (2242-03-16T12:56:31Z). Every file of the image carries it, so a later one would not be written.
 */
export const MAX_EPOCH = 0o77777777777;

export const DEFAULT_LIMITS: Readonly<Limits> = {
  memberBytes: 4 * GiB,
  downloadBytes: 8 * GiB,
  entryName: 4096,
  entries: 1_000_000,
  inReleaseBytes: 8 * 1024 ** 2,
  indexBytes: 256 * 1024 ** 2,
};

/** The names `--limit` takes, and whether the value is a size (with K, M, G, T suffixes) or a count. */
export const LIMIT_NAMES = {
  "member-size": { key: "memberBytes", size: true },
  "download-size": { key: "downloadBytes", size: true },
  "entry-name": { key: "entryName", size: false },
  entries: { key: "entries", size: false },
  "inrelease-size": { key: "inReleaseBytes", size: true },
  "index-size": { key: "indexBytes", size: true },
} as const satisfies Record<string, { key: keyof Limits; size: boolean }>;

export type LimitName = keyof typeof LIMIT_NAMES;

const SUFFIX: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 ** 4 };

/** `member-size=8G` → the limits with that one raised (or lowered); a string says what is wrong. */
export function withLimit(limits: Limits, spec: string): Limits | string {
  const eq = spec.indexOf("=");
  const name = spec.slice(0, eq === -1 ? spec.length : eq);
  const entry = (LIMIT_NAMES as Record<string, { key: keyof Limits; size: boolean } | undefined>)[name];
  if (entry === undefined || eq === -1)
    return `--limit takes NAME=VALUE with NAME one of ${Object.keys(LIMIT_NAMES).join(", ")}; got ${JSON.stringify(spec)}`;
  const m = (entry.size ? /^(\d+)([KMGT]?)i?B?$/i : /^(\d+)()$/).exec(spec.slice(eq + 1));
  const value = m ? Number(m[1]) * SUFFIX[m[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(value) || value <= 0)
    return `--limit ${name} takes ${entry.size ? "a size such as 8G or 512M" : "a whole number"}, got ${JSON.stringify(spec.slice(eq + 1))}`;
  return { ...limits, [entry.key]: value };
}

/** 4294967296 → "4 GiB": how a message shows a limit. */
export function showSize(bytes: number): string {
  for (const [unit, n] of [
    ["TiB", 1024 ** 4],
    ["GiB", GiB],
    ["MiB", 1024 ** 2],
    ["KiB", 1024],
  ] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} bytes`;
}
