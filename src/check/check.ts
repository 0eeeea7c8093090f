// Syntax tree → typed, checked recipe. Never throws for a recipe's mistakes:
// every problem becomes a diagnostic and checking carries on with the next line.
import { accessSync, constants, readFileSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { basename, dirname, join, posix, resolve, sep } from "node:path";
import type { SyntaxTree } from "../../grammar/syntax.ts";
import { hasErrors, type Diagnostic } from "../diagnostics/diagnostic.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { Tree, TreeError } from "../image/tree.ts";
import { INSTRUCTIONS, isKeyword, specFor, type Instruction } from "../instructions/index.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { INSTRUCTION_KEYWORDS, type InstructionKeyword } from "../../grammar/keywords.ts";
import type { CheckModel, Expanded, HostDirEntry } from "../instructions/spec.ts";
import { Reporter, type Omitted } from "../diagnostics/reporter.ts";
import { Scope } from "../instructions/scope.ts";
import { expandParts, expandWord } from "./substitute.ts";
import { checkValue } from "./values.ts";
import { START_OF_FILE, type Span } from "../core/source.ts";
import { EVERY_NAME_USE, recipeNameProblem, type NameUses } from "./recipe-name.ts";

export interface CheckOptions {
  /** --arg NAME=VALUE */
  args?: ReadonlyMap<string, string>;
  /** Warnings count as errors. */
  strict?: boolean;
  /** --allow-system-binds: BIND may name the host's / and system directories (NIFTY025). */
  allowSystemBinds?: boolean;
  /** --allow-writable-setuid: a MODE may make a setuid or setgid file every user may write (NIFTY233). */
  allowWritableSetuid?: boolean;
  /** What the outputs need the recipe's name to be (NIFTY809); default: what a default build makes. */
  nameUses?: NameUses;
  hostKind?: CheckModel["hostKind"];
  hostEntries?: CheckModel["hostEntries"];
  hostText?: CheckModel["hostText"];
  /** Absolute directory COPY sources are relative to; default: the source path's directory. */
  recipeDir?: string;
  /** Filled with the span of each word a line's check takes as an option word (fmt upper-cases them). */
  optionWords?: Span[];
}

export interface CheckResult {
  recipe?: Recipe;
  /** The first diagnostics found, at most MAX_DIAGNOSTICS (src/diagnostics/reporter.ts). */
  diagnostics: Diagnostic[];
  /** How many more were found and only counted. */
  omitted?: Omitted;
  /** The syntax tree it was checked from (checkSource gives it, for editors). */
  tree?: SyntaxTree;
}

/** All the values of a recipe after substitution, in characters: what checking may hold in memory. */
export const MAX_RECIPE_EXPANSION = 64 << 20;

const HEREDOC_KEYWORDS = INSTRUCTION_KEYWORDS.filter((k) => INSTRUCTIONS[k].heredoc === true);

function hostEntries(dir: string): HostDirEntry[] {
  let listed;
  try {
    listed = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return []; // changed while listed: the build reads the source again and tells
  }
  return listed.map((entry) => {
    const relative = posix.join(entry.parentPath.slice(dir.length).split(sep).join("/"), entry.name);
    if (entry.isDirectory()) return { relative, kind: "dir" as const };
    if (entry.isSymbolicLink()) {
      // Replaced since it was listed: the build reads it again, through descriptors, and says so.
      let target: string;
      try {
        target = readlinkSync(join(entry.parentPath, entry.name));
      } catch {
        return { relative, kind: "file" as const };
      }
      return { relative, kind: "symlink" as const, target };
    }
    return { relative, kind: entry.isFile() ? ("file" as const) : ("other" as const) };
  });
}

/** Big enough for any unit file; a larger file is not read at check. */
const MAX_CHECKED_TEXT = 1 << 20;

export function hostText(path: string): string | undefined {
  try {
    // Only a regular file: reading a FIFO or a device would wait forever.
    const info = statSync(path);
    if (!info.isFile() || info.size > MAX_CHECKED_TEXT) return undefined;
    return readFileSync(path, "utf8");
  } catch {
    return undefined; // the build reads it again and says what is wrong
  }
}

function hostKind(path: string): "file" | "dir" | "other" | "unreadable" | undefined {
  let info;
  try {
    info = statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    // A directory on the way that this user may not enter; else a name no file can have (a NUL byte, too long).
    return (error as NodeJS.ErrnoException).code === "EACCES" ? "unreadable" : undefined;
  }
  if (info === undefined) return undefined;
  if (!info.isDirectory() && !info.isFile()) return "other";
  try {
    accessSync(path, info.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK);
  } catch {
    return "unreadable";
  }
  return info.isDirectory() ? "dir" : "file";
}

export function recipeName(path: string): string {
  return (
    basename(path)
      .replace(/\.nifty$/i, "")
      .replace(/^Niftyfile$/i, "nifty") || "nifty"
  );
}

export function checkTree(tree: SyntaxTree, options: CheckOptions = {}): CheckResult {
  const report = new Reporter(tree.source);
  const dir = options.recipeDir ?? resolve(dirname(tree.source.path));
  const model = startModel(tree, options, dir);
  const instructions = checkLines(tree, report, model, options.optionWords);
  checkWholeRecipe(tree, instructions, report, model);
  warnUndeclaredArgs(tree, options, report, model);
  return checkResult(tree, options, report, dir, instructions);
}

/** What checking knows before the first line: the --args, an empty tree, and root's user and group. */
function startModel(tree: SyntaxTree, options: CheckOptions, dir: string): CheckModel {
  const model: CheckModel = {
    scope: new Scope(options.args ?? new Map()),
    tree: new Tree(),
    appletDirs: new Set(),
    users: new Map(),
    groups: new Map(),
    archives: new Map(),
    opaquePackages: false,
    fileTexts: new WeakMap(),
    archiveFailed: false,
    rootPasswordLogin: false,
    recipeDir: dir,
    allowSystemBinds: options.allowSystemBinds === true,
    allowWritableSetuid: options.allowWritableSetuid === true,
    hostKind: options.hostKind ?? hostKind,
    hostEntries: options.hostEntries ?? hostEntries,
    hostText: options.hostText ?? hostText,
  };
  const none = tree.instructions[0]?.keywordSpan ?? START_OF_FILE;
  model.users.set("root", { id: 0, gid: 0, span: none, implicit: true });
  model.groups.set("root", { id: 0, span: none, implicit: true });
  return model;
}

type InstructionNode = SyntaxTree["instructions"][number];

/** Each line in order: its keyword, its values substituted, then its instruction's own checks. */
function checkLines(
  tree: SyntaxTree,
  report: Reporter,
  model: CheckModel,
  optionWords: Span[] | undefined,
): Instruction[] {
  const instructions: Instruction[] = [];
  let expandedChars = 0;
  for (const node of tree.instructions) {
    const keyword = node.keyword.toUpperCase();
    if (!isKeyword(keyword)) {
      reportUnknownInstruction(node, report);
      continue;
    }
    const expanded = expandLine(node, keyword, report, model);
    if (optionWords) expanded.optionWords = optionWords;
    expandedChars += expandedLength(expanded);
    if (expandedChars > MAX_RECIPE_EXPANSION) {
      reportTooLongExpansion(node, report);
      break;
    }
    if (INSTRUCTIONS[keyword].heredoc !== true && expanded.heredocs.length > 0) {
      reportUnwantedHeredoc(keyword, expanded, report);
      continue;
    }
    checkLine(node, keyword, expanded, instructions, report, model);
  }
  return instructions;
}

const BOOTS_INIT =
  "the container boots its init: INITTAB lines (BusyBox init) or SERVICE enable (systemd) say what it starts; `niftyc run <recipe> -- <command>` runs one command in it";

/** Dockerfile instructions a newcomer writes, and what does their work in a Niftyfile. */
const DOCKERFILE_ONLY: Record<string, string> = {
  RUN: "niftyc never runs commands while building: FILE, COPY, FETCH and PACKAGE put files in place, and DIR, SYMLINK, USER and GROUP do what RUN lines usually do; to run a program at boot, use INITTAB (BusyBox init) or a unit with SERVICE enable (systemd)",
  CMD: BOOTS_INIT,
  ENTRYPOINT: BOOTS_INIT,
  FROM: "a recipe starts from an empty tree: FETCH a static BusyBox, or ARCHIVE and PACKAGE for Debian packages",
  ADD: "COPY for files beside the recipe, FETCH for a URL (with its sha256 digest)",
  WORKDIR: "there is no working directory while building; DIR makes directories",
  VOLUME: "BIND mounts a host path into the container when it runs",
  MAINTAINER: "LABEL org.opencontainers.image.authors=…",
};

function reportUnknownInstruction(node: InstructionNode, report: Reporter): void {
  const hint = () => {
    const docker = DOCKERFILE_ONLY[node.keyword.toUpperCase()];
    if (docker !== undefined) return `${node.keyword.toUpperCase()} is a Dockerfile instruction: ${docker}`;
    const near = suggest(node.keyword, INSTRUCTION_KEYWORDS);
    return near ? `did you mean ${near}?` : `instructions: ${INSTRUCTION_KEYWORDS.join(", ")}`;
  };
  const replacement = () => suggest(node.keyword, INSTRUCTION_KEYWORDS);
  report.error(node.keywordSpan, "NIFTY010", `unknown instruction ${node.keyword}`, hint, replacement);
}

function expandLine(
  node: InstructionNode,
  keyword: InstructionKeyword,
  report: Reporter,
  model: CheckModel,
): Expanded {
  const declared =
    keyword === "ARG" || keyword === "ENV"
      ? new Set(node.args.flatMap((w) => /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(w.raw)?.[1] ?? []))
      : undefined;
  return {
    keyword,
    keywordSpan: node.keywordSpan,
    span: node.span,
    args: node.args.map((w) =>
      expandWord(w, model.scope, report, {
        ...(declared ? { sameLine: declared } : {}),
        literal: keyword === "INITTAB" ? "shell" : keyword === "USER" ? "hash" : "value",
      }),
    ),
    heredocs: node.heredocs.map((h) => ({
      text: expandParts(h.body, model.scope, report),
      span: h.span,
      markerSpan: h.markerSpan,
    })),
  };
}

/** The characters a line's values take after substitution. */
function expandedLength(expanded: Expanded): number {
  return (
    expanded.args.reduce((n, v) => n + v.text.length + v.shell.length, 0) +
    expanded.heredocs.reduce((n, h) => n + h.text.length, 0)
  );
}

function reportTooLongExpansion(node: InstructionNode, report: Reporter): void {
  report.error(
    node.span,
    "NIFTY024",
    `substitution makes the recipe's values longer than ${MAX_RECIPE_EXPANSION.toLocaleString("en-US")} characters in all`,
    "a large value used many times would take gigabytes; shorten the values (large content belongs in a file the recipe COPYs)",
  );
}

function reportUnwantedHeredoc(keyword: InstructionKeyword, expanded: Expanded, report: Reporter): void {
  report.error(
    expanded.heredocs[0]!.markerSpan,
    "NIFTY011",
    `${keyword} does not take a heredoc`,
    `only ${HEREDOC_KEYWORDS.join(", ")} ${HEREDOC_KEYWORDS.length === 1 ? "reads its" : "read their"} content from a heredoc`,
  );
}

/** One line's instruction checks, then its values' own; a typed instruction joins `instructions`. */
function checkLine(
  node: InstructionNode,
  keyword: InstructionKeyword,
  expanded: Expanded,
  instructions: Instruction[],
  report: Reporter,
  model: CheckModel,
): void {
  report.startLine();
  try {
    const typed = (
      INSTRUCTIONS[keyword] as {
        check: (i: Expanded, r: Reporter, m: CheckModel) => Instruction | undefined;
      }
    ).check(expanded, report, model);
    if (typed !== undefined) instructions.push(typed);
    // After the line's own checks, so a path keeps its own diagnostic (NIFTY038).
    const told = new Set(report.lineOffsets);
    for (const [i, value] of expanded.args.entries()) {
      if (!told.has(value.span.start.offset)) checkValue(node.args[i]!, value, model.scope, report);
    }
  } catch (error) {
    // A path that clashes with what earlier lines made (a symlink loop, a file
    // where a directory is needed) is the recipe's mistake, not a crash.
    if (!(error instanceof TreeError)) throw error;
    report.error(node.span, "NIFTY052", error.message);
  }
}

function checkWholeRecipe(
  tree: SyntaxTree,
  instructions: Instruction[],
  report: Reporter,
  model: CheckModel,
): void {
  try {
    checkWhole(instructions, report, model);
  } catch (error) {
    if (!(error instanceof TreeError)) throw error;
    report.error(tree.instructions.at(-1)!.span, "NIFTY052", error.message);
  }
}

/** NIFTY012: an --arg the recipe never declares. */
function warnUndeclaredArgs(
  tree: SyntaxTree,
  options: CheckOptions,
  report: Reporter,
  model: CheckModel,
): void {
  for (const name of options.args?.keys() ?? []) {
    if (!model.scope.args.has(name)) {
      const near = suggest(name, [...model.scope.args.keys()]);
      report.add({
        severity: "warning",
        code: "NIFTY012",
        message: `--arg ${name} is given but the recipe declares no ARG ${name}`,
        source: tree.source,
        ...(near ? { hint: `did you mean --arg ${near}=…?` } : {}),
      });
    }
  }
}

/** The diagnostics (all errors under --strict), and the recipe when none is an error. */
function checkResult(
  tree: SyntaxTree,
  options: CheckOptions,
  report: Reporter,
  dir: string,
  instructions: Instruction[],
): CheckResult {
  const name = recipeName(tree.source.path);
  const badName = recipeNameProblem(name, options.nameUses ?? EVERY_NAME_USE, tree.source);
  const found = badName === undefined ? report.diagnostics : [badName, ...report.diagnostics];
  const diagnostics = options.strict ? found.map((d) => ({ ...d, severity: "error" as const })) : found;
  const { errors, warnings } = report.omitted;
  const omitted = options.strict ? { errors: errors + warnings, warnings: 0 } : { errors, warnings };
  const failed = hasErrors(diagnostics) || omitted.errors > 0;
  return {
    diagnostics,
    omitted,
    ...(failed ? {} : { recipe: { name, path: tree.source.path, dir, instructions } }),
  };
}

/** Checks that need the whole recipe: each instruction's own, once every line is known. */
function checkWhole(instructions: Instruction[], report: Reporter, model: CheckModel): void {
  for (const ins of instructions) specFor(ins).checkWhole?.(ins, report, model);
  warnReplacedSettings(instructions, report);
}

/** Instructions that set one value of the image: a later line replaces an earlier one whole. */
const ONE_SETTING = new Set(["HOSTNAME", "STOPSIGNAL", "PLATFORM"]);

/** NIFTY307: an earlier line of a one-value instruction that a later line replaces. */
function warnReplacedSettings(instructions: Instruction[], report: Reporter): void {
  const last = new Map<string, Instruction>();
  for (const ins of instructions) if (ONE_SETTING.has(ins.kind)) last.set(ins.kind, ins);
  for (const ins of instructions) {
    const final = last.get(ins.kind);
    if (final === undefined || final === ins) continue;
    report.warn(
      ins.span,
      "NIFTY307",
      `this ${ins.kind} is replaced by the one on line ${final.span.start.line}`,
      `the image takes one ${ins.kind}, the last; drop this line, or the later one if this was meant`,
    );
  }
}

export { specFor };
