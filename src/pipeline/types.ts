// What the build takes and gives back: the library's interface to the CLI.
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { ImageConfig } from "../image/config.ts";
import type { Format } from "./outputs.ts";
import type { Limits } from "../core/limits.ts";
import type { Platform } from "../image/platform.ts";
import type { HostInput, HostInputs } from "../core/host-inputs.ts";
import type { AssembledEntry } from "../cache/assembled.ts";

export interface FetchProgressEvent {
  name: string;
  url: string;
  received: number;
  total?: number;
}

export type BuildEvent =
  | { type: "step"; index: number; total: number; text: string; reused: boolean; ms: number }
  | { type: "fetched"; name: string; digest: string; size: number; url?: string; fromCache: boolean }
  | { type: "fetch-progress"; progress: FetchProgressEvent }
  /**
   * `wrote`: the build changed a file beside the recipe (its lock); `warning`: a warning said as a
   * note (lock and outdated print no diagnostics). Both are said even with --quiet.
   */
  | { type: "note"; message: string; wrote?: true; warning?: true };

export interface BuildOptions {
  /** Absolute path of the recipe: the library never resolves against the process's working directory. */
  recipePath: string;
  /** How messages and build.json name the recipe (the CLI: relative to its working directory). Default: recipePath. */
  shownPath?: string;
  /** The recipe's text when it is not read from recipePath (`niftyc build -` reads standard input). */
  recipeText?: string;
  args?: ReadonlyMap<string, string>;
  secrets?: ReadonlyMap<string, Buffer>;
  /**
   * For each secret read from a file, that file's identity (device, inode,
   * size, mtime, ctime, path; never its content): an unchanged file lets a
   * rebuild reuse the step-key input derived from it (src/pipeline/secret-stamps.ts).
   */
  secretStamps?: ReadonlyMap<string, string>;
  /** SOURCE_DATE_EPOCH, validated by the caller. */
  epoch: number;
  /** The one platform this build makes an image for (default linux/amd64); see buildPlatforms for several. */
  platform?: Platform;
  /** Every platform --platform asked for, `platform` first: buildPlatforms makes one image of each. */
  platforms?: readonly Platform[];
  /** Absolute path of the content store. */
  cacheDir: string;
  /** Absolute output directory for a recipe of this name (the CLI: --out, or out/<name>). */
  outDir: (recipeName: string) => string;
  offline?: boolean;
  /** Refuse to write or change the recipe's lockfile (CI). */
  locked?: boolean;
  /** The current time, read once by the caller: only checked against an archive's Valid-Until, never written anywhere. */
  now: Date;
  /** Mirror URLs per scheme; loaded only when a download is needed. */
  mirrors: () => Promise<Record<string, string[]>>;
  /** The archive names `--mirror NAME=URL` gave (not NIFTY_MIRROR_*): one the recipe names no archive by is NIFTY634. */
  mirrorNames?: readonly string[];
  formats?: readonly Format[];
  strict?: boolean;
  /**
   * A world-writable setuid or setgid file in the image is an error (NIFTY233) unless this is set
   * (--allow-writable-setuid). It joins the key of the checked tarballs only when set, so a build
   * without it checks a tree that one with it let through.
   */
  allowWritableSetuid?: boolean;
  /** --allow-system-binds: a BIND of the host's / or a system directory is let through (NIFTY025). */
  allowSystemBinds?: boolean;
  fetchTimeoutMs?: number;
  /** How much an archive or download may bring (--limit); default DEFAULT_LIMITS. */
  limits?: Limits;
  onEvent?: (event: BuildEvent) => void;
  /** Told every file the build reads from the host (recipe, lock, COPY sources) as it was when read. */
  hostInputs?: HostInputs;
}

export interface StepRecord {
  index: number;
  line: number;
  instruction: string;
  key: string;
  reused: boolean;
  ms: number;
}

/** One named stage of a build and its wall time (what --json reports; never part of an artifact). */
export interface StageTime {
  name: string;
  ms: number;
}

export interface BuildResult {
  digest: string;
  outDir: string;
  rootfs: string;
  outputs: Record<string, string>;
  steps: StepRecord[];
  stages: StageTime[];
  reproducible: boolean;
  upToDate: boolean;
  warnings: Diagnostic[];
  config: ImageConfig;
  /** The blobs the steps need (FETCH downloads, locked .debs, every file's bytes; not tarballs or outputs), sorted: what --cache-to shares. Some may be absent from the store. */
  used: string[];
  /**
   * With hostInputs in the options and reproducible outputs: what a later run needs to tell that
   * nothing changed since (src/cli/build-stamp.ts). The use record this build found fresh or
   * refreshed (what keeps the blobs from gc), and the output directory's files: as this build
   * published them, or as they were before it found them up to date.
   */
  recall?: {
    useRecord: string;
    outputs: HostInput[];
    /** A multi-platform build's: every other platform's use record (src/pipeline/platforms.ts). */
    otherUseRecords?: string[];
    restore?: OutputsRestore;
  };
}

/**
 * What restores the output directory as a warm build of the same command writes it, without
 * loading the compiler (src/cli/build-restore.ts): given only when every output file is a store
 * blob (the `assembled` record) and every step's notes are known. Its blobs are those the
 * recall's use record names, which a warm build refreshes.
 */
export interface OutputsRestore {
  /** Every entry of the output directory but build.json. */
  entries: AssembledEntry[];
  /** Each file's blob in the store, and its identity when this build saw it (blobIdentityOf). */
  blobs: Array<{ digest: string; path: string; identity: string }>;
  /** Files beside the output directory a warm build would leave as they are (the secret stamps), as they were. */
  beside: HostInput[];
  /** build.json as a warm build writes it. */
  buildJson: string;
  /** Each step's notes, which a warm build says again before the step's line. */
  stepNotes: string[][];
}
