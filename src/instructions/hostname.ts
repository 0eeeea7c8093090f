// HOSTNAME <name>
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import { writeFile } from "./files.ts";

export interface HostnameInstruction extends Typed {
  kind: "HOSTNAME";
  name: string;
}

const HOST =
  /^(?=.{1,64}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const hostname: InstructionSpec<HostnameInstruction> = {
  keyword: "HOSTNAME",
  summary: "The container's host name: /etc/hostname, and Hostname= / --hostname in the run configs.",
  syntax: ["HOSTNAME <name>"],
  example: "HOSTNAME nifty",
  check(ins, report) {
    if (!expectCount(ins, ins.args, report, 1, 1, this.syntax[0]!)) return undefined;
    const word = ins.args[0]!;
    if (!HOST.test(word.text)) {
      report.error(
        word.span,
        "NIFTY094",
        `bad host name ${JSON.stringify(word.text)}`,
        "letters, digits and -, in dot-separated labels, at most 64 characters",
      );
      return undefined;
    }
    return { kind: "HOSTNAME", span: ins.span, name: word.text };
  },
  async apply(t, context) {
    await writeFile(context, "/etc/hostname", t.name + "\n", 0o644);
  },
  configure(t, config) {
    config.hostname = t.name;
  },
};
