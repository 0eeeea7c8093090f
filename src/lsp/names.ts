// Definitions and references of the names a recipe declares: ARG/ENV
// variables (used as ${NAME}), USER and GROUP accounts (used by OWNER
// user:group and USER … GROUPS a,b) and ARCHIVE names. Read from the syntax
// tree and the instruction specs' `editor` and `names` fields only.
import type { Location } from "vscode-languageserver";
import type { InstructionNode, SyntaxTree, Word } from "../../grammar/syntax.ts";
import type { Span } from "../core/source.ts";
import { INSTRUCTIONS, isKeyword } from "../instructions/index.ts";
import type { InstructionSpec, NameKind, Typed } from "../instructions/spec.ts";
import { declaredNames, toRange } from "./features.ts";

type Kind = NameKind | "variable";

interface NameRef {
  kind: Kind;
  name: string;
  span: Span;
  declaration: boolean;
}

function specOf(keyword: string): InstructionSpec<Typed> | undefined {
  const upper = keyword.toUpperCase();
  return isKeyword(upper) ? (INSTRUCTIONS[upper] as unknown as InstructionSpec<Typed>) : undefined;
}

/** A piece of a word, `from` characters in: its own span when the word is written as it reads, else the word's. */
function pieceSpan(word: Word, from: number, length: number): Span {
  const s = word.span;
  const plain = s.start.line === s.end.line && s.end.offset - s.start.offset === word.raw.length;
  if (!plain) return s;
  return {
    start: { offset: s.start.offset + from, line: s.start.line, column: s.start.column + from },
    end: {
      offset: s.start.offset + from + length,
      line: s.start.line,
      column: s.start.column + from + length,
    },
  };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The names in a word split at `separator`, each with its kind (numbers and substitutions left out). */
function namesIn(word: Word, kinds: readonly NameKind[], separator: string): NameRef[] {
  if (word.parts.some((p) => p.kind !== "text")) return [];
  const refs: NameRef[] = [];
  let at = 0;
  word.raw.split(separator).forEach((piece, i) => {
    const kind = kinds[Math.min(i, kinds.length - 1)]!;
    if (NAME.test(piece))
      refs.push({ kind, name: piece, span: pieceSpan(word, at, piece.length), declaration: false });
    at += piece.length + separator.length;
  });
  return refs;
}

function accountRefs(ins: InstructionNode, spec: InstructionSpec<Typed>): NameRef[] {
  const refs: NameRef[] = [];
  const declares = spec.names?.declares;
  const first = ins.args[0];
  if (declares !== undefined && first !== undefined && first.parts.every((p) => p.kind === "text"))
    refs.push({ kind: declares, name: first.raw, span: first.span, declaration: true });
  const uses = spec.names?.uses ?? {};
  ins.args.forEach((word, i) => {
    const use = uses[word.raw.toUpperCase()];
    const value = ins.args[i + 1];
    if (use === undefined || value === undefined || i === 0) return;
    refs.push(...(use === "owner" ? namesIn(value, ["user", "group"], ":") : namesIn(value, ["group"], ",")));
  });
  return refs;
}

/** Every declaration and use of a name in the recipe, in order. */
function nameRefs(tree: SyntaxTree): NameRef[] {
  const refs: NameRef[] = [];
  for (const d of declaredNames(tree))
    refs.push({ kind: "variable", name: d.name, span: d.span, declaration: true });
  for (const ins of tree.instructions) {
    const parts = [...ins.args.flatMap((w) => w.parts), ...ins.heredocs.flatMap((h) => h.body)];
    for (const part of parts)
      if (part.kind === "var")
        refs.push({ kind: "variable", name: part.name, span: part.span, declaration: false });
    const spec = specOf(ins.keyword);
    if (spec?.names !== undefined) refs.push(...accountRefs(ins, spec));
  }
  return refs.sort((a, b) => a.span.start.offset - b.span.start.offset);
}

/** The references that are the same name as `ref`: a group without a GROUP line is its USER's private group. */
function sameName(refs: readonly NameRef[], ref: NameRef): NameRef[] {
  const named = refs.filter((r) => r.name === ref.name);
  const own = named.filter((r) => r.kind === ref.kind);
  if (ref.kind !== "group" && ref.kind !== "user") return own;
  const groupDeclared = named.some((r) => r.kind === "group" && r.declaration);
  if (groupDeclared) return own;
  // No GROUP line: the USER line of that name made the group, so its uses as a group are the user's too.
  return named.filter((r) => r.kind === "group" || r.kind === "user");
}

function refAt(refs: readonly NameRef[], offset: number): NameRef | undefined {
  return refs.find((r) => r.span.start.offset <= offset && offset <= r.span.end.offset);
}

/** Where the name under the offset is declared: for a variable the last declaration before it, else the first. */
export function definition(tree: SyntaxTree, uri: string, offset: number): Location | null {
  const refs = nameRefs(tree);
  const ref = refAt(refs, offset);
  if (ref === undefined) return null;
  const declared = sameName(refs, ref).filter((r) => r.declaration);
  if (declared.length === 0) return null;
  const before = ref.kind === "variable" ? declared.filter((d) => d.span.start.offset <= offset) : [];
  const target = before[before.length - 1] ?? declared[0]!;
  return { uri, range: toRange(target.span) };
}

/** Every place the name under the offset is used, and where it is declared when asked. */
export function references(
  tree: SyntaxTree,
  uri: string,
  offset: number,
  includeDeclaration: boolean,
): Location[] {
  const refs = nameRefs(tree);
  const ref = refAt(refs, offset);
  if (ref === undefined) return [];
  return sameName(refs, ref)
    .filter((r) => includeDeclaration || !r.declaration)
    .map((r) => ({ uri, range: toRange(r.span) }));
}
