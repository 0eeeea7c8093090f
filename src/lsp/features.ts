// What the language server answers, worked out from the syntax tree and the
// diagnostics of checkSource (the one front end) and the instruction table:
// no protocol here, only LSP-shaped data, so tests can call it directly.
import type {
  CodeAction,
  CompletionItem,
  Diagnostic as LspDiagnostic,
  DocumentSymbol,
  Hover,
  Range,
} from "vscode-languageserver";
import type { InstructionNode, SyntaxTree, Word } from "../../grammar/syntax.ts";
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { Position, Span } from "../core/source.ts";
import { INSTRUCTIONS, isKeyword } from "../instructions/index.ts";
import type { InstructionSpec, Typed } from "../instructions/spec.ts";
import { defaultStopSignal } from "../emit/signals.ts";

/** LSP's numbers (vscode-languageserver-types), spelt out so this module loads no protocol code. */
const SEVERITY = { error: 1, warning: 2 } as const;
const COMPLETION = { keyword: 14, property: 10, variable: 6, module: 9, snippet: 15 } as const;
const SYMBOL = { module: 2, variable: 13, event: 24, key: 20, package: 4 } as const;

export interface PackageHint {
  name: string;
  version: string;
  description?: string;
}

/** The packages completion offers: every name, and a hint decoded for a name when it is shown. */
export interface PackageCatalog {
  /** Sorted (as `<` orders strings). */
  names: readonly string[];
  hint(name: string): PackageHint | undefined;
  /** Lets go of the stored indices it reads. */
  close(): Promise<void>;
}

/** No packages to offer: no lock, no stored index, a recipe with no path, or a store that could not be read. */
export const NO_PACKAGES: PackageCatalog = { names: [], hint: () => undefined, close: async () => {} };

function specOf(keyword: string): InstructionSpec<Typed> | undefined {
  const upper = keyword.toUpperCase();
  return isKeyword(upper) ? (INSTRUCTIONS[upper] as unknown as InstructionSpec<Typed>) : undefined;
}

const ORIGIN: Position = { offset: 0, line: 1, column: 1 };

export function toRange(span: Span | undefined): Range {
  const s = span ?? { start: ORIGIN, end: ORIGIN };
  return {
    start: { line: s.start.line - 1, character: s.start.column - 1 },
    end: { line: s.end.line - 1, character: s.end.column - 1 },
  };
}

/** A diagnostic as `niftyc check` words it: the code, the message, the hint and details under it. */
export function toLspDiagnostic(d: Diagnostic): LspDiagnostic {
  const lines = [d.message, ...(d.details ?? []), ...(d.hint ? [`hint: ${d.hint}`] : [])];
  return {
    range: toRange(d.span),
    severity: SEVERITY[d.severity],
    code: d.code,
    source: "niftyc",
    message: lines.join("\n"),
    ...(d.replacement !== undefined ? { data: { replacement: d.replacement } } : {}),
  };
}

/** Quick fixes: a diagnostic that carries a did-you-mean replacement, applied to its range. */
function replacements(uri: string, diagnostics: readonly LspDiagnostic[]): CodeAction[] {
  const actions: CodeAction[] = [];
  for (const d of diagnostics) {
    const replacement = (d.data as { replacement?: unknown } | undefined)?.replacement;
    if (typeof replacement !== "string") continue;
    actions.push({
      title: `Change to ${replacement}`,
      kind: "quickfix",
      diagnostics: [d],
      isPreferred: true,
      edit: { changes: { [uri]: [{ range: d.range, newText: replacement }] } },
    });
  }
  return actions;
}

/** The code check gives a PACKAGE line with no ARCHIVE line before it. */
const NO_ARCHIVE = "NIFTY068";

