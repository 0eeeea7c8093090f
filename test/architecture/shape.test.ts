// Two habits that keep the code's shape: no two modules need each other (an import circle, type-only
// imports included, means the pair is one idea split badly or a type that belongs below both), and
// only src/instructions/ knows the instruction kinds (everything else asks the spec table).
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { INSTRUCTIONS } from "../../src/instructions/index.ts";
import { imports, ROOT, sources } from "./imports.ts";

/** Each circle once, as the files along it, starting from its least file. */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const found = new Map<string, string[]>();
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string): void => {
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === "open") {
        const loop = path.slice(path.indexOf(next));
        const least = loop.indexOf([...loop].sort()[0]!);
        const canonical = [...loop.slice(least), ...loop.slice(0, least)];
        found.set(canonical.join(" → "), canonical);
      } else if (state.get(next) === undefined) visit(next);
    }
    path.pop();
    state.set(file, "done");
  };
  for (const file of [...graph.keys()].sort()) if (state.get(file) === undefined) visit(file);
  return [...found.values()];
}

const files = [...sources("src"), ...sources("grammar")];
const graph = new Map(files.map((f) => [f, imports(f)]));

test("no two modules import each other, directly or around a circle", (t) => {
  t.deepEqual(
    circles(graph).map((c) => [...c, c[0]].join(" → ")),
    [],
  );
});

test("a circle through a type-only import is found", (t) => {
  const a = imports("src/x/a.ts", 'import type { B } from "./b.ts";');
  const b = imports("src/x/b.ts", 'import { c } from "../y/c.ts";');
  const c = imports("src/y/c.ts", 'const a = await import("../x/a.ts");');
  const found = circles(
    new Map([
      ["src/x/a.ts", a],
      ["src/x/b.ts", b],
      ["src/y/c.ts", c],
    ]),
  );
  t.deepEqual(found, [["src/x/a.ts", "src/x/b.ts", "src/y/c.ts"]]);
  t.deepEqual(
    circles(
      new Map([
        ["src/x/a.ts", a],
        ["src/x/b.ts", []],
      ]),
    ),
    [],
  );
});

const KEYWORDS = Object.keys(INSTRUCTIONS).join("|");
/** `.kind === "FETCH"`, `kind !== 'USER'`, `case "COPY":` — a test of an instruction's kind. */
const KIND_TEST = new RegExp(
  `kind\\s*[!=]==?\\s*["'](?:${KEYWORDS})["']|case\\s+["'](?:${KEYWORDS})["']\\s*:`,
);

export function kindTests(file: string, text: string): string[] {
  return text
    .split("\n")
    .flatMap((line, i) => (KIND_TEST.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : []));
}

test("only src/instructions/ tests an instruction's kind", (t) => {
  const outside = files.filter((f) => !f.startsWith("src/instructions/"));
  const found = outside.flatMap((f) => kindTests(f, readFileSync(join(ROOT, f), "utf8")));
  t.deepEqual(found, [], "give the instruction's spec a field for it instead (src/instructions/spec.ts)");
});

test("a kind test is recognised in its usual spellings", (t) => {
  t.is(kindTests("f.ts", 'if (ins.kind === "FETCH") x();').length, 1);
  t.is(kindTests("f.ts", "if (ins?.kind !== 'PACKAGE') x();").length, 1);
  t.is(kindTests("f.ts", '  case "COPY":').length, 1);
  t.is(kindTests("f.ts", 'if (plan.kind === "choice") x();').length, 0);
});
