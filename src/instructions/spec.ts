// The contract every instruction module fulfils: its syntax and example (for
// docs and errors), its check from words to a typed form, and its effect on
// the image. The checker and the builder only ever go through this table.
import type { Span } from "../core/source.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import type { Scope, Value } from "./scope.ts";
import type { Tree, TreeNode } from "../image/tree.ts";
import type { BindSpec, InitKind, PortSpec } from "../image/config.ts";
import type { SuiteRef } from "../debian/types.ts";
import type { LockRequest } from "../debian/lockfile.ts";
import type { InstructionKeyword } from "../../grammar/keywords.ts";
import type { BuildContext } from "./context.ts";
import type { SbomInput } from "../emit/sbom.ts";

/** An instruction after variable substitution, before its own checks. */
export interface Expanded {
  keyword: string;
  keywordSpan: Span;
  span: Span;
  args: Value[];
  heredocs: Array<{ text: string; span: Span; markerSpan: Span }>;
  /** Where the line's check records each word it took as an option word (MODE, RO, TTY …): fmt upper-cases them. */
  optionWords?: Span[];
}

export interface Account {
  id: number;
  span: Span;
  /** root exists before any line declares it; one USER/GROUP root may redefine it. */
  implicit?: boolean;
}

/** What the instructions so far have declared: checked against by later ones. */
export interface CheckModel {
  scope: Scope;
  /** Paths earlier instructions provide (file contents are placeholders). */
  tree: Tree;
  /** Directories that received every applet of a multicall binary (names known only at build). */
  appletDirs: Set<string>;
  users: Map<string, Account & { gid: number }>;
  groups: Map<string, Account>;
  /** ARCHIVE names declared so far, with where. */
  archives: Map<string, Span>;
  /** An ARCHIVE line had errors: a PACKAGE line is not also told there is no archive. */
  archiveFailed: boolean;
  /** A whole PACKAGE came before: its files are known only at build time, so "provided" checks trust it. */
  opaquePackages: boolean;
  /**
   * The text of a file the recipe wrote (FILE, COPY), by its node in `tree`, for checks that read
   * one (a unit's [Install]): read when asked; undefined when it cannot be read.
   */
  fileTexts: WeakMap<TreeNode, () => string | undefined>;
  /** Whether root may log in with a password (the last USER root line decides). */
  rootPasswordLogin: boolean;
  /** Absolute directory of the recipe: COPY sources are relative to it and may not leave it. */
  recipeDir: string;
  /** --allow-system-binds: BIND may name the host's / and system directories (NIFTY025). */
  allowSystemBinds: boolean;
  /** --allow-writable-setuid: a MODE may make a setuid or setgid file every user may write (NIFTY233). */
  allowWritableSetuid: boolean;
  /** What a host path is (COPY sources), following symlinks; undefined when missing. */
  hostKind(hostPath: string): "file" | "dir" | "other" | "unreadable" | undefined;
  /** Everything under a host directory (COPY of a directory), paths relative to it with "/". */
  hostEntries(hostDir: string): HostDirEntry[];
  /** A small host file's text (COPY sources), or undefined when it is large or cannot be read. */
  hostText(hostPath: string): string | undefined;
}

export type HostDirEntry =
  | { relative: string; kind: "dir" | "file" | "other" }
  | { relative: string; kind: "symlink"; target: string };

/** The kinds of name a recipe declares and refers to elsewhere. */
export type NameKind = "user" | "group" | "archive";

export interface Typed {
  kind: InstructionKeyword;
  span: Span;
  /** The line's MODE word, where it has one: a check of the mode of the files it wrote points there. */
  modeSpan?: Span;
}

/** The run-time settings instructions contribute to, before niftyc adds what it derives from the tree. */
export interface ConfigDraft {
  env: Map<string, string>;
  labels: Map<string, string>;
  hostname?: string;
  exposedPorts: PortSpec[];
  binds: BindSpec[];
  stopSignal?: { name: string; number: number };
}

/** A Debian archive an ARCHIVE line declares: where PACKAGE lines resolve. */
export interface ArchiveDecl {
  name: string;
  suites: SuiteRef[];
  url?: string;
  keyring?: string;
  span: Span;
}

/** What a PACKAGE line asks for: resolved, with every other line's, into the lock. */
export interface PackageAsk {
  requests: LockRequest[];
  span: Span;
  /** Each request's word, by request text (lockRequestText). */
  requestSpan?: Record<string, Span>;
}

