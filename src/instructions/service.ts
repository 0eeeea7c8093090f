// SERVICE enable|mask <unit>...: what `systemctl enable` and `systemctl mask`
// do, as links in the image's /etc/systemd/system, made from the unit files'
// [Install] sections at build time. No systemctl runs; the links are the ones
// systemctl 252 makes (absolute, to the unit where the search path found it).
import { posix } from "node:path";
import type { Span } from "../core/source.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import { suggest } from "../diagnostics/suggest.ts";
import type { Tree } from "../image/tree.ts";
import type { BuildContext } from "./context.ts";
import { StepError } from "./context.ts";
import { ROOT } from "./files.ts";
import type { CheckModel, InstructionSpec, Typed } from "./spec.ts";

export type ServiceVerb = "enable" | "mask";

export interface ServiceInstruction extends Typed {
  kind: "SERVICE";
  verb: ServiceVerb;
  units: Array<{ name: string; span: Span }>;
}

/**
 * Where systemctl looks for unit files an image can hold, in its order (Debian's systemd 252,
 * `systemd-analyze unit-paths`; the /run directories are a tmpfs at boot).
 */
export const UNIT_PATH = [
  "/etc/systemd/system",
  "/usr/local/lib/systemd/system",
  "/lib/systemd/system",
  "/usr/lib/systemd/system",
] as const;
const CONFIG_DIR = "/etc/systemd/system";
const SUFFIXES = ["service", "socket", "target", "timer", "path", "mount", "automount", "swap", "slice"];
/** A unit name: a prefix, optionally @ and an instance, and a type suffix (systemd's unit_name_is_valid, simplified). */
const UNIT_NAME = new RegExp(`^[A-Za-z0-9:_.\\\\-]+(@[A-Za-z0-9:_.\\\\-]*)?\\.(${SUFFIXES.join("|")})$`);

export const service: InstructionSpec<ServiceInstruction> = {
  keyword: "SERVICE",
  init: "systemd",
  summary:
    "Enable or mask systemd units as systemctl enable and systemctl mask would: links in /etc/systemd/system made from each unit's [Install] section, without running systemctl.",
  syntax: ["SERVICE enable <unit>...", "SERVICE mask <unit>..."],
  example: "SERVICE enable httpd.service",
  check(ins, report, model) {
    const [verbWord, ...unitWords] = ins.args;
    if (verbWord?.text === "disable") {
      // The tree only grows: a step adds or replaces paths and no layer can carry a removal,
      // so a link made by an earlier line cannot be unmade; and no package's postinst ran
      // to make links of its own.
      report.error(
        verbWord.span,
        "NIFTY303",
        "SERVICE disable cannot remove links: an image's tree only gains paths, step by step",
        "links come only from this recipe's SERVICE enable lines: drop the line that enables the unit; to keep a unit from starting at all, even as a dependency, use SERVICE mask",
      );
      return undefined;
    }
    if (verbWord === undefined || (verbWord.text !== "enable" && verbWord.text !== "mask")) {
      report.error(
        verbWord?.span ?? ins.keywordSpan,
        "NIFTY059",
        `SERVICE takes enable or mask, not ${JSON.stringify(verbWord?.text ?? "")}`,
        `usage: ${this.syntax.join(" | ")}`,
      );
      return undefined;
    }
    if (unitWords.length === 0) {
      report.error(
        verbWord.span,
        "NIFTY059",
        `SERVICE ${verbWord.text} needs at least one unit`,
        `usage: SERVICE ${verbWord.text} <unit>...`,
      );
      return undefined;
    }
    let ok = true;
    for (const word of unitWords) {
      if (!UNIT_NAME.test(word.text)) {
        // A bare name is most often a service: say the name that would do.
        const meant = UNIT_NAME.test(`${word.text}.service`) ? `did you mean ${word.text}.service? ` : "";
        report.error(
          word.span,
          "NIFTY059",
          `bad unit name ${JSON.stringify(word.text)}`,
          `${meant}a unit name ends in its type: ${SUFFIXES.map((s) => `.${s}`).join(", ")}`,
        );
        ok = false;
      } else if (!model.opaquePackages && findUnit(model.tree, word.text) === undefined) {
        // Every file of the image so far is known: the unit must be among them.
        const hint = () => {
          const near = suggest(word.text, unitNames(model.tree));
          return near
            ? `did you mean ${near}?`
            : `write its unit file in ${CONFIG_DIR} with FILE, or install the package that ships it, before this line`;
        };
        report.error(word.span, "NIFTY099", `unit ${word.text} is not in the image`, hint);
        ok = false;
      }
    }
    if (!ok) return undefined;
    for (const word of unitWords) {
      const problem =
        verbWord.text === "enable" ? checkEnable(model, word.text, new Set()) : checkMask(model, word.text);
      if (problem === undefined) continue;
      report.error(
        word.span,
        "NIFTY229",
        `cannot ${verbWord.text} ${word.text}: ${problem.why}`,
        problem.hint,
      );
      ok = false;
    }
    if (!ok) return undefined;
    return {
      kind: "SERVICE",
      span: ins.span,
      verb: verbWord.text,
      units: unitWords.map((w) => ({ name: w.text, span: w.span })),
    };
  },
  verify(t, tree, report) {
    if (!SYSTEMD.some((p) => tree.lookup(p)?.node.type === "file")) {
      report.warn(
        t.span,
        "NIFTY234",
        `SERVICE ${t.verb} does nothing here: the image has no systemd (${SYSTEMD.join(" or ")}) to read its links`,
        "install systemd (PACKAGE systemd systemd-sysv); a BusyBox init starts what INITTAB lines name",
      );
      return;
    }
    if (t.verb === "enable") warnMissingTargets(tree, t.units, report);
  },
  async apply(t, context) {
    for (const unit of t.units) {
      if (t.verb === "mask") mask(context.tree, unit.name, unit.span);
      else await enable(context, unit.name, unit.span, new Set());
    }
  },
};

