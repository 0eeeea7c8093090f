// Shared argument readers: options, modes, owners, image paths. Each reports
// its own mistakes with the word's span, so every instruction says the same
// thing about the same mistake.
import type { Span } from "../core/source.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import type { Value } from "./scope.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { CONTROL_CHARACTER } from "../diagnostics/escape.ts";
import { imagePath } from "../image/tree.ts";
import { writableSetuid } from "../image/setuid.ts";
import type { CheckModel, Expanded } from "./spec.ts";

export interface Owner {
  uid: number;
  gid: number;
}

export type OptionKind = "value" | "flag" | "list";

export interface Options {
  positional: Value[];
  values: Map<string, Value>;
  flags: Set<string>;
  lists: Map<string, Value[]>;
}

/**
 * Split words into positional arguments and OPTION value pairs. Options may
 * come in any order after the positional words; each at most once.
 */
export function readOptions(
  ins: Expanded,
  report: Reporter,
  spec: Record<string, OptionKind>,
  from = 0,
): Options {
  const result: Options = { positional: [], values: new Map(), flags: new Set(), lists: new Map() };
  const args = ins.args.slice(from);
  let seenOption = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const name = word.text.toUpperCase();
    const kind = spec[name];
    if (kind === undefined) {
      if (seenOption) {
        const near = suggest(word.text, Object.keys(spec));
        const keyword = ins.keyword.toUpperCase();
        const message = `unexpected ${JSON.stringify(word.text)} after the options of ${keyword}`;
        const hint = near ? `did you mean ${near}?` : `options here: ${Object.keys(spec).join(", ")}`;
        report.error(word.span, "NIFTY030", message, hint, () => near);
      } else {
        result.positional.push(word);
      }
      continue;
    }
    seenOption = true;
    ins.optionWords?.push(word.span);
    if (result.values.has(name) || result.flags.has(name) || result.lists.has(name)) {
      report.error(word.span, "NIFTY031", `${name} is given twice`);
    }
    if (kind === "flag") {
      result.flags.add(name);
      continue;
    }
    const next = args[i + 1];
    if (next === undefined || spec[next.text.toUpperCase()] !== undefined) {
      report.error(word.span, "NIFTY032", `${name} needs a value`);
      continue;
    }
    i++;
    if (kind === "value") {
      result.values.set(name, next);
    } else {
      const items: Value[] = [next];
      while (i + 1 < args.length && spec[args[i + 1]!.text.toUpperCase()] === undefined)
        items.push(args[++i]!);
      result.lists.set(name, items);
    }
  }
  return result;
}

export function readMode(value: Value, report: Reporter): number | undefined {
  if (!/^0?[0-7]{3,4}$/.test(value.text)) {
    report.error(
      value.span,
      "NIFTY033",
      `bad mode ${JSON.stringify(value.text)}`,
      "write an octal mode such as 0755, 0644 or 1777",
    );
    return undefined;
  }
  return parseInt(value.text, 8);
}

/**
 * A MODE that would make a setuid or setgid file every user may write: NIFTY233 at the MODE
 * word, by the rule the build applies to the finished image, unless --allow-writable-setuid.
 */
export function checkWritableSetuid(
  modeWord: Value,
  file: { path: string; mode: number } & Owner,
  model: CheckModel,
  report: Reporter,
): boolean {
  const problem = model.allowWritableSetuid ? undefined : writableSetuid(file.path, file);
  if (problem === undefined) return true;
  report.error(modeWord.span, "NIFTY233", problem.message, problem.hint);
  return false;
}

export function readId(value: Value, report: Reporter, what: string): number | undefined {
  if (!/^\d+$/.test(value.text) || Number(value.text) > 0xfffffffe) {
    report.error(
      value.span,
      "NIFTY034",
      `bad ${what} ${JSON.stringify(value.text)}`,
      `a ${what} is a number from 0 to 4294967294`,
    );
    return undefined;
  }
  return Number(value.text);
}

/** NIFTY304: root's UID or GID given as other than 0, at the number's word; true when so. */
export function refuseRootId(word: Value, id: number, what: "UID" | "GID", report: Reporter): boolean {
  if (id === 0) return false;
  report.error(
    word.span,
    "NIFTY304",
    `root's ${what} is always 0, not ${id}`,
    `drop ${what} from this line: files owned root:root, and every tool, take root as 0`,
  );
  return true;
}

