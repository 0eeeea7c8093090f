// INITTAB <action> [TTY <tty>] <command ...>: one BusyBox /etc/inittab line.
import type { Span } from "../core/source.ts";
import type { InstructionSpec, Typed, CheckModel } from "./spec.ts";
import { appendLine, editText } from "./files.ts";
import { suggest } from "../diagnostics/suggest.ts";
import { provides, warnAppletGuess } from "./user.ts";

export const ACTIONS = [
  "sysinit",
  "wait",
  "once",
  "respawn",
  "askfirst",
  "shutdown",
  "restart",
  "ctrlaltdel",
] as const;
export type InittabAction = (typeof ACTIONS)[number];

export interface InittabInstruction extends Typed {
  kind: "INITTAB";
  action: InittabAction;
  tty: string;
  /** The command as written, ARG replaced, ENV references left for the shell. */
  command: string;
  commandSpan: Span;
}

/** BusyBox init runs a command through /bin/sh when it contains any of these. */
const SHELL_METACHARACTERS = /[~`!$^&*()=|\\{}[\];"'<>?]/;
/** init's PATH (BusyBox init.c). */
export const INIT_PATH = ["/sbin", "/usr/sbin", "/bin", "/usr/bin"];

/** The program init will exec for a command: /bin/sh for shell syntax, else its first word. */
export function programOf(command: string): string {
  const body = command.startsWith("-") ? command.slice(1) : command;
  if (SHELL_METACHARACTERS.test(body)) return "/bin/sh";
  return body.trim().split(/[ \t]+/)[0] ?? "";
}

/** Candidate paths for a program name, as init's exec would search them. */
export function programPaths(program: string): string[] {
  return program.includes("/") ? [program] : INIT_PATH.map((d) => `${d}/${program}`);
}

export const inittab: InstructionSpec<InittabInstruction> = {
  keyword: "INITTAB",
  init: "busybox",
  summary:
    "Add a line to BusyBox's /etc/inittab, in recipe order. ENV variables in the command are left for the shell at boot, so each container's environment applies; ARG variables are replaced at build.",
  syntax: [
    "INITTAB <sysinit|wait|once|respawn|askfirst|shutdown|restart|ctrlaltdel> [TTY <tty>] <command ...>",
  ],
  example: "INITTAB respawn /bin/dropbear -F -R -w -p ${PORT}",
  check(ins, report, model) {
    const [actionWord, ...rest] = ins.args;
    if (actionWord === undefined) {
      report.error(
        ins.keywordSpan,
        "NIFTY040",
        "INITTAB needs an action and a command",
        `usage: ${this.syntax[0]}`,
      );
      return undefined;
    }
    const action = actionWord.text.toLowerCase() as InittabAction;
    if (!ACTIONS.includes(action)) {
      const near = suggest(actionWord.text, ACTIONS);
      const hint = near ? `did you mean ${near}?` : `actions: ${ACTIONS.join(", ")}`;
      const message = `unknown inittab action ${JSON.stringify(actionWord.text)}`;
      report.error(actionWord.span, "NIFTY086", message, hint, () => near);
      return undefined;
    }
    let words = rest;
    let tty = "";
    if (words[0]?.text.toUpperCase() === "TTY") {
      ins.optionWords?.push(words[0].span);
      const ttyWord = words[1];
      if (ttyWord === undefined || !/^[A-Za-z0-9/_.-]+$/.test(ttyWord.text)) {
        report.error(
          ttyWord?.span ?? words[0]!.span,
          "NIFTY087",
          "TTY needs a terminal name such as console or tty1",
        );
        return undefined;
      }
      tty = ttyWord.text.replace(/^\/dev\//, "");
      // init opens /dev/<tty>: a name with an empty, "." or ".." part would open a file elsewhere.
      if (tty.split("/").some((part) => part === "" || part === "." || part === "..")) {
        report.error(
          ttyWord.span,
          "NIFTY087",
          `TTY ${JSON.stringify(ttyWord.text)} is not a terminal under /dev (init opens /dev/<tty>)`,
          "name the terminal as /dev has it: console, tty1, ttyS0 or pts/0",
        );
        return undefined;
      }
      words = words.slice(2);
    }
    if (words.length === 0) {
      report.error(actionWord.span, "NIFTY040", "INITTAB needs a command to run", `usage: ${this.syntax[0]}`);
      return undefined;
    }
    const commandSpan = { start: words[0]!.span.start, end: words[words.length - 1]!.span.end };
    const command = words.map((w) => w.shell).join(" ");
    if (command.includes("#")) {
      report.error(
        commandSpan,
        "NIFTY088",
        "BusyBox init cuts an inittab line at #",
        "move the command into a script (FILE … MODE 0755) and run that",
      );
      return undefined;
    }
    checkProgram(command, commandSpan, report, model);
    return { kind: "INITTAB", span: ins.span, action, tty, command, commandSpan };
  },
  checkWhole(t, report, model) {
    if (!model.rootPasswordLogin) return;
    const words = t.command.split(/\s+/);
    const runsDropbear =
      words.some((w) => /(^|\/)dropbear$/.test(w)) || /(^|\/)dropbear$/.test(programOf(t.command));
    if (runsDropbear && !words.includes("-w") && !words.some((w) => /^-[A-Za-z]*w/.test(w))) {
      report.warn(
        t.commandSpan,
        "NIFTY014",
        "root can log in over SSH with a password",
        "add -w to dropbear's options to refuse root logins (or LOCKED on USER root)",
      );
    }
  },
  verify(t, tree, report) {
    const program = programOf(t.command);
    if (program !== "" && !programPaths(program).some((p) => tree.lookup(p)?.node.type === "file")) {
      report.error(
        t.commandSpan,
        "NIFTY222",
        `init cannot start ${program}: it is not in the image`,
        program.includes("/")
          ? "check the path, or FETCH/LINK the program"
          : `init searches ${INIT_PATH.join(":")}`,
      );
    }
  },
  async apply(t, context) {
    await editText(
      context,
      "/etc/inittab",
      (text) => appendLine(text, `${t.tty}::${t.action}:${t.command}`),
      0o644,
    );
  },
};

function checkProgram(
  command: string,
  span: Span,
  report: Parameters<InstructionSpec<InittabInstruction>["check"]>[1],
  model: CheckModel,
): void {
  const program = programOf(command);
  if (program === "") return;
  if (!programPaths(program).some((p) => provides(model, p))) {
    report.error(
      span,
      "NIFTY089",
      `${program} is not provided by any earlier instruction`,
      program === "/bin/sh"
        ? "this command uses shell syntax, so init runs it with /bin/sh: provide a shell (LINK /bin/busybox APPLETS)"
        : "FETCH, COPY or LINK it before this line",
    );
  } else warnAppletGuess(model, programPaths(program), span, report);
}