/** For NIFTY068: the ARCHIVE spec's example line (Debian's archive), inserted before the first PACKAGE line. */
function missingArchive(uri: string, tree: SyntaxTree, diagnostics: readonly LspDiagnostic[]): CodeAction[] {
  const d = diagnostics.find((x) => x.code === NO_ARCHIVE);
  const first = tree.instructions.find((i) => specOf(i.keyword)?.editor === "packages");
  const archive = Object.values(INSTRUCTIONS).find(
    (s) => (s as unknown as InstructionSpec<Typed>).editor === "archive",
  );
  if (d === undefined || first === undefined || archive === undefined) return [];
  const line = archive.example.split("\n")[0]!;
  const at = { line: first.span.start.line - 1, character: 0 };
  return [
    {
      title: `Add ${line} before the first PACKAGE`,
      kind: "quickfix",
      diagnostics: [d],
      isPreferred: true,
      edit: { changes: { [uri]: [{ range: { start: at, end: at }, newText: `${line}\n` }] } },
    },
  ];
}

/**
 * Without a STOPSIGNAL line the build chooses the signal from the image's init (its note says
 * "chosen for … init"); check says nothing. Where a line shows the init (INITTAB: BusyBox;
 * SERVICE: systemd), a source action writes that choice down after it.
 */
function addStopSignal(uri: string, tree: SyntaxTree): CodeAction[] {
  if (tree.instructions.some((i) => specOf(i.keyword)?.editor === "stopsignal")) return [];
  const line = tree.instructions.find((i) => specOf(i.keyword)?.init !== undefined);
  const init = line && specOf(line.keyword)?.init;
  if (line === undefined || init === undefined) return [];
  const signal = defaultStopSignal(init).name;
  const at = toRange(line.span).end;
  return [
    {
      title: `Add STOPSIGNAL ${signal} (the build's choice for ${init === "busybox" ? "BusyBox" : init} init)`,
      kind: "source",
      edit: { changes: { [uri]: [{ range: { start: at, end: at }, newText: `\nSTOPSIGNAL ${signal}` }] } },
    },
  ];
}

/** The code actions for a range: quick fixes from its diagnostics' hints, and source actions for the recipe. */
export function codeActions(
  uri: string,
  diagnostics: readonly LspDiagnostic[],
  tree: SyntaxTree,
  only?: readonly string[],
): CodeAction[] {
  const actions = [...replacements(uri, diagnostics), ...missingArchive(uri, tree, diagnostics)];
  actions.push(...addStopSignal(uri, tree));
  if (only === undefined || only.length === 0) return actions;
  return actions.filter((a) => only.some((k) => a.kind === k || a.kind?.startsWith(`${k}.`)));
}

const optionsOf = new Map<string, readonly string[]>();

/** The option words of an instruction, read from its syntax lines (MODE, OWNER, FILES …), once. */
export function optionWords(spec: InstructionSpec<Typed>): readonly string[] {
  let known = optionsOf.get(spec.keyword);
  if (known === undefined) {
    known = readOptionWords(spec);
    optionsOf.set(spec.keyword, known);
  }
  return known;
}

function readOptionWords(spec: InstructionSpec<Typed>): string[] {
  const words = new Set<string>();
  for (const line of spec.syntax) {
    const bare = line.replace(/<<\w+/g, " ").replace(/<[^>]*>/g, " ");
    for (const m of bare.matchAll(/[A-Z][A-Z0-9-]*[A-Z0-9]/g)) if (m[0] !== spec.keyword) words.add(m[0]);
  }
  return [...words];
}

/** The first syntax line as a snippet: its required <placeholders> as tab stops, optional parts left out. */
export function syntaxSnippet(spec: InstructionSpec<Typed>): string {
  let rest = spec.syntax[0]!.slice(spec.keyword.length);
  for (let previous = ""; previous !== rest; ) {
    previous = rest;
    rest = rest.replace(/\[[^[\]]*\]/g, "");
  }
  let stop = 0;
  const body = rest
    .replace(/\.\.\.|…/g, "")
    .replace(/[$}\\]/g, (c) => `\\${c}`)
    .replace(/<([^>]*)>/g, (_, name: string) => `\${${++stop}:${name.replace(/[|]/g, "/")}}`)
    .replace(/\s+/g, " ")
    .trimEnd();
  return `${spec.keyword}${body}`;
}