/** A secret a step reads; the build refuses to start without it. */
export interface SecretUse {
  id: string;
  span: Span;
  /** The step can do without it (the key seed). */
  optional?: boolean;
  /** Fewer bytes than this is a mistake (an empty password file, a seed too short to be one). */
  minBytes: number;
  /** More bytes than this is refused (a password's crypt hash takes time quadratic in its length). */
  maxBytes?: number;
  /** What a secret of the right length is, for the hint. */
  hint: string;
}

/** The SBOM's inputs that instructions name, gathered over the recipe. */
export interface SbomInputs {
  fetches: SbomInput["fetches"];
  /** An archive's URL by its name, where the recipe gives one. */
  archiveUrls: Map<string, string>;
}

/** Where a file of the image came from, as the SBOM relates it. */
export type SbomOrigin = SbomInput["files"][number]["from"];

/** The lock's package that shipped a file with these bytes at (or near) this path. */
export type PackageOfFile = (file: { path: string; digest: string }) => SbomOrigin | undefined;

/** What an instruction tells the SBOM: the inputs it names, and where a file it wrote last came from. */
export interface SbomPart<T> {
  inputs?(typed: T, into: SbomInputs): void;
  origin?(typed: T, file: { path: string; digest: string }, packageOf: PackageOfFile): SbomOrigin | undefined;
}

export interface InstructionSpec<T extends Typed> {
  keyword: InstructionKeyword;
  summary: string;
  /** Usage lines, e.g. "DIR <path>... [MODE <octal>] [OWNER <user>:<group>]". */
  syntax: readonly string[];
  example: string;
  /** Whether the instruction reads its content from a heredoc (`<<EOF`). */
  heredoc?: boolean;
  /**
   * What an editor makes of its words (niftyc lsp): "variables", each `NAME[=…]` declares a
   * variable; "archive", an archive's name then its suites; "packages", Debian package names;
   * "stopsignal", it sets the stop signal (an editor offers to add the line where it is missing).
   */
  editor?: "variables" | "archive" | "packages" | "stopsignal";
  /**
   * The names it declares and uses, for an editor's definitions and references (niftyc lsp):
   * `declares`, the kind of name its first word is; `uses`, for an option word, how its value
   * names some ("owner": `<user>:<group>`; "groups": `<group>,...`).
   */
  names?: { declares?: NameKind; uses?: Readonly<Record<string, "owner" | "groups">> };
  /** The init whose configuration it writes (INITTAB: BusyBox's; SERVICE: systemd's units), for an editor. */
  init?: Exclude<InitKind, "other">;
  /**
   * Which layer the paths it writes go to: "base" for fetched binaries and
   * their links (shared between recipes that fetch the same files), else the rest.
   */
  layer?: "base";
  /** Words → typed form; reports problems, updates the model; undefined when unusable. */
  check(instruction: Expanded, report: Reporter, model: CheckModel): T | undefined;
  /** Checks that need every line of the recipe, run after each line's own check. */
  checkWhole?(typed: T, report: Reporter, model: CheckModel): void;
  /** Its effect on the image's files. */
  apply?(typed: T, context: BuildContext): Promise<void>;
  /** Its part of the run-time settings (environment, ports, stop signal …). */
  configure?(typed: T, config: ConfigDraft): void;
  /** Checks on the finished image, before anything is written. */
  verify?(typed: T, tree: Tree, report: Reporter): void;
  /** Secrets the step reads: checked before the build starts. */
  secrets?(typed: T): SecretUse[];
  /** The archive it declares (ARCHIVE). */
  archive?(typed: T): ArchiveDecl;
  /** The packages it asks for (PACKAGE). */
  packages?(typed: T): PackageAsk;
  /** What build.json lists as the step's external inputs (pinned downloads). */
  inputs?(typed: T): Array<Record<string, unknown>>;
  /**
   * Digests of what the step reads besides its own text (COPY sources, secret
   * derivations): they join its cache key. Never a secret's value.
   */
  keyInputs?(typed: T, context: BuildContext): Promise<string[]>;
  /** False when the step's result must never be reused (random host keys). */
  cacheable?(typed: T, context: BuildContext): boolean;
  /** Its part of the SBOM. */
  sbom?: SbomPart<T>;
}
