// ENV NAME=value ...: the container's environment at run time.
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount, spanOf } from "./args.ts";
import { NAME } from "./arg.ts";

export interface EnvInstruction extends Typed {
  kind: "ENV";
  pairs: Array<[string, string]>;
}

export const env: InstructionSpec<EnvInstruction> = {
  keyword: "ENV",
  summary:
    "Set environment variables of the running container (nspawn Environment=, OCI Env, docker -e). INITTAB commands see them at boot, so a per-container value wins.",
  syntax: ["ENV <name>=<value> ..."],
  example: "ENV PORT=2200",
  check(ins, report, model) {
    if (!expectCount(ins, ins.args, report, 1, Infinity, this.syntax[0]!)) return undefined;
    // Dockerfile's old `ENV NAME value` form: one mistake, with the spelling that works.
    const [first, second] = ins.args;
    if (
      ins.args.length === 2 &&
      !first!.text.includes("=") &&
      !second!.text.includes("=") &&
      NAME.test(first!.text)
    ) {
      report.error(
        spanOf(first!.span, second!.span),
        "NIFTY043",
        `ENV needs NAME=value, got ${JSON.stringify(`${first!.text} ${second!.text}`)}`,
        `write ${first!.text}=${second!.text}`,
      );
      return undefined;
    }
    const pairs: Array<[string, string]> = [];
    for (const word of ins.args) {
      const eq = word.text.indexOf("=");
      if (eq < 0) {
        report.error(
          word.span,
          "NIFTY043",
          `ENV needs NAME=value, got ${JSON.stringify(word.text)}`,
          `write ${word.text}=<value>`,
        );
        continue;
      }
      const name = word.text.slice(0, eq);
      if (!NAME.test(name)) {
        report.error(
          word.span,
          "NIFTY042",
          `bad variable name ${JSON.stringify(name)}`,
          "names are letters, digits and _, not starting with a digit",
        );
        continue;
      }
      const value = word.text.slice(eq + 1);
      model.scope.declareEnv(name, value);
      pairs.push([name, value]);
    }
    return { kind: "ENV", span: ins.span, pairs };
  },
  configure(t, config) {
    for (const [k, v] of t.pairs) config.env.set(k, v);
  },
};
