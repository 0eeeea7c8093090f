// Recipe text shown on a terminal: control characters (C0 but tab, DEL, C1)
// are written as escapes, so a recipe cannot clear the screen or move the
// cursor through a diagnostic, a progress line or a message that quotes it.

/** Control characters a value may not carry into a line-oriented file or a terminal. */
export const CONTROL_CHARACTER = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;
const CONTROL_CHARACTERS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\x1b": "\\e", "\0": "\\0" };

/** One control character as it is shown: \n, \r, \e, \0 or \xNN. */
export function escapeControl(c: string): string {
  return NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`;
}

export function escapeControls(text: string): string {
  return text.replace(CONTROL_CHARACTERS, escapeControl);
}

/** U+000A: how a message names a character. */
export function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** `scheme://user:password@host` → `scheme://***@host`: credentials in a URL are never shown. */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s\/?#@"']+@/gi;

export function redactCredentials(text: string): string {
  return text.replace(URL_CREDENTIALS, "$1***@");
}

/** What a terminal may be shown of a message: credentials redacted, control characters escaped. */
export function forTerminal(text: string): string {
  return escapeControls(redactCredentials(text));
}

/** The same with the credentials starred out character for character, so columns in a shown line stay where they were. */
export function maskCredentials(text: string): string {
  return text.replace(
    URL_CREDENTIALS,
    (all: string, scheme: string) => `${scheme}${"*".repeat(all.length - scheme.length - 1)}@`,
  );
}
