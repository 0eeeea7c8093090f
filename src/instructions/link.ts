// LINK <binary> APPLETS [IN <dir>] | LINK <binary> <name>... [IN <dir>]
// Relative symlinks to a multicall binary: one per applet it provides, or the names given.
import { posix } from "node:path";
import type { InstructionSpec, Typed } from "./spec.ts";
import { readImagePath, readOptions } from "./args.ts";
import { StepError } from "./context.ts";
import { ROOT } from "./files.ts";

export interface LinkInstruction extends Typed {
  kind: "LINK";
  binary: string;
  /** undefined: every applet the binary lists. */
  names?: string[];
  dir: string;
}

const LINK_NAME = /^[^/\0]+$/;

export const link: InstructionSpec<LinkInstruction> = {
  keyword: "LINK",
  layer: "base",
  summary:
    "Make relative symlinks to a multicall binary such as BusyBox: one per applet it provides (APPLETS, read from the binary itself), or the names given. Links go in the binary's directory unless IN says otherwise; an existing file of the same name is left alone.",
  syntax: ["LINK <binary> APPLETS [IN <dir>]", "LINK <binary> <name>... [IN <dir>]"],
  example: "LINK /bin/busybox APPLETS",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { IN: "value" }, 0);
    const [binWord, ...names] = opts.positional;
    if (binWord === undefined || names.length === 0) {
      report.error(
        binWord?.span ?? ins.keywordSpan,
        "NIFTY040",
        "LINK needs a binary and APPLETS or link names",
        `usage: ${this.syntax.join("  |  ")}`,
      );
      return undefined;
    }
    if (names.length === 1 && names[0]!.text.toUpperCase() === "APPLETS")
      ins.optionWords?.push(names[0]!.span);
    const inWord = opts.values.get("IN");
    // LINK APPLETS /bin/busybox: the binary after the names.
    const path = names.find((w) => w.text.startsWith("/"));
    const swapped =
      path === undefined
        ? undefined
        : `the words look swapped: LINK ${path.text} ${opts.positional
            .filter((w) => w !== path)
            .map((w) => w.text)
            .join(" ")}${inWord ? ` IN ${inWord.text}` : ""} (the binary comes first)`;
    const binary = readImagePath(binWord, report, swapped);
    const dir = inWord ? readImagePath(inWord, report) : binary && posix.dirname(binary);
    if (binary === undefined || dir === undefined) return undefined;
    if (model.tree.lookup(binary)?.node.type !== "file") {
      report.error(
        binWord.span,
        "NIFTY053",
        `LINK names ${binary}, which no earlier instruction provides`,
        "FETCH or COPY the binary before linking to it",
      );
      return undefined;
    }
    const applets = names.length === 1 && names[0]!.text.toUpperCase() === "APPLETS";
    let linkNames: string[] | undefined;
    if (!applets) {
      linkNames = [];
      // Every bad name is said, not only the first.
      let bad = false;
      for (const word of names) {
        const dots = word.text === "." || word.text === "..";
        if (!LINK_NAME.test(word.text) || dots) {
          report.error(
            word.span,
            "NIFTY054",
            `bad link name ${JSON.stringify(word.text)}`,
            dots
              ? `${word.text} names a directory, not a file: give the applet's own name, such as sh or ls`
              : "a link name is a file name without /",
          );
          bad = true;
        }
        linkNames.push(word.text);
      }
      if (bad) return undefined;
    }
    const where = model.tree.mkdirp(dir);
    if (linkNames === undefined) model.appletDirs.add(where);
    else
      for (const name of linkNames)
        model.tree.set(model.tree.placement(`${where}/${name}`), {
          type: "symlink",
          mode: 0o777,
          ...ROOT,
          target: binary,
        });
    return { kind: "LINK", span: ins.span, binary, dir, ...(linkNames ? { names: linkNames } : {}) };
  },
  async apply(t, context) {
    const found = context.tree.lookup(t.binary);
    if (found?.node.type !== "file")
      throw new StepError("NIFTY200", t.span, `${t.binary} is not a file in the image`);
    const names = t.names ?? (await context.applets(found.node.content, t.span));
    const dir = context.tree.mkdirp(t.dir);
    const target = posix.relative(dir, found.path) || posix.basename(found.path);
    for (const name of names) {
      const path = `${dir === "/" ? "" : dir}/${name}`;
      if (path === found.path) continue;
      const existing = context.tree.get(path);
      if (existing !== undefined && existing.type !== "symlink") continue;
      context.tree.set(path, { type: "symlink", mode: 0o777, ...ROOT, target });
    }
  },
};
