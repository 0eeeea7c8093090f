// Control-file stanzas (deb822) as the I/O side reads and writes them: the
// signed Release text, a .deb's control file, the dpkg status file. Field
// order and each value's exact text are kept, so a stanza read from a package
// can be written back the way dpkg would. (The bulk Packages index has its own
// streaming reader in index.ts.)
import { NiftyError } from "../diagnostics/errors.ts";

/** One field: its name as written, and its value without the space after the colon. */
export interface Field {
  name: string;
  /**
   * The first line's text, then `\n` and each continuation line as written
   * (with its leading space). A field whose first line is empty (Conffiles:)
   * starts with `\n`. Trailing whitespace is removed, as dpkg does.
   */
  value: string;
}

/**
 * Split text into stanzas of fields. Blank lines separate stanzas; `#`
 * comment lines are skipped only where `comments` is set (dpkg's control
 * files allow them; Release and status do not have them). `what` names the
 * text in errors.
 */
export function parseStanzas(text: string, what: string, options: { comments?: boolean } = {}): Field[][] {
  const stanzas: Field[][] = [];
  let current: Field[] = [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "");
    if (options.comments && line.startsWith("#")) continue;
    if (line.trim() === "") {
      if (current.length > 0) stanzas.push(current);
      current = [];
      continue;
    }
    if (line.startsWith(" ") || line.startsWith("\t")) {
      const last = current.at(-1);
      if (!last) throw malformed(what, i + 1, "a continuation line with no field before it");
      last.value += `\n${line.trimEnd()}`;
      continue;
    }
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!/^[!-9;-~][!-9;-~]*$/.test(name) || name.startsWith("-"))
      throw malformed(what, i + 1, `${JSON.stringify(line.slice(0, 60))} is not "Field: value"`);
    if (current.some((f) => f.name.toLowerCase() === name.toLowerCase()))
      throw malformed(what, i + 1, `field ${name} is given twice in one stanza`);
    current.push({ name, value: line.slice(colon + 1).trim() });
  }
  if (current.length > 0) stanzas.push(current);
  return stanzas;
}

/** The value of a field, matched without regard to case as deb822 says. */
export function fieldValue(stanza: readonly Field[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return stanza.find((f) => f.name.toLowerCase() === lower)?.value;
}

/**
 * A binary package's source package, from its `Source` field: `name`, or `name (version)` where
 * the source's version differs (Debian Policy 5.6.1). Absent when the field is, which means the
 * source has the package's own name and version; a value that is neither form is ignored.
 */
export function sourcePackage(stanza: readonly Field[]): { name: string; version?: string } | undefined {
  const match = /^([a-z0-9][a-z0-9+.-]+)(?:\s+\(([^()\s]+)\))?$/.exec(fieldValue(stanza, "Source") ?? "");
  if (match === null) return undefined;
  return match[2] === undefined ? { name: match[1]! } : { name: match[1]!, version: match[2] };
}

/** A stanza as text, one field a line, ending with a newline. */
export function formatStanza(stanza: readonly Field[]): string {
  return stanza
    .map((f) => `${f.name}:${f.value.startsWith("\n") || f.value === "" ? "" : " "}${f.value}\n`)
    .join("");
}

function malformed(what: string, line: number, why: string): NiftyError {
  return new NiftyError(
    "NIFTY624",
    `${what}, line ${line}: ${why}`,
    "the file is not valid Debian control data (deb822); it may be truncated or not what it claims to be",
  );
}
