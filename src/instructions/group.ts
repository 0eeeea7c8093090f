// GROUP <name> [GID <n>]
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount, readId, readOptions, refuseRootId } from "./args.ts";
import { writeGroup } from "./accounts.ts";

export interface GroupInstruction extends Typed {
  kind: "GROUP";
  name: string;
  gid: number;
}

export const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** The next free id from 1000 up (Debian's range for ordinary accounts). */
export function nextFreeId(used: Iterable<number>): number {
  const taken = new Set(used);
  let id = 1000;
  while (taken.has(id)) id++;
  return id;
}

export const group: InstructionSpec<GroupInstruction> = {
  keyword: "GROUP",
  summary: "Add a group to /etc/group. Without GID it gets the next free id from 1000.",
  names: { declares: "group" },
  syntax: ["GROUP <name> [GID <n>]"],
  example: "GROUP wheel GID 10",
  check(ins, report, model) {
    const opts = readOptions(ins, report, { GID: "value" });
    if (!expectCount(ins, opts.positional, report, 1, 1, this.syntax[0]!)) return undefined;
    const nameWord = opts.positional[0]!;
    if (!ACCOUNT_NAME.test(nameWord.text)) {
      report.error(
        nameWord.span,
        "NIFTY070",
        `bad group name ${JSON.stringify(nameWord.text)}`,
        "lower-case letters, digits, _ and -, starting with a letter or _, at most 32",
      );
      return undefined;
    }
    const previous = model.groups.get(nameWord.text);
    if (previous !== undefined && !previous.implicit) {
      report.error(
        nameWord.span,
        "NIFTY071",
        `group ${nameWord.text} is declared twice`,
        `first declared on line ${previous.span.start.line}`,
      );
      return undefined;
    }
    const gidWord = opts.values.get("GID");
    const gid = gidWord
      ? readId(gidWord, report, "GID")
      : nameWord.text === "root"
        ? 0
        : nextFreeId([...model.groups.values()].map((g) => g.id));
    if (gid === undefined) return undefined;
    if (nameWord.text === "root" && refuseRootId(gidWord!, gid, "GID", report)) return undefined;
    const clash = [...model.groups].find(
      ([name, g]) => g.id === gid && !(g.implicit && name === nameWord.text),
    );
    if (clash) {
      report.error(
        gidWord?.span ?? nameWord.span,
        "NIFTY072",
        `GID ${gid} is already group ${clash[0]}'s`,
        clash[1].implicit ? "root always has GID 0" : `declared on line ${clash[1].span.start.line}`,
      );
      return undefined;
    }
    model.groups.set(nameWord.text, { id: gid, span: nameWord.span });
    return { kind: "GROUP", span: ins.span, name: nameWord.text, gid };
  },
  async apply(t, context) {
    await writeGroup(context, t.name, t.gid);
  },
};
