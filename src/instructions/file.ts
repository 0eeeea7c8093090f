// FILE <path> [MODE <octal>] [OWNER <u>:<g>] <<EOF ... EOF
import type { InstructionSpec, Typed } from "./spec.ts";
import {
  checkWritableSetuid,
  expectCount,
  readImagePath,
  readMode,
  readOptions,
  readOwner,
  type Owner,
} from "./args.ts";
import { writeFile } from "./files.ts";
import { ROOT } from "./files.ts";
import type { TreeNode } from "../image/tree.ts";

export interface FileInstruction extends Typed {
  kind: "FILE";
  path: string;
  mode: number;
  owner: Owner;
  text: string;
}

export const file: InstructionSpec<FileInstruction> = {
  keyword: "FILE",
  heredoc: true,
  summary:
    "Write a file whose content is the heredoc that follows. Variables are replaced in the body unless the delimiter is quoted (<<'EOF'); <<-EOF strips leading tabs.",
  names: { uses: { OWNER: "owner" } },
  syntax: ["FILE <path> [MODE <octal>] [OWNER <user|uid>:<group|gid>] <<EOF", "…", "EOF"],
  example: "FILE /etc/os-release <<EOF\nNAME=nifty\nID=nifty\nEOF",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { MODE: "value", OWNER: "value" });
    if (!expectCount(ins, opts.positional, report, 1, 1, "FILE <path> [MODE <octal>] [OWNER <u>:<g>] <<EOF"))
      return undefined;
    if (ins.heredocs.length !== 1) {
      const span = ins.heredocs[1]?.markerSpan ?? ins.span;
      report.error(
        span,
        "NIFTY056",
        ins.heredocs.length === 0 ? "FILE needs its content as a heredoc" : "FILE takes exactly one heredoc",
        "end the line with <<EOF, write the content, then a line EOF",
      );
      return undefined;
    }
    const path = readImagePath(opts.positional[0]!, report);
    const modeWord = opts.values.get("MODE");
    const ownerWord = opts.values.get("OWNER");
    const mode = modeWord ? readMode(modeWord, report) : 0o644;
    const owner = ownerWord ? readOwner(ownerWord, report, model) : ROOT;
    if (path === undefined || mode === undefined || owner === undefined) return undefined;
    if (modeWord && !checkWritableSetuid(modeWord, { path, mode, ...owner }, model, report)) return undefined;
    const text = ins.heredocs[0]!.text;
    try {
      const node: TreeNode = { type: "file", mode, ...owner, content: { digest: "", size: 0 } };
      model.tree.set(model.tree.placement(path), node);
      model.fileTexts.set(node, () => text);
    } catch (error) {
      report.error(opts.positional[0]!.span, "NIFTY052", (error as Error).message);
      return undefined;
    }
    return {
      kind: "FILE",
      span: ins.span,
      path,
      mode,
      owner,
      text,
      ...(modeWord ? { modeSpan: modeWord.span } : {}),
    };
  },
  async apply(t, context) {
    await writeFile(context, t.path, t.text, t.mode, t.owner);
  },
};
