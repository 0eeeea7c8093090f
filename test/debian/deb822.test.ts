// The deb822 reader and writer: folded values, line numbers, and problems
// reported per line while reading goes on.
import fc from "fast-check";
import test from "ava";
import { formatStanza, parseStanzas } from "../../src/debian/deb822.ts";

test("stanzas, folded values and line numbers", (t) => {
  const text =
    "Package: a\nDepends: b,\n c\nDescription: short\n long line\n  indented\n\n\n# a comment\nPackage: d\r\nList:\n x\n# between\n y\n";
  const { stanzas, problems } = parseStanzas(text);
  t.deepEqual(problems, []);
  t.deepEqual(stanzas, [
    {
      line: 1,
      fields: [
        { name: "Package", value: "a", line: 1 },
        { name: "Depends", value: "b,\nc", line: 2, lines: [2, 3] },
        { name: "Description", value: "short\nlong line\n indented", line: 4, lines: [4, 5, 6] },
      ],
    },
    {
      line: 10,
      fields: [
        { name: "Package", value: "d", line: 10 },
        { name: "List", value: "\nx\ny", line: 11, lines: [11, 12, 14] },
      ],
    },
  ]);
});

test("problems name their line, and reading goes on", (t) => {
  const { stanzas, problems } = parseStanzas(" orphan\nA: 1\nno colon here\nA: 2\nB c: 3\n-C: 4\nD: 5\n");
  t.deepEqual(problems, [
    { line: 1, message: "continuation line (starting with a space) without a field before it" },
    { line: 3, message: "expected 'Field: value', found 'no colon here'" },
    { line: 4, message: "field 'A' appears twice in one stanza" },
    { line: 5, message: "invalid field name 'B c'" },
    { line: 6, message: "invalid field name '-C'" },
  ]);
  t.deepEqual(
    stanzas.map((s) => s.fields.map((f) => f.name)),
    [["A", "D"]],
  );
});

test("field names are unique case-insensitively", (t) => {
  t.deepEqual(parseStanzas("Version: 1\nversion: 2\n").problems, [
    { line: 2, message: "field 'version' appears twice in one stanza" },
  ]);
});

test("formatStanza refuses values it could not give back", (t) => {
  t.throws(() => formatStanza([["A", " x"]]), { instanceOf: TypeError });
  t.throws(() => formatStanza([["A", "x\n\ny"]]), { instanceOf: TypeError });
  t.throws(() => formatStanza([["A", "x\ny "]]), { instanceOf: TypeError });
  t.throws(() => formatStanza([["A:B", "x"]]), { instanceOf: TypeError });
  t.is(
    formatStanza([
      ["A", ""],
      ["B", "\nx\n y"],
    ]),
    "A:\nB:\n x\n  y\n",
  );
});

const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,10}$/);
const valueLine = fc.stringMatching(/^[!-~]([ -~]{0,12}[!-~])?$/);
const value = fc.oneof(
  fc.constant(""),
  valueLine,
  fc
    .tuple(
      fc.option(valueLine, { nil: "" }),
      fc.array(
        fc.tuple(fc.constantFrom("", " "), valueLine).map(([a, b]) => a + b),
        { minLength: 1, maxLength: 3 },
      ),
    )
    .map(([head, rest]) => [head, ...rest].join("\n")),
);
const stanza = fc.uniqueArray(fc.tuple(fieldName, value), {
  minLength: 1,
  maxLength: 6,
  selector: ([n]) => n.toLowerCase(),
});

test("parseStanzas gives back what formatStanza wrote (generated stanzas)", (t) => {
  fc.assert(
    fc.property(fc.array(stanza, { minLength: 1, maxLength: 4 }), (stanzas) => {
      const text = stanzas.map((s) => formatStanza(s)).join("\n");
      const parsed = parseStanzas(text);
      t.deepEqual(parsed.problems, []);
      t.deepEqual(
        parsed.stanzas.map((s) => s.fields.map((f) => [f.name, f.value])),
        stanzas,
      );
    }),
    { numRuns: 300 },
  );
});