const SYSTEMD = ["/lib/systemd/systemd", "/usr/lib/systemd/systemd"];

/**
 * In the finished image, the .wants/ and .requires/ links to these units whose target unit is in no
 * unit directory: systemd never starts that target, so never the unit (systemctl enable warns the
 * same: "is added as a dependency to a non-existent unit"). One pass over /etc/systemd/system.
 */
function warnMissingTargets(tree: Tree, units: ServiceInstruction["units"], report: Reporter): void {
  const dir = tree.resolve(CONFIG_DIR);
  if (dir === undefined) return;
  const byPath = new Map<string, ServiceInstruction["units"][number]>();
  for (const unit of units) {
    const found = findUnit(tree, unit.name);
    const real = found === undefined ? "masked" : unitBehind(tree, unit.name, found);
    if (real !== "masked") byPath.set(real.path, unit);
  }
  const missing = new Map<ServiceInstruction["units"][number], Set<string>>();
  for (const path of tree.sortedPaths()) {
    if (!path.startsWith(`${dir}/`)) continue;
    const node = tree.get(path);
    const unit = node?.type === "symlink" ? byPath.get(node.target) : undefined;
    const parent = posix.dirname(path);
    const target = /^(.+)\.(wants|requires)$/.exec(posix.basename(parent))?.[1];
    if (unit === undefined || target === undefined || posix.dirname(parent) !== dir) continue;
    if (findUnit(tree, target) === undefined) missing.set(unit, (missing.get(unit) ?? new Set()).add(target));
  }
  for (const [unit, targets] of missing)
    for (const target of targets)
      report.warn(
        unit.span,
        "NIFTY234",
        `${unit.name} is enabled for ${target}, which is not in the image: nothing will start it that way`,
        `check the name in its [Install] section (WantedBy=, RequiredBy=): ${suggestTarget(tree, target)}`,
      );
}

function suggestTarget(tree: Tree, target: string): string {
  const near = suggest(target, unitNames(tree));
  return near === undefined
    ? "systemd's own targets are multi-user.target, timers.target, sockets.target …"
    : `did you mean ${near}?`;
}

