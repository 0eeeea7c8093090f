// The code table (src/diagnostics/codes.ts) and docs/diagnostics.md agree both
// ways: every row of the docs has an entry with its severity, title and
// section, every entry has one row, and every entry is raised somewhere (a
// code nothing raises is a defect). Every checker code is pinned by a
// negative golden fixture; every instruction has a positive one.
import { readdirSync, readFileSync } from "node:fs";
import test from "ava";
import { INSTRUCTION_KEYWORDS } from "../../grammar/keywords.ts";
import {
  ALL_CODES,
  DIAGNOSTIC_CODES,
  SECTIONS,
  docAnchor,
  type CodeEntry,
} from "../../src/diagnostics/codes.ts";

const root = new URL("../../", import.meta.url);
const doc = readFileSync(new URL("docs/diagnostics.md", root), "utf8");

interface Row {
  code: string;
  heading: string;
  severity: string;
  title: string;
  hint: string;
}

/** The rows of every table in the docs, with the heading they sit under; cells split at unescaped `|`. */
function docRows(text: string): Row[] {
  const rows: Row[] = [];
  let heading = "";
  let columns: string[] = [];
  for (const line of text.split("\n")) {
    const h = /^## (.+)$/.exec(line);
    if (h) heading = h[1]!;
    if (!line.startsWith("|")) continue;
    const cells = line
      .slice(1, line.endsWith("|") ? -1 : undefined)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, "|"));
    if (cells[0] === "Code") columns = cells;
    if (!/^NIFTY\d{3}$/.test(cells[0]!)) continue;
    const cell = (name: string) => cells[columns.indexOf(name)] ?? "";
    rows.push({
      code: cells[0]!,
      heading,
      severity: cell("Severity"),
      title: cell("Message"),
      hint: cell("Hint"),
    });
  }
  return rows;
}

function sources(dir: string): Array<{ file: string; text: string }> {
  return readdirSync(new URL(dir, root), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(new URL(`${dir}/${f}`, root), "utf8") }));
}

function codesIn(files: ReadonlyArray<{ text: string }>): Set<string> {
  const codes = new Set<string>();
  for (const { text } of files) for (const m of text.matchAll(/"(NIFTY\d{3})"/g)) codes.add(m[1]!);
  return codes;
}

const rows = docRows(doc);
/** The table looked up by any string, as the docs give them. */
const table: Readonly<Record<string, CodeEntry | undefined>> = DIAGNOSTIC_CODES;
// What raises codes: the source and the parser, not the table itself.
const raised = codesIn(
  [...sources("src"), ...sources("grammar")].filter((s) => s.file !== "src/diagnostics/codes.ts"),
);

test("the table and the docs are not empty (a broken reader would make the tests below vacuous)", (t) => {
  t.true(ALL_CODES.length > 120);
  t.true(rows.length > 120);
  t.true(raised.size > 120);
});

test("the docs have each section's heading, in the table's order, with the anchor the table gives", (t) => {
  const headings = [...doc.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
  const sections = Object.values(SECTIONS);
  t.deepEqual(
    headings.filter((h) => sections.some((s) => s.heading === h)),
    sections.map((s) => s.heading),
  );
  for (const s of sections)
    t.is(
      s.heading
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, "")
        .replace(/ /g, "-"),
      s.anchor,
    );
});

for (const row of rows) {
  test(`${row.code}: the table has the docs row's severity, title and section`, (t) => {
    const entry = table[row.code];
    if (entry === undefined)
      return t.fail(`${row.code} is in docs/diagnostics.md but not in src/diagnostics/codes.ts`);
    t.is(row.severity, entry.severity);
    t.is(row.title, entry.title);
    t.is(row.heading, SECTIONS[entry.section].heading);
    if (entry.hint !== undefined) t.is(row.hint, entry.hint);
  });
}

for (const code of ALL_CODES) {
  test(`${code}: one row in docs/diagnostics.md, and something raises it`, (t) => {
    t.is(rows.filter((r) => r.code === code).length, 1);
    t.true(
      raised.has(code),
      `nothing in src/ or grammar/ raises ${code}: remove it from the table and the docs, or use it`,
    );
    t.regex(docAnchor(code), /^docs\/diagnostics\.md#[a-z-]+$/);
  });
}

test("every code written in src/ and grammar/ is in the table", (t) => {
  t.deepEqual(
    [...raised].filter((c) => table[c] === undefined),
    [],
  );
});

const negative = new URL("test/check/fixtures-negative/", root);
const printed = readdirSync(negative)
  .map((name) => readFileSync(new URL(`${name}/expected.txt`, negative), "utf8"))
  .join("\n");
const checkerCodes = ALL_CODES.filter((c) => DIAGNOSTIC_CODES[c].section === "checks");

for (const code of checkerCodes) {
  test(`a negative fixture shows ${code}`, (t) => {
    t.true(printed.includes(`[${code}]`));
  });
}

const positive = new URL("test/check/fixtures/", root);
const kinds = new Set(
  readdirSync(positive).flatMap((name) => {
    const json = JSON.parse(readFileSync(new URL(`${name}/expected.json`, positive), "utf8")) as {
      recipe: { instructions: Array<{ kind: string }> };
    };
    return json.recipe.instructions.map((i) => i.kind);
  }),
);

for (const keyword of INSTRUCTION_KEYWORDS) {
  test(`a positive fixture accepts ${keyword}`, (t) => {
    t.true(kinds.has(keyword));
  });
}