/** `<user|uid>:<group|gid>` against what earlier GROUP/USER lines declared. */
export function readOwner(value: Value, report: Reporter, model: CheckModel): Owner | undefined {
  const [user, group, ...rest] = value.text.split(":");
  if (!user || !group || rest.length > 0) {
    report.error(
      value.span,
      "NIFTY035",
      `bad owner ${JSON.stringify(value.text)}`,
      "write <user>:<group>, by name or number, e.g. luser:luser or 1000:1000",
    );
    return undefined;
  }
  // A number is taken as it is, within the range a tar header and the kernel hold.
  const numeric = (part: string, what: "UID" | "GID") =>
    /^\d+$/.test(part) ? (readId({ ...value, text: part }, report, what) ?? null) : undefined;
  const uidNumber = numeric(user, "UID");
  const gidNumber = numeric(group, "GID");
  if (uidNumber === null || gidNumber === null) return undefined;
  const uid = uidNumber ?? (user === "root" ? 0 : model.users.get(user)?.id);
  const gid = gidNumber ?? (group === "root" ? 0 : model.groups.get(group)?.id);
  if (uid === undefined) {
    const hint = () => {
      const near = suggest(user, [...model.users.keys()]);
      return near ? `did you mean ${near}?` : "declare it with USER before this line, or give a number";
    };
    report.error(value.span, "NIFTY036", `unknown user ${user}`, hint);
  }
  if (gid === undefined) {
    const hint = () => {
      const near = suggest(group, [...model.groups.keys()]);
      return near
        ? `did you mean ${near}?`
        : "declare it with GROUP (or USER) before this line, or give a number";
    };
    report.error(value.span, "NIFTY037", `unknown group ${group}`, hint);
  }
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

/**
 * An absolute path inside the image, normalised; `..` and relative paths refused. `hint`, for a
 * relative path: what was probably meant, where the line tells better than "write /…" (swapped
 * words, a misspelt option).
 */
export function readImagePath(value: Value, report: Reporter, hint?: string): string | undefined {
  if (!value.text.startsWith("/")) {
    report.error(
      value.span,
      "NIFTY038",
      `${JSON.stringify(value.text)} is not an absolute path inside the image`,
      hint ?? `write /${value.text.replace(/^(\.{0,2}\/)+/, "")}`,
    );
    return undefined;
  }
  if (value.text.split("/").includes("..")) {
    report.error(
      value.span,
      "NIFTY039",
      `${JSON.stringify(value.text)} climbs out of the image with ".."`,
      "paths inside the image are absolute and never use ..",
    );
    return undefined;
  }
  if (CONTROL_CHARACTER.test(value.text)) {
    report.error(value.span, "NIFTY038", `path ${JSON.stringify(value.text)} contains a control character`);
    return undefined;
  }
  return imagePath(value.text);
}

/** Report missing or surplus positional words. */
export function expectCount(
  ins: Expanded,
  words: Value[],
  report: Reporter,
  min: number,
  max: number,
  usage: string,
): boolean {
  if (words.length < min) {
    report.error(
      words.length > 0 ? words[words.length - 1]!.span : ins.keywordSpan,
      "NIFTY040",
      `${ins.keyword.toUpperCase()} needs ${describe(min, max)}`,
      `usage: ${usage}`,
    );
    return false;
  }
  if (words.length > max) {
    const extra = words[max]!;
    // A misspelt option (MOED for MODE) reads as one word too many: name the option it is close to.
    const near = nearOption(
      extra,
      [...usage.matchAll(/\[([A-Z]{2,})\b/g)].map((m) => m[1]!),
    );
    report.error(
      extra.span,
      "NIFTY041",
      `unexpected ${JSON.stringify(extra.text)}: ${ins.keyword.toUpperCase()} takes ${describe(min, max)}`,
      near ? `did you mean ${near}? usage: ${usage}` : `usage: ${usage}`,
    );
    return false;
  }
  return true;
}

/** The option a word that is none of them is probably a misspelling of (a word of letters only), else undefined. */
export function nearOption(
  word: { text: string } | undefined,
  options: readonly string[],
): string | undefined {
  return word && /^[A-Za-z]+$/.test(word.text) ? suggest(word.text, options) : undefined;
}

function describe(min: number, max: number): string {
  const noun = (n: number) => (n === 1 ? "argument" : "arguments");
  if (min === max) return `${min} ${noun(min)}`;
  if (max === Infinity) return `at least ${min} ${noun(min)}`;
  return `${min} to ${max} arguments`;
}

/** A span covering several words (for messages about a whole group). */
export function spanOf(first: Span, last: Span): Span {
  return { start: first.start, end: last.end };
}
