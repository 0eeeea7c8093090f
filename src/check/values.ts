// Values after substitution, before any instruction reads them: every word of
// a line (heredoc bodies aside) lands in a line-oriented file or run config
// (inittab, passwd, group, shadow, units, .nspawn, Dockerfile, docker-run.sh)
// or a path, so none may hold a control character. The diagnostic points at
// the word and names where the character came from: the recipe's own text,
// an ARG's or ENV's value, or the --arg that set it.
import type { Word } from "../../grammar/syntax.ts";
import type { Reporter } from "../diagnostics/reporter.ts";
import { CONTROL_CHARACTER, codePoint } from "../diagnostics/escape.ts";
import type { Scope, Value } from "../instructions/scope.ts";

/** A shown value: long ones cut, so the message stays a line. */
function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** False (after reporting NIFTY022) when the word's value holds a control character. */
export function checkValue(word: Word, value: Value, scope: Scope, report: Reporter): boolean {
  const found = CONTROL_CHARACTER.exec(value.text);
  if (found === null) return true;
  let from = "written in the recipe";
  for (const part of word.parts) {
    if (part.kind === "text") {
      if (CONTROL_CHARACTER.test(part.value)) break;
      continue;
    }
    const v = scope.env.get(part.name) ?? scope.args.get(part.name) ?? part.default ?? "";
    if (!CONTROL_CHARACTER.test(v)) continue;
    from = scope.env.has(part.name)
      ? `from ENV ${part.name}`
      : scope.overrides.has(part.name)
        ? `from --arg ${part.name}`
        : `from ARG ${part.name}`;
    break;
  }
  report.error(
    value.span,
    "NIFTY022",
    `${shown(value.text)} holds the control character ${codePoint(found[0])} (${from})`,
    "a value lands in a line of a file such as /etc/inittab, /etc/passwd, a unit or a Dockerfile, where a line break or control character would change its meaning; use FILE with a heredoc for multi-line content",
  );
  return false;
}