let keywords: readonly CompletionItem[] | undefined;

/** One item per instruction: the table does not change, so it is built once. */
function keywordItems(): CompletionItem[] {
  keywords ??= Object.values(INSTRUCTIONS).map((s) => {
    const spec = s as unknown as InstructionSpec<Typed>;
    return {
      label: spec.keyword,
      kind: COMPLETION.keyword,
      detail: spec.syntax.join("\n"),
      documentation: {
        kind: "markdown",
        value: `${spec.summary}\n\n\`\`\`niftyfile\n${spec.example}\n\`\`\``,
      },
      insertText: syntaxSnippet(spec),
      insertTextFormat: 2,
    };
  });
  return [...keywords];
}

/** Names declared by ARG and ENV-like lines (their spec says `editor: "variables"`), with where. */
export function declaredNames(tree: SyntaxTree): Array<{ name: string; span: Span }> {
  const names: Array<{ name: string; span: Span }> = [];
  for (const ins of tree.instructions) {
    if (specOf(ins.keyword)?.editor !== "variables") continue;
    for (const word of ins.args) {
      const first = word.parts[0];
      if (first?.kind !== "text") continue;
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(first.value);
      if (m === null) continue;
      const start = word.span.start;
      const plain = word.raw.startsWith(m[0]);
      const end = plain
        ? { offset: start.offset + m[0].length, line: start.line, column: start.column + m[0].length }
        : word.span.end;
      names.push({ name: m[0], span: { start, end } });
    }
  }
  return names;
}

/** The archives the recipe declares: name and suites of each `editor: "archive"` line. */
export function declaredArchives(tree: SyntaxTree): Array<{ archive: string; suites: string[] }> {
  const out: Array<{ archive: string; suites: string[] }> = [];
  for (const ins of tree.instructions) {
    const spec = specOf(ins.keyword);
    if (spec?.editor !== "archive") continue;
    const options = new Set(optionWords(spec));
    const words = ins.args.map((w) => w.raw);
    const end = words.findIndex((w, i) => i > 0 && options.has(w.toUpperCase()));
    if (words.length > 1)
      out.push({ archive: words[0]!, suites: words.slice(1, end === -1 ? undefined : end) });
  }
  return out;
}

/** The instruction whose logical line (not its heredoc bodies) holds the offset. */
function instructionAt(tree: SyntaxTree, text: string, offset: number): InstructionNode | undefined {
  let found: InstructionNode | undefined;
  for (const ins of tree.instructions) if (ins.span.start.offset <= offset) found = ins;
  if (found === undefined) return undefined;
  let last = found.keywordSpan.end.offset;
  for (const w of found.args) last = Math.max(last, w.span.end.offset);
  for (const h of found.heredocs) last = Math.max(last, h.markerSpan.end.offset);
  for (const c of found.continuations) last = Math.max(last, c.end.offset);
  let lineEnd = text.indexOf("\n", last);
  if (lineEnd === -1) lineEnd = text.length;
  return offset <= lineEnd ? found : undefined;
}

function wordAt(ins: InstructionNode, offset: number): Word | undefined {
  return ins.args.find((w) => w.span.start.offset <= offset && offset <= w.span.end.offset);
}

export interface CompletionInput {
  tree: SyntaxTree;
  text: string;
  offset: number;
  packages?: () => Promise<PackageCatalog>;
}

