// HOSTNAME <name>
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import { writeFile } from "./files.ts";

export interface HostnameInstruction extends Typed {
  kind: "HOSTNAME";
  name: string;
}

/** The rule (RFC 1123 labels, and the kernel's 64-character limit on the whole name). */
const RULE =
  "dot-separated labels of letters, digits and -, each 1 to 63 characters and not starting or ending with -; at most 64 characters in all";
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/;

/** What is wrong with a host name, or undefined. */
function hostnameProblem(name: string): string | undefined {
  if (name.length > 64) return `it has ${name.length} characters, more than 64`;
  for (const label of name.split(".")) {
    if (label === "") return "it has an empty label";
    if (label.length > 63)
      return `its label "${label.slice(0, 12)}…" has ${label.length} characters, more than 63`;
    if (/^-|-$/.test(label)) return `its label ${JSON.stringify(label)} starts or ends with -`;
    if (!LABEL.test(label))
      return `its label ${JSON.stringify(label)} holds a character other than letters, digits and -`;
  }
  return undefined;
}

export const hostname: InstructionSpec<HostnameInstruction> = {
  keyword: "HOSTNAME",
  summary: "The container's host name: /etc/hostname, and Hostname= / --hostname in the run configs.",
  syntax: ["HOSTNAME <name>"],
  example: "HOSTNAME nifty",
  check(ins, report) {
    if (!expectCount(ins, ins.args, report, 1, 1, this.syntax[0]!)) return undefined;
    const word = ins.args[0]!;
    const problem = hostnameProblem(word.text);
    if (problem !== undefined) {
      report.error(word.span, "NIFTY094", `bad host name ${JSON.stringify(word.text)}: ${problem}`, RULE);
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
