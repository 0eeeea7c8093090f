// Syntax tree → typed, checked recipe. Never throws for a recipe's mistakes:
// every problem becomes a diagnostic and checking carries on with the next line.
import { statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { SyntaxTree } from "../../grammar/syntax.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { Tree, TreeError } from "../image/tree.ts";
import { INSTRUCTIONS, isKeyword, specFor, type Instruction } from "../instructions/index.ts";
import type { Recipe } from "../instructions/recipe.ts";
import { INSTRUCTION_KEYWORDS } from "../../grammar/keywords.ts";
import type { CheckModel, Expanded } from "../instructions/spec.ts";
import { KEY_DIR } from "../instructions/keygen.ts";
import { programOf, programPaths } from "../instructions/inittab.ts";
import { provides } from "../instructions/user.ts";
import { Reporter } from "../diagnostics/reporter.ts";
import { Scope } from "../instructions/scope.ts";
import { expandParts, expandWord } from "./substitute.ts";


export interface CheckOptions {
  /** --arg NAME=VALUE */
  args?: ReadonlyMap<string, string>;
  /** Warnings count as errors. */
  strict?: boolean;
  hostKind?: CheckModel["hostKind"];
}

export interface CheckResult {
  recipe?: Recipe;
  diagnostics: Diagnostic[];
}

function hostKind(path: string): "file" | "dir" | "other" | undefined {
  let info;
  try {
    info = statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined; // a name no file can have (a NUL byte, too long)
  }
  return info === undefined ? undefined : info.isDirectory() ? "dir" : info.isFile() ? "file" : "other";
}

export function recipeName(path: string): string {
  return basename(path).replace(/\.nifty$/i, "").replace(/^Niftyfile$/i, "nifty") || "nifty";
}

export function checkTree(tree: SyntaxTree, options: CheckOptions = {}): CheckResult {
  const report = new Reporter(tree.source);
  const dir = resolve(dirname(tree.source.path));
  const model: CheckModel = {
    scope: new Scope(options.args ?? new Map()),
    tree: new Tree(),
    appletDirs: new Set(),
    users: new Map(),
    groups: new Map(),
    recipeDir: dir,
    hostKind: options.hostKind ?? hostKind,
  };
  const none = tree.instructions[0]?.keywordSpan ?? { start: { offset: 0, line: 1, column: 1 }, end: { offset: 0, line: 1, column: 1 } };
  model.users.set("root", { id: 0, gid: 0, span: none, implicit: true });
  model.groups.set("root", { id: 0, span: none, implicit: true });

  const instructions: Instruction[] = [];
  for (const node of tree.instructions) {
    const keyword = node.keyword.toUpperCase();
    if (!isKeyword(keyword)) {
      const near = suggest(node.keyword, INSTRUCTION_KEYWORDS);
      report.error(node.keywordSpan, "NIFTY010", `unknown instruction ${node.keyword}`, near ? `did you mean ${near}?` : `instructions: ${INSTRUCTION_KEYWORDS.join(", ")}`);
      continue;
    }
    const expanded: Expanded = {
      keyword,
      keywordSpan: node.keywordSpan,
      span: node.span,
      args: node.args.map((w) => expandWord(w, model.scope, report)),
      heredocs: node.heredocs.map((h) => ({ text: expandParts(h.body, model.scope, report), span: h.span, markerSpan: h.markerSpan })),
    };
    if (keyword !== "FILE" && expanded.heredocs.length > 0) {
      report.error(expanded.heredocs[0]!.markerSpan, "NIFTY011", `${keyword} does not take a heredoc`, "only FILE reads its content from a heredoc");
      continue;
    }
    try {
      const typed = (INSTRUCTIONS[keyword] as { check: (i: Expanded, r: Reporter, m: CheckModel) => Instruction | undefined }).check(expanded, report, model);
      if (typed !== undefined) instructions.push(typed);
    } catch (error) {
      // A path that clashes with what earlier lines made (a symlink loop, a file
      // where a directory is needed) is the recipe's mistake, not a crash.
      if (!(error instanceof TreeError)) throw error;
      report.error(node.span, "NIFTY052", error.message);
    }
  }
  try {
    checkWhole(instructions, report, model);
  } catch (error) {
    if (!(error instanceof TreeError)) throw error;
    report.error(tree.instructions.at(-1)!.span, "NIFTY052", error.message);
  }

  for (const name of options.args?.keys() ?? []) {
    if (!model.scope.args.has(name)) {
      report.diagnostics.push({ severity: "warning", code: "NIFTY012", message: `--arg ${name} is given but the recipe declares no ARG ${name}`, source: tree.source });
    }
  }
  const diagnostics = options.strict ? report.diagnostics.map((d) => ({ ...d, severity: "error" as const })) : report.diagnostics;
  const failed = diagnostics.some((d) => d.severity === "error");
  return {
    diagnostics,
    ...(failed ? {} : { recipe: { name: recipeName(tree.source.path), path: tree.source.path, dir, instructions } }),
  };
}

/** Checks that need the whole recipe. */
function checkWhole(instructions: Instruction[], report: Reporter, model: CheckModel): void {
  for (const ins of instructions) {
    // Its sysinit line finds dropbearkey on init's PATH, as any inittab command.
    if (ins.kind === "KEYGEN" && ins.at === "boot" && !programPaths("dropbearkey").some((p) => provides(model, p))) {
      report.error(ins.span, "NIFTY013", "KEYGEN at boot needs dropbearkey in the image", `FETCH dropbearkey into /bin or /usr/bin, or use KEYGEN … AT build (keys in ${KEY_DIR} shared by every copy)`);
    }
  }
  const root = [...instructions].reverse().find((i) => i.kind === "USER" && i.name === "root");
  const rootCanLogIn = root?.kind === "USER" && (root.password.kind === "secret" || (root.password.kind === "hash" && !/^[!*]/.test(root.password.hash)));
  if (!rootCanLogIn) return;
  for (const ins of instructions) {
    if (ins.kind !== "INITTAB") continue;
    const words = ins.command.split(/\s+/);
    const runsDropbear = words.some((w) => /(^|\/)dropbear$/.test(w)) || /(^|\/)dropbear$/.test(programOf(ins.command));
    if (runsDropbear && !words.includes("-w") && !words.some((w) => /^-[A-Za-z]*w/.test(w))) {
      report.warn(ins.commandSpan, "NIFTY014", "root can log in over SSH with a password", "add -w to dropbear's options to refuse root logins (or LOCKED on USER root)");
    }
  }
}

export { specFor };