/** A unit file as systemctl finds it: the search-path spelling of its path, and the file's own name. */
interface FoundUnit {
  /** e.g. /lib/systemd/system/getty@.service: the link target systemctl writes. */
  path: string;
  /** The name looked for, or its template (foo@.service for foo@bar.service). */
  file: string;
}

export function findUnit(tree: Tree, name: string): FoundUnit | undefined {
  const at = name.indexOf("@");
  const dot = name.lastIndexOf(".");
  // foo@bar.service is an instance of foo@.service when no file has its own name.
  const templateName = at >= 0 && at + 1 < dot ? `${name.slice(0, at + 1)}${name.slice(dot)}` : undefined;
  for (const file of templateName === undefined ? [name] : [name, templateName]) {
    for (const dir of UNIT_PATH) {
      const found = tree.lookup(`${dir}/${file}`);
      const link = tree.get(tree.resolve(`${dir}/${file}`, false) ?? "");
      if (found?.node.type === "file" || (link?.type === "symlink" && link.target === "/dev/null"))
        return { path: `${dir}/${file}`, file };
    }
  }
  return undefined;
}

/** Every unit file name in the search path (for did-you-mean). */
function unitNames(tree: Tree): string[] {
  const names = new Set<string>();
  const dirs = UNIT_PATH.map((d) => tree.resolve(d)).filter((d): d is string => d !== undefined);
  for (const path of tree.sortedPaths()) {
    const slash = path.lastIndexOf("/");
    if (dirs.includes(path.slice(0, slash)) && UNIT_NAME.test(path.slice(slash + 1)))
      names.add(path.slice(slash + 1));
  }
  return [...names];
}

function fail(span: Span, name: string, verb: ServiceVerb, why: string, hint?: string): StepError {
  return new StepError("NIFTY229", span, `cannot ${verb} ${name}: ${why}`, hint);
}

function isMasked(tree: Tree, name: string): boolean {
  const node = tree.get(tree.resolve(`${CONFIG_DIR}/${name}`, false) ?? "");
  return node?.type === "symlink" && node.target === "/dev/null";
}

function link(tree: Tree, path: string, target: string): void {
  tree.set(tree.placement(path), { type: "symlink", mode: 0o777, ...ROOT, target });
}

function mask(tree: Tree, name: string, span: Span): void {
  if (findUnit(tree, name) === undefined) {
    const near = suggest(name, unitNames(tree));
    throw fail(span, name, "mask", "it is not in the image", near ? `did you mean ${near}?` : undefined);
  }
  const existing = tree.get(tree.resolve(`${CONFIG_DIR}/${name}`, false) ?? "");
  if (existing !== undefined && existing.type !== "symlink") {
    const problem = unitFileInTheWay(name);
    throw fail(span, name, "mask", problem.why, problem.hint);
  }
  link(tree, `${CONFIG_DIR}/${name}`, "/dev/null");
}

function unitFileInTheWay(name: string): { why: string; hint: string } {
  return {
    why: `${CONFIG_DIR}/${name} is a unit file, which the mask would replace`,
    hint: "systemctl refuses this too: write the unit elsewhere or drop the mask",
  };
}

/**
 * At check, what masking would refuse: a unit file the recipe wrote in /etc/systemd/system (one
 * written before a whole PACKAGE is judged too: a package never takes a file out). The mask
 * then stands in the model, so a later SERVICE enable of the unit is refused as the build's is.
 */
function checkMask(model: CheckModel, name: string): { why: string; hint: string } | undefined {
  const path = `${CONFIG_DIR}/${name}`;
  const existing = model.tree.get(model.tree.resolve(path, false) ?? "");
  if (existing !== undefined && existing.type !== "symlink") return unitFileInTheWay(name);
  try {
    link(model.tree, path, "/dev/null");
  } catch {
    // A path in the way of the link is the build's to report.
  }
  return undefined;
}

