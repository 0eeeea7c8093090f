// DIR <path>... [MODE <octal>] [OWNER <user>:<group>]
import type { InstructionSpec, Typed } from "./spec.ts";
import {
  expectCount,
  nearOption,
  readImagePath,
  readMode,
  readOptions,
  readOwner,
  type OptionKind,
  type Owner,
} from "./args.ts";
import { ROOT } from "./files.ts";

export interface DirInstruction extends Typed {
  kind: "DIR";
  paths: string[];
  mode: number;
  owner: Owner;
}

/** DIR's options, for readOptions and for what a misspelt one was meant to be. */
const OPTIONS: Record<string, OptionKind> = { MODE: "value", OWNER: "value" };

export const dir: InstructionSpec<DirInstruction> = {
  keyword: "DIR",
  summary:
    "Create directories (and their parents, as 0755 root) with a mode and owner; an existing directory gets the new mode and owner.",
  names: { uses: { OWNER: "owner" } },
  syntax: ["DIR <path>... [MODE <octal>] [OWNER <user|uid>:<group|gid>]"],
  example: "DIR /tmp /var/tmp MODE 1777",
  check(ins, report, model) {
    const opts = readOptions(ins, report, OPTIONS);
    if (!expectCount(ins, opts.positional, report, 1, Infinity, this.syntax[0]!)) return undefined;
    const modeWord = opts.values.get("MODE");
    const ownerWord = opts.values.get("OWNER");
    const mode = modeWord ? readMode(modeWord, report) : 0o755;
    const owner = ownerWord ? readOwner(ownerWord, report, model) : ROOT;
    // A misspelt option (OWNR) and its value read as two more paths: say what they probably are.
    const names = Object.keys(OPTIONS);
    const paths = opts.positional.map((w, i) => {
      const near = nearOption(w, names);
      const before = nearOption(opts.positional[i - 1], names);
      const hint = near
        ? `did you mean ${near}?`
        : before
          ? `the value of ${opts.positional[i - 1]!.text}: did you mean ${before}?`
          : undefined;
      return readImagePath(w, report, hint);
    });
    if (mode === undefined || owner === undefined || paths.some((p) => p === undefined)) return undefined;
    for (const [i, path] of (paths as string[]).entries()) {
      try {
        model.tree.mkdirp(path);
      } catch (error) {
        report.error(opts.positional[i]!.span, "NIFTY052", (error as Error).message);
        return undefined;
      }
    }
    return { kind: "DIR", span: ins.span, paths: paths as string[], mode, owner };
  },
  async apply(t, context) {
    for (const path of t.paths) {
      const where = context.tree.mkdirp(path);
      context.tree.set(where, { type: "dir", mode: t.mode, ...t.owner });
    }
  },
};
