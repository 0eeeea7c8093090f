// SYMLINK <link-path> <target>: one symbolic link, target kept as written.
import { posix } from "node:path";
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount, readImagePath } from "./args.ts";
import { ROOT } from "./files.ts";

export interface SymlinkInstruction extends Typed {
  kind: "SYMLINK";
  path: string;
  target: string;
}

export const symlink: InstructionSpec<SymlinkInstruction> = {
  keyword: "SYMLINK",
  summary:
    "Make a symbolic link. The target is kept as written (relative or absolute); inside the image an absolute target means the image's root.",
  syntax: ["SYMLINK <link-path> <target>"],
  example: "SYMLINK /sbin bin",
  check(ins, report, model) {
    if (!expectCount(ins, ins.args, report, 2, 2, this.syntax[0]!)) return undefined;
    const target = ins.args[1]!.text;
    // SYMLINK bin /sbin: the target first, as ln -s takes it.
    const first = ins.args[0]!.text;
    const swapped = target.startsWith("/")
      ? `the words look swapped: SYMLINK ${target} ${first} (the link comes first)`
      : undefined;
    const path = readImagePath(ins.args[0]!, report, swapped);
    if (target === "" || target.includes("\0")) {
      report.error(ins.args[1]!.span, "NIFTY055", "empty or invalid link target");
      return undefined;
    }
    if (path === undefined) return undefined;
    try {
      const where = model.tree.placement(path);
      if (model.tree.get(where)?.type === "file") {
        // SYMLINK /bin/busybox /bin/sh: the program an earlier line placed becomes a link.
        const resolvable = model.tree.lookup(
          target.startsWith("/") ? target : posix.join(posix.dirname(where), target),
        );
        report.warn(
          ins.args[0]!.span,
          "NIFTY306",
          `SYMLINK replaces the file ${where}, which an earlier line put there, with a link to ${target}`,
          resolvable === undefined && target.startsWith("/")
            ? `${target} is not in the image yet: did you mean SYMLINK ${target} ${path}? (the link comes first)`
            : "give the link another path, or drop the line that put the file there",
        );
      }
      model.tree.set(where, { type: "symlink", mode: 0o777, ...ROOT, target });
    } catch (error) {
      report.error(ins.args[0]!.span, "NIFTY052", (error as Error).message);
      return undefined;
    }
    return { kind: "SYMLINK", span: ins.span, path, target };
  },
  async apply(t, context) {
    context.tree.set(context.tree.placement(t.path), {
      type: "symlink",
      mode: 0o777,
      ...ROOT,
      target: t.target,
    });
  },
};