async function enable(context: BuildContext, name: string, span: Span, seen: Set<string>): Promise<void> {
  if (seen.has(name)) return;
  seen.add(name);
  const tree = context.tree;
  const found = findUnit(tree, name);
  if (found === undefined) {
    const near = suggest(name, unitNames(tree));
    throw fail(
      span,
      name,
      "enable",
      "it is not in the image",
      near
        ? `did you mean ${near}?`
        : `write its unit file in ${CONFIG_DIR} with FILE, or install the package that ships it`,
    );
  }
  const real = unitBehind(tree, name, found);
  if (real === "masked")
    throw fail(
      span,
      name,
      "enable",
      "it is masked (a link to /dev/null)",
      "drop the SERVICE mask line, or this one",
    );
  seen.add(real.name);
  const text = await context.readText(real.path);
  if (text === undefined) throw fail(span, name, "enable", `${real.path} is not a file`);
  const install = parseInstall(text);
  const problem = installProblem(real.name, real.path, install);
  if (problem !== undefined) throw fail(span, name, "enable", problem.why, problem.hint);
  // A template enabled by its own name gets its DefaultInstance=.
  const linkName = instanceName(real.name, install);
  const spec = (value: string): string => expandSpecifiers(value, linkName);
  for (const alias of install.alias) link(tree, `${CONFIG_DIR}/${spec(alias)}`, real.path);
  for (const target of install.wantedBy)
    link(tree, `${CONFIG_DIR}/${spec(target)}.wants/${linkName}`, real.path);
  for (const target of install.requiredBy)
    link(tree, `${CONFIG_DIR}/${spec(target)}.requires/${linkName}`, real.path);
  for (const also of install.also) await enable(context, spec(also), span, seen);
}

/** The unit a name enables: masked by a link to /dev/null (the name's or its file's), or the file behind its aliases. */
function unitBehind(tree: Tree, name: string, found: FoundUnit): { name: string; path: string } | "masked" {
  if (isMasked(tree, name) || isMasked(tree, found.file)) return "masked";
  return followAlias(tree, name, found.path);
}

/** More links than this between a unit's name and its file is a loop. */
const MAX_ALIAS_HOPS = 32;

/**
 * A unit file that is a symbolic link is an alias (or a linked unit): systemctl enables the unit
 * the link leads to, by that file's name (an instance keeps its instance: autovt@tty3.service,
 * through autovt@.service → getty@.service, is getty@tty3.service), with links to its path.
 */
function followAlias(tree: Tree, name: string, path: string): { name: string; path: string } | "masked" {
  for (let hops = 0; hops < MAX_ALIAS_HOPS; hops++) {
    const node = tree.get(tree.resolve(path, false) ?? "");
    if (node?.type !== "symlink") break;
    if (node.target === "/dev/null") return "masked";
    const target = posix.resolve(posix.dirname(path), node.target);
    const file = posix.basename(target);
    if (!UNIT_NAME.test(file)) break;
    const instance = name.slice(name.indexOf("@") + 1, name.lastIndexOf("."));
    name =
      name.includes("@") && instance !== "" && /@\./.test(file) ? file.replace("@.", `@${instance}.`) : file;
    path = target;
  }
  return { name, path };
}

/** The name the links carry: a template enabled by its own name gets its DefaultInstance=. */
function instanceName(name: string, install: InstallSection): string {
  return /@\./.test(name) && install.defaultInstance !== undefined
    ? name.replace("@.", `@${install.defaultInstance}.`)
    : name;
}

/**
 * At check, what enabling would refuse, as far as the recipe's own FILE lines tell: a unit's text
 * is known only when FILE wrote it (a package's files are not, nor one that a package may shadow).
 */
