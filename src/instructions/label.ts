// LABEL <key>=<value> ...
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";

export interface LabelInstruction extends Typed {
  kind: "LABEL";
  pairs: Array<[string, string]>;
}

export const label: InstructionSpec<LabelInstruction> = {
  keyword: "LABEL",
  summary: "Metadata for the image config (OCI Labels, Dockerfile LABEL).",
  syntax: ["LABEL <key>=<value> ..."],
  example: "LABEL org.opencontainers.image.title=nifty",
  check(ins, report) {
    if (!expectCount(ins, ins.args, report, 1, Infinity, this.syntax[0]!)) return undefined;
    const pairs: Array<[string, string]> = [];
    for (const word of ins.args) {
      const eq = word.text.indexOf("=");
      if (eq <= 0) {
        report.error(
          word.span,
          "NIFTY098",
          `LABEL needs key=value, got ${JSON.stringify(word.text)}`,
          "write <key>=<value>; quote a value with spaces",
        );
        continue;
      }
      pairs.push([word.text.slice(0, eq), word.text.slice(eq + 1)]);
    }
    return { kind: "LABEL", span: ins.span, pairs };
  },
  configure(t, config) {
    for (const [k, v] of t.pairs) config.labels.set(k, v);
  },
};