/** What may be typed at the offset: a keyword, an option, a declared name after `${`, a package. */
export async function complete(
  input: CompletionInput,
): Promise<{ items: CompletionItem[]; isIncomplete: boolean }> {
  const { tree, text, offset } = input;
  const lineStart = text.lastIndexOf("\n", offset - 1) + 1;
  const before = text.slice(lineStart, offset);
  const variable = /\$\{?([A-Za-z0-9_]*)$/.exec(before);
  if (variable !== null && (before.endsWith("${" + variable[1]) || variable[1] !== "")) {
    const seen = new Set<string>();
    const items: CompletionItem[] = [];
    for (const d of declaredNames(tree)) {
      if (seen.has(d.name)) continue;
      seen.add(d.name);
      items.push({
        label: d.name,
        kind: COMPLETION.variable,
        detail: `declared on line ${d.span.start.line}`,
      });
    }
    return { items, isIncomplete: false };
  }
  const ins = instructionAt(tree, text, offset);
  if (ins === undefined || offset <= ins.keywordSpan.end.offset) {
    return /^[ \t]*[A-Za-z0-9_-]*$/.test(before)
      ? { items: keywordItems(), isIncomplete: false }
      : { items: [], isIncomplete: false };
  }
  const spec = specOf(ins.keyword);
  if (spec === undefined) return { items: [], isIncomplete: false };
  const options: CompletionItem[] = optionWords(spec).map((o) => ({
    label: o,
    kind: COMPLETION.property,
    detail: spec.syntax.join("\n"),
  }));
  if (spec.editor !== "packages" || input.packages === undefined)
    return { items: options, isIncomplete: false };
  const typed = wordAt(ins, offset);
  const prefix = typed ? text.slice(typed.span.start.offset, offset) : "";
  const catalog = await input.packages();
  const LIMIT = 200;
  const shown = namesStartingWith(catalog.names, prefix, LIMIT + 1);
  const items = shown.slice(0, LIMIT).map((name): CompletionItem => {
    const p = catalog.hint(name);
    return {
      label: name,
      kind: COMPLETION.module,
      ...(p ? { detail: p.version } : {}),
      ...(p?.description ? { documentation: p.description } : {}),
    };
  });
  return {
    items: [...items, ...options.filter((o) => o.label.startsWith(prefix.toUpperCase()))],
    isIncomplete: shown.length > LIMIT,
  };
}

/** Up to `limit` names that start with `prefix`, from sorted names (a binary search, then a walk). */
function namesStartingWith(names: readonly string[], prefix: string, limit: number): string[] {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! < prefix) lo = mid + 1;
    else hi = mid;
  }
  const out: string[] = [];
  for (let i = lo; i < names.length && out.length < limit && names[i]!.startsWith(prefix); i++)
    out.push(names[i]!);
  return out;
}

/** The spec's summary, syntax and example, over the keyword. */
export function hover(tree: SyntaxTree, offset: number): Hover | null {
  const ins = tree.instructions.find(
    (i) => i.keywordSpan.start.offset <= offset && offset <= i.keywordSpan.end.offset,
  );
  if (ins === undefined) return null;
  const spec = specOf(ins.keyword);
  if (spec === undefined) return null;
  const block = (code: string) => `\`\`\`niftyfile\n${code}\n\`\`\``;
  const syntax = block(spec.syntax.join("\n"));
  const value = `**${spec.keyword}**: ${spec.summary}\n\n${syntax}\n\nExample:\n\n${block(spec.example)}`;
  return { contents: { kind: "markdown", value }, range: toRange(ins.keywordSpan) };
}

/** One symbol per instruction: its keyword and first word, the whole instruction as its range. */
export function symbols(tree: SyntaxTree): DocumentSymbol[] {
  return tree.instructions.map((ins) => {
    const spec = specOf(ins.keyword);
    const first = ins.args[0]?.raw ?? "";
    const kind =
      spec?.editor === "variables"
        ? SYMBOL.variable
        : spec?.editor === "archive"
          ? SYMBOL.module
          : spec?.editor === "packages"
            ? SYMBOL.package
            : SYMBOL.key;
    let name =
      `${ins.keyword.toUpperCase()} ${first.length > 60 ? `${first.slice(0, 57)}...` : first}`.trim();
    if (name === "") name = "?";
    return { name, kind, range: toRange(ins.span), selectionRange: toRange(ins.keywordSpan) };
  });
}