function checkEnable(
  model: CheckModel,
  name: string,
  seen: Set<string>,
): { why: string; hint?: string } | undefined {
  if (seen.has(name)) return undefined;
  seen.add(name);
  const found = findUnit(model.tree, name);
  if (found === undefined) {
    if (model.opaquePackages) return undefined;
    const near = suggest(name, unitNames(model.tree));
    return {
      why: "it is not in the image",
      hint: near
        ? `did you mean ${near}?`
        : `write its unit file in ${CONFIG_DIR} with FILE, or install the package that ships it, before this line`,
    };
  }
  const real = unitBehind(model.tree, name, found);
  if (real === "masked")
    return { why: "it is masked (a link to /dev/null)", hint: "drop the SERVICE mask line, or this one" };
  // A whole package may ship a unit of this name earlier in the search path than /lib.
  if (model.opaquePackages && !found.path.startsWith(`${CONFIG_DIR}/`)) return undefined;
  const node = model.tree.lookup(real.path)?.node;
  const text = node === undefined ? undefined : model.fileTexts.get(node)?.();
  if (text === undefined) return undefined;
  const install = parseInstall(text);
  const problem = installProblem(real.name, real.path, install);
  if (problem !== undefined) return problem;
  const linkName = instanceName(real.name, install);
  for (const also of install.also) {
    const inner = checkEnable(model, expandSpecifiers(also, linkName), seen);
    if (inner !== undefined)
      return { ...inner, why: `${expandSpecifiers(also, linkName)} (its Also=): ${inner.why}` };
  }
  return undefined;
}

/** Why a unit with this [Install] section cannot be enabled by this name, if it cannot. */
function installProblem(
  name: string,
  path: string,
  install: InstallSection,
): { why: string; hint: string } | undefined {
  const { wantedBy, requiredBy, alias, also, sections } = install;
  if (wantedBy.length + requiredBy.length + alias.length + also.length === 0) {
    // systemd reads [Install] as spelt: [Instal] or [install] is a section of no meaning.
    const near = suggest(
      "Install",
      sections.filter((n) => n !== "Install"),
    );
    return {
      why: `${path} has no [Install] section with WantedBy=, RequiredBy=, Alias= or Also=: nothing would enable it`,
      hint:
        near === undefined
          ? "give it an [Install] section, or SYMLINK it into a target's .wants directory"
          : `its section [${near}] is not [Install], which systemd reads only spelt so: rename it [Install]`,
    };
  }
  if (/@\./.test(name) && install.defaultInstance === undefined)
    return {
      why: "it is a template without DefaultInstance=",
      hint: `name an instance: SERVICE enable ${name.replace("@.", "@NAME.")}`,
    };
  return undefined;
}

export interface InstallSection {
  wantedBy: string[];
  requiredBy: string[];
  alias: string[];
  also: string[];
  defaultInstance?: string;
  /** Every section name of the file, in order. */
  sections: string[];
}

/** The [Install] section of a unit file, read as systemd does: continuation lines, comments, an empty value resets the list. */
export function parseInstall(text: string): InstallSection {
  const lists: Record<string, string[]> = { WantedBy: [], RequiredBy: [], Alias: [], Also: [] };
  let defaultInstance: string | undefined;
  let section = "";
  const sections: string[] = [];
  // systemd ends a line at \n, \r or \r\n (read_line): a CRLF unit reads, and continues lines, the same.
  const lines = text.replace(/\r\n?/g, "\n").replace(/\\\n/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("[")) {
      section = line.replace(/^\[|\].*$/g, "");
      sections.push(section);
      continue;
    }
    if (section !== "Install") continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === "DefaultInstance") defaultInstance = value === "" ? undefined : value;
    const list = lists[key];
    if (list === undefined) continue;
    if (value === "") list.length = 0;
    else list.push(...value.split(/\s+/));
  }
  return {
    wantedBy: lists.WantedBy!,
    requiredBy: lists.RequiredBy!,
    alias: lists.Alias!,
    also: lists.Also!,
    ...(defaultInstance !== undefined ? { defaultInstance } : {}),
    sections,
  };
}

/** The specifiers [Install] values may use that depend only on the unit's name. */
function expandSpecifiers(value: string, name: string): string {
  const dot = name.lastIndexOf(".");
  const stem = name.slice(0, dot);
  const at = stem.indexOf("@");
  const prefix = at >= 0 ? stem.slice(0, at) : stem;
  const instance = at >= 0 ? stem.slice(at + 1) : "";
  return value.replace(/%([%nNpi])/g, (_, c: string) =>
    c === "%" ? "%" : c === "n" ? name : c === "N" ? stem : c === "p" ? prefix : instance,
  );
}
