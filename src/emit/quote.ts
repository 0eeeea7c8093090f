// Quoting for the text formats the writers produce. Each function takes a value
// that must reach its consumer unchanged and returns its spelling there.
import { NiftyError } from "../diagnostics/errors.ts";

/** Refuse values no line-based format can carry. */
export function assertOneLine(what: string, value: string): void {
  if (/[\n\r\0]/.test(value)) {
    throw new NiftyError(
      "NIFTY500",
      `${what} contains a newline or NUL byte: ${JSON.stringify(value)}`,
      "run configs are line based; remove the line break from the value",
    );
  }
}

const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX sh: bare when safe, else single quotes with ' spelled '\''. */
export function shellQuote(word: string): string {
  if (SHELL_SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

const SYSTEMD_SAFE = /^[A-Za-z0-9_@+=:,./-]+$/;

/**
 * One word of a systemd unit setting that unquotes, expands %specifiers and,
 * in Exec lines, $VARIABLES: quoted with C escapes, % and $ doubled.
 */
export function unitWord(word: string, exec: boolean): string {
  assertOneLine("value", word);
  if (SYSTEMD_SAFE.test(word)) return word;
  let escaped = word.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("%", "%%");
  if (exec) escaped = escaped.replaceAll("$", () => "$$"); // a string "$$" would mean one "$"
  return `"${escaped}"`;
}

/**
 * One word of a .nspawn list setting (Environment=, Parameters=). nspawn
 * removes quotes but keeps backslashes as they are, so single quotes carry
 * everything literally and a ' itself is spelled '"'"' (adjacent pieces join).
 */
export function nspawnWord(word: string): string {
  assertOneLine("value", word);
  if (SYSTEMD_SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** A path inside a Bind= spec, where ":" separates source, destination and options. */
export function bindPath(path: string): string {
  assertOneLine("bind path", path);
  return path.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
}

/** A Dockerfile ENV/LABEL value: double quoted, with $ and " and \ escaped (both expand variables). */
export function dockerfileValue(value: string): string {
  assertOneLine("value", value);
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("$", "\\$")}"`;
}
