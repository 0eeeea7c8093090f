// Diagnostics for people (compiler-style text with the line and a caret) and
// for machines (plain JSON data). Pure: the CLI decides where they go.
import type { Diagnostic, DiagnosticCode, Severity } from "./diagnostic.ts";
import {
  CONTROL_CHARACTER,
  escapeControl,
  escapeControls,
  forTerminal,
  maskCredentials,
  redactCredentials,
} from "./escape.ts";

export interface FormatOptions {
  color: boolean;
}

const TAB_WIDTH = 4;
const GUTTER_WIDTH = 5;

const ANSI = {
  reset: "\x1b[0m",
  bold: "\x1b[1m",
  error: "\x1b[1;31m",
  warning: "\x1b[1;35m",
  caret: "\x1b[1;32m",
  hint: "\x1b[1;36m",
} as const;

function paint(on: boolean, style: keyof typeof ANSI, text: string): string {
  return on ? `${ANSI[style]}${text}${ANSI.reset}` : text;
}

/** The physical line around `offset` without its line break: found from the offset, not by counting lines from the top. */
function sourceLine(text: string, offset: number): { text: string; start: number } {
  const start = offset <= 0 ? 0 : text.lastIndexOf("\n", Math.min(offset, text.length) - 1) + 1;
  let end = text.indexOf("\n", start);
  if (end === -1) end = text.length;
  if (end > start && text[end - 1] === "\r") end--;
  return { text: text.slice(start, end), start };
}

/** Characters a terminal gives two columns (East Asian wide and full-width, emoji); wcwidth's ranges. */
const WIDE =
  /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;
/** Characters drawn over the one before (combining marks) or not at all. */
const ZERO_WIDTH = /[\p{Mn}\p{Me}\u200b-\u200f]/u;

/**
 * Expands tabs to spaces and control characters to escapes; `columns[i]` is the terminal column
 * where code unit i starts (wide characters take two, combining marks none), `cells[i]` what it shows.
 */
function expandTabs(line: string): { cells: string[]; columns: number[] } {
  let width = 0;
  const cells: string[] = [];
  const columns: number[] = [];
  for (const c of line) {
    const shown =
      c === "\t"
        ? " ".repeat(TAB_WIDTH - (width % TAB_WIDTH))
        : CONTROL_CHARACTER.test(c)
          ? escapeControl(c)
          : c;
    for (let k = 0; k < c.length; k++) {
      columns.push(width);
      cells.push(k === 0 ? shown : "");
    }
    width += ZERO_WIDTH.test(c)
      ? 0
      : WIDE.test(c)
        ? 2
        : c === "\t" || CONTROL_CHARACTER.test(c)
          ? shown.length
          : 1;
  }
  columns.push(width);
  return { cells, columns };
}

/** The most of a line shown: a longer one is cut to a window around the caret, marked with … */
const SHOWN_COLUMNS = 320;

export function formatDiagnostic(d: Diagnostic, opts: FormatOptions): string {
  const c = opts.color;
  const where =
    d.source === undefined
      ? "niftyc"
      : d.span === undefined
        ? escapeControls(d.source.path)
        : `${escapeControls(d.source.path)}:${d.span.start.line}:${d.span.start.column}`;
  const lines = [
    `${paint(c, "bold", `${where}:`)} ${paint(c, d.severity, `${d.severity}:`)} ${forTerminal(d.message)} [${d.code}]`,
  ];
  if (d.source !== undefined && d.span !== undefined) {
    const { start, end } = d.span;
    const line = sourceLine(d.source.text, start.offset);
    const { cells, columns } = expandTabs(maskCredentials(line.text));
    const total = columns.at(-1)!;
    const from = Math.min(start.column - 1, line.text.length);
    const to = end.line === start.line ? Math.min(end.column - 1, line.text.length) : line.text.length;
    // A window of the line around the caret's start: a line of a megabyte is not printed whole.
    const left =
      total <= SHOWN_COLUMNS
        ? 0
        : Math.max(0, Math.min(columns[from]! - SHOWN_COLUMNS / 4, total - SHOWN_COLUMNS));
    const right = left + SHOWN_COLUMNS;
    const body = cells.filter((_, i) => columns[i]! >= left && columns[i]! < right).join("");
    const before = left > 0 ? "…" : "";
    const shown = `${before}${body}${total > right ? "…" : ""}`;
    const caretStart = columns[from]! - left + before.length;
    const caretEnd = Math.min(columns[Math.max(from, to)]!, right) - left + before.length;
    const caret = `^${"~".repeat(Math.max(0, caretEnd - caretStart - 1))}`;
    const gutter = " ".repeat(GUTTER_WIDTH);
    lines.push(`${String(start.line).padStart(GUTTER_WIDTH)} | ${shown}`.trimEnd());
    lines.push(`${gutter} | ${" ".repeat(caretStart)}${paint(c, "caret", caret)}`);
  }
  for (const detail of d.details ?? []) lines.push(`  ${forTerminal(detail)}`);
  if (d.hint !== undefined) lines.push(`  ${paint(c, "hint", "hint:")} ${forTerminal(d.hint)}`);
  return lines.join("\n");
}

/** Plain data for `--json`: every key always present, null when unknown. */
export interface DiagnosticJson {
  severity: Severity;
  code: DiagnosticCode;
  message: string;
  file: string | null;
  line: number | null;
  column: number | null;
  endLine: number | null;
  endColumn: number | null;
  hint: string | null;
}

export function diagnosticsToJson(ds: readonly Diagnostic[]): DiagnosticJson[] {
  return ds.map((d) => ({
    severity: d.severity,
    code: d.code,
    message: redactCredentials([d.message, ...(d.details ?? [])].join("\n")),
    file: d.source?.path ?? null,
    line: d.span?.start.line ?? null,
    column: d.span?.start.column ?? null,
    endLine: d.span?.end.line ?? null,
    endColumn: d.span?.end.column ?? null,
    hint: d.hint === undefined ? null : redactCredentials(d.hint),
  }));
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** `2 errors, 1 warning`; counts of zero are left out, and none at all is `no problems`. */
export function formatSummary(ds: readonly Diagnostic[]): string {
  let errors = 0;
  let warnings = 0;
  for (const d of ds) {
    if (d.omitted !== undefined) {
      errors += d.omitted.errors;
      warnings += d.omitted.warnings;
    } else if (d.severity === "error") errors++;
    else warnings++;
  }
  const parts: string[] = [];
  if (errors > 0) parts.push(count(errors, "error"));
  if (warnings > 0) parts.push(count(warnings, "warning"));
  return parts.length === 0 ? "no problems" : parts.join(", ");
}
