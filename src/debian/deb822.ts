// deb822 (the control-file syntax of Packages, InRelease, apt's .sources and
// our lockfile): stanzas of `Field: value` lines separated by blank lines,
// values folded onto continuation lines that start with a space or tab.
// Synchronous and whole-text; keeps each field's line for error messages.

export interface Deb822Field {
  /** As written; deb822 field names compare case-insensitively. */
  name: string;
  /**
   * The first line's text trimmed, then each continuation line (its one
   * leading space or tab removed, trailing whitespace removed) after "\n".
   * A multi-line list written from the line after the name starts with "\n".
   */
  value: string;
  /** 1-based line of the field's name. */
  line: number;
  /** For a multi-line value, the line of each of its lines (comment lines may sit between). */
  lines?: number[];
}

export interface Deb822Stanza {
  fields: Deb822Field[];
  /** 1-based line of its first field. */
  line: number;
}

export interface Deb822Problem {
  line: number;
  message: string;
}

const FIELD_NAME = /^[!-9;-~]+$/;

/** Every stanza of `text`; lines it cannot read are problems, and reading goes on. */
export function parseStanzas(text: string): { stanzas: Deb822Stanza[]; problems: Deb822Problem[] } {
  const stanzas: Deb822Stanza[] = [];
  const problems: Deb822Problem[] = [];
  let current: Deb822Stanza | undefined;
  let field: Deb822Field | undefined;
  let seen = new Set<string>();
  const lines = text.split("\n");
  // A final newline ends the last line; it does not start another.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const line = i + 1;
    if (raw.trim() === "") {
      current = undefined;
      field = undefined;
      continue;
    }
    if (raw.startsWith("#")) continue;
    const first = raw.charCodeAt(0);
    if (first === 32 || first === 9) {
      if (field === undefined) {
        problems.push({
          line,
          message: "continuation line (starting with a space) without a field before it",
        });
        continue;
      }
      field.value += "\n" + raw.slice(1).trimEnd();
      (field.lines ??= [field.line]).push(line);
      continue;
    }
    const colon = raw.indexOf(":");
    if (colon < 0) {
      problems.push({ line, message: `expected 'Field: value', found '${raw.trimEnd()}'` });
      field = undefined;
      continue;
    }
    const name = raw.slice(0, colon);
    if (!FIELD_NAME.test(name) || name.startsWith("-")) {
      problems.push({ line, message: `invalid field name '${name}'` });
      field = undefined;
      continue;
    }
    if (current === undefined) {
      current = { fields: [], line };
      stanzas.push(current);
      seen = new Set();
    }
    const key = name.toLowerCase();
    if (seen.has(key)) {
      problems.push({ line, message: `field '${name}' appears twice in one stanza` });
      field = undefined;
      continue;
    }
    seen.add(key);
    field = { name, value: raw.slice(colon + 1).trim(), line };
    current.fields.push(field);
  }
  return { stanzas, problems };
}

/**
 * One stanza's text, each line ending in "\n". A value with "\n" is folded
 * onto continuation lines; parseStanzas gives the same value back, so values
 * must not have lines that are empty (after the first), or that end in
 * whitespace, or a first line that starts with it.
 */
export function formatStanza(fields: ReadonlyArray<readonly [name: string, value: string]>): string {
  let out = "";
  for (const [name, value] of fields) {
    if (!FIELD_NAME.test(name) || name.startsWith("-") || name.startsWith("#"))
      throw new TypeError(`deb822: invalid field name '${name}'`);
    const [head = "", ...rest] = value.split("\n");
    if (head !== head.trim())
      throw new TypeError(`deb822: field ${name}: first line has surrounding whitespace`);
    if (rest.some((l) => l.trim() === "" || l !== l.trimEnd()))
      throw new TypeError(`deb822: field ${name}: a continuation line is empty or ends in whitespace`);
    out += head === "" ? `${name}:\n` : `${name}: ${head}\n`;
    for (const l of rest) out += ` ${l}\n`;
  }
  return out;
}
