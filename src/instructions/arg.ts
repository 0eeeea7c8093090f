// ARG NAME[=default] ...: a build-time variable, replaced everywhere after it.
import type { Span } from "../core/source.ts";
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";

export interface ArgInstruction extends Typed {
  kind: "ARG";
  names: Array<{ name: string; span: Span }>;
}

export const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const arg: InstructionSpec<ArgInstruction> = {
  keyword: "ARG",
  summary: "Declare a build-time variable, optionally with a default; --arg NAME=VALUE overrides it.",
  syntax: ["ARG <name>[=<default>] ..."],
  example: "ARG DEBIAN_POOL=debian:pool/main",
  check(ins, report, model) {
    if (!expectCount(ins, ins.args, report, 1, Infinity, this.syntax[0]!)) return undefined;
    const names: ArgInstruction["names"] = [];
    for (const word of ins.args) {
      const eq = word.text.indexOf("=");
      const name = eq < 0 ? word.text : word.text.slice(0, eq);
      if (!NAME.test(name)) {
        report.error(
          word.span,
          "NIFTY042",
          `bad variable name ${JSON.stringify(name)}`,
          "names are letters, digits and _, not starting with a digit",
        );
        continue;
      }
      model.scope.declareArg(name, eq < 0 ? undefined : word.text.slice(eq + 1));
      names.push({ name, span: word.span });
    }
    return { kind: "ARG", span: ins.span, names };
  },
  async apply() {},
};
