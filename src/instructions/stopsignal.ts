// STOPSIGNAL <signal name or number>
import type { InstructionSpec, Typed } from "./spec.ts";
import { expectCount } from "./args.ts";
import { parseSignal } from "../emit/signals.ts";

export interface StopsignalInstruction extends Typed {
  kind: "STOPSIGNAL";
  name: string;
  number: number;
}

export const stopsignal: InstructionSpec<StopsignalInstruction> = {
  keyword: "STOPSIGNAL",
  summary:
    "The signal that stops the container cleanly, sent to its init. Without it niftyc chooses from the image's init: SIGUSR2 (power off) for BusyBox init, which ignores systemd's SIGRTMIN+3 and reboots on SIGTERM; SIGRTMIN+3 for systemd.",
  editor: "stopsignal",
  syntax: ["STOPSIGNAL <signal name or number>"],
  example: "STOPSIGNAL SIGUSR2",
  check(ins, report) {
    if (!expectCount(ins, ins.args, report, 1, 1, this.syntax[0]!)) return undefined;
    const word = ins.args[0]!;
    const signal = parseSignal(word.text);
    if (signal === undefined) {
      report.error(
        word.span,
        "NIFTY093",
        `unknown signal ${JSON.stringify(word.text)}`,
        "write a name such as SIGUSR2, SIGTERM or SIGRTMIN+3, or a number from 1 to 64",
      );
      return undefined;
    }
    return { kind: "STOPSIGNAL", span: ins.span, name: signal.name, number: signal.number };
  },
  configure(t, config) {
    config.stopSignal = { name: t.name, number: t.number };
  },
};
