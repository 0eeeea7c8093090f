// ARCHIVE <name> <suite>... [COMPONENTS <component>...] [URL <url>] [KEYRING <file>]
// A Debian archive whose signed indices PACKAGE lines resolve against.
import type { InstructionSpec, Typed } from "./spec.ts";
import { readOptions } from "./args.ts";
import type { Value } from "./scope.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import type { SuiteRef } from "../debian/types.ts";

export interface ArchiveInstruction extends Typed {
  kind: "ARCHIVE";
  /** Also the mirror name: --mirror <name>=URL, NIFTY_MIRROR_<NAME>, or apt's sources for debian and debian-security. */
  name: string;
  suites: string[];
  components: string[];
  url?: string;
  /** Absolute path of the OpenPGP keyring on the build host; default: Debian's archive keyring. */
  keyring?: string;
}

const ARCHIVE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const SUITE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export const archive: InstructionSpec<ArchiveInstruction> = {
  keyword: "ARCHIVE",
  summary:
    "Declare a Debian archive and the suites and components PACKAGE lines resolve against. Its InRelease is verified against the keyring (Debian's by default), its Packages index against the signed digests, every .deb against the index.",
  syntax: ["ARCHIVE <name> <suite>... [COMPONENTS <component>...] [URL <url>] [KEYRING <file>]"],
  editor: "archive",
  names: { declares: "archive" },
  example: "ARCHIVE debian bookworm bookworm-updates\nARCHIVE debian-security bookworm-security",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { COMPONENTS: "list", URL: "value", KEYRING: "value" });
    const [nameWord, ...suiteWords] = opts.positional;
    if (nameWord === undefined || suiteWords.length === 0) {
      report.error(
        nameWord?.span ?? ins.keywordSpan,
        "NIFTY060",
        "ARCHIVE needs a name and at least one suite",
        `usage: ${this.syntax[0]}`,
      );
      model.archiveFailed = true;
      return undefined;
    }
    let ok = true;
    if (!ARCHIVE_NAME.test(nameWord.text)) {
      report.error(
        nameWord.span,
        "NIFTY061",
        `bad archive name ${JSON.stringify(nameWord.text)}`,
        "lower-case letters, digits and -, starting with a letter: debian, debian-security, or a name of your own with URL",
      );
      ok = false;
    } else if (model.archives.has(nameWord.text)) {
      report.error(
        nameWord.span,
        "NIFTY065",
        `archive ${nameWord.text} is declared twice`,
        `it was declared on line ${model.archives.get(nameWord.text)!.start.line}; list all its suites on one ARCHIVE line`,
      );
      ok = false;
    }
    const components = opts.lists.get("COMPONENTS") ?? [];
    for (const word of [...suiteWords, ...components]) {
      if (!SUITE_NAME.test(word.text)) {
        report.error(
          word.span,
          "NIFTY062",
          `bad suite or component name ${JSON.stringify(word.text)}`,
          "suites and components are names such as bookworm, bookworm-security, main",
        );
        ok = false;
      }
    }
    const suitesOnce = namedOnce(report, "suite", suiteWords);
    if (!namedOnce(report, "component", components) || !suitesOnce) ok = false;
    const urlWord = opts.values.get("URL");
    if (urlWord !== undefined && !/^https?:\/\/[^\s/]+/.test(urlWord.text)) {
      report.error(
        urlWord.span,
        "NIFTY063",
        `bad archive URL ${JSON.stringify(urlWord.text)}`,
        "write the archive root, http://… or https://…, the directory that holds dists/ and pool/",
      );
      ok = false;
    }
    const keyringWord = opts.values.get("KEYRING");
    let keyring: string | undefined;
    if (keyringWord !== undefined) {
      keyring = keyringWord.text.startsWith("/")
        ? keyringWord.text
        : `${model.recipeDir}/${keyringWord.text}`;
      if (model.hostKind(keyring) !== "file") {
        report.error(
          keyringWord.span,
          "NIFTY064",
          `keyring ${keyringWord.text} is not a file`,
          "give an OpenPGP keyring (gpg --export > keys.gpg), relative to the recipe's directory or absolute",
        );
        ok = false;
      }
    }
    if (!ok) {
      model.archiveFailed = true;
      return undefined;
    }
    model.archives.set(nameWord.text, nameWord.span);
    return {
      kind: "ARCHIVE",
      span: ins.span,
      name: nameWord.text,
      suites: suiteWords.map((w) => w.text),
      components: components.length > 0 ? components.map((w) => w.text) : ["main"],
      ...(urlWord ? { url: urlWord.text.replace(/\/+$/, "") } : {}),
      ...(keyring ? { keyring } : {}),
    };
  },
  archive(t) {
    return {
      name: t.name,
      suites: archiveSuites(t),
      ...(t.url ? { url: t.url } : {}),
      ...(t.keyring ? { keyring: t.keyring } : {}),
      span: t.span,
    };
  },
  sbom: {
    inputs(typed, into) {
      if (typed.url) into.archiveUrls.set(typed.name, typed.url);
    },
  },
};

/**
 * NIFTY069 at each repeated word: a suite (or component) named twice would be resolved twice and
 * locked twice, a lock no niftyc reads back. Whether every word was named once.
 */
function namedOnce(report: Reporter, what: "suite" | "component", words: readonly Value[]): boolean {
  const seen = new Set<string>();
  let once = true;
  for (const word of words) {
    if (!seen.has(word.text)) {
      seen.add(word.text);
      continue;
    }
    const order = what === "suite" ? "in order of preference" : "in any order";
    report.error(
      word.span,
      "NIFTY069",
      `${what} ${word.text} is listed twice`,
      `remove the second ${word.text}: each ${what} is named once, ${order}`,
    );
    once = false;
  }
  return once;
}

/** Every suite × component an ARCHIVE line declares, in its order. */
export function archiveSuites(t: ArchiveInstruction): SuiteRef[] {
  return t.suites.flatMap((suite) =>
    t.components.map((component) => ({ archive: t.name, suite, component })),
  );
}
