import test from "ava";
import type { Diagnostic, DiagnosticCode } from "../../src/diagnostics/diagnostic.ts";
import { diagnosticsToJson, formatDiagnostic, formatSummary } from "../../src/diagnostics/format.ts";
import { suggest } from "../../src/diagnostics/suggest.ts";
import { LineIndex } from "../../grammar/positions.ts";

const text = "ARG X\nFECTH busybox debian:pool/x\n\tLABEL\ta\tbcd\nFILE /a \\\n  MODE\n";
const source = { path: "recipes/ssh.nifty", text };
const lines = new LineIndex(text);

function at(start: number, end: number, extra: Partial<Diagnostic> = {}): Diagnostic {
  return {
    severity: "error",
    code: "NIFTY010",
    message: "unknown instruction FECTH",
    source,
    span: lines.span(start, end),
    ...extra,
  };
}

const fecth = text.indexOf("FECTH");

test("prints location, source line, caret and hint", (t) => {
  const out = formatDiagnostic(at(fecth, fecth + 5, { hint: "did you mean FETCH?" }), { color: false });
  t.is(
    out,
    [
      "recipes/ssh.nifty:2:1: error: unknown instruction FECTH [NIFTY010]",
      "    2 | FECTH busybox debian:pool/x",
      "      | ^~~~~",
      "  hint: did you mean FETCH?",
    ].join("\n"),
  );
});

test("the caret lines up under text that follows tabs", (t) => {
  const bcd = text.indexOf("bcd");
  const out = formatDiagnostic(at(bcd, bcd + 3, { severity: "warning" }), { color: false }).split("\n");
  t.is(out[0], "recipes/ssh.nifty:3:10: warning: unknown instruction FECTH [NIFTY010]");
  t.is(out[1], "    3 |     LABEL   a   bcd");
  t.is(out[2], "      |                 ^~~");
  t.is(out[1]!.indexOf("bcd"), out[2]!.indexOf("^"));
});

test("a span over several lines is underlined to the end of its first line", (t) => {
  const file = text.indexOf("FILE");
  const out = formatDiagnostic(at(file + 5, text.indexOf("MODE") + 4), { color: false }).split("\n");
  t.is(out[1], "    4 | FILE /a \\");
  t.is(out[2], "      |      ^~~~");
});

test("an empty span still gets one caret, also at the end of the text", (t) => {
  const out = formatDiagnostic(at(text.length, text.length), { color: false }).split("\n");
  t.is(out[0], "recipes/ssh.nifty:6:1: error: unknown instruction FECTH [NIFTY010]");
  t.is(out[2], "      | ^");
  const mid = formatDiagnostic(at(fecth + 2, fecth + 2), { color: false }).split("\n");
  t.is(mid[2], "      |   ^");
});

test("colour only when asked", (t) => {
  const d = at(fecth, fecth + 5, { hint: "did you mean FETCH?" });
  const plain = formatDiagnostic(d, { color: false });
  const coloured = formatDiagnostic(d, { color: true });
  t.false(plain.includes("\x1b["));
  t.true(coloured.includes("\x1b[1;31merror:\x1b[0m"));
  t.true(coloured.includes("\x1b[1;32m^~~~~\x1b[0m"));
  t.is(coloured.replace(/\x1b\[[0-9;]*m/g, ""), plain);
});

test("diagnostics without a span or a source", (t) => {
  // Not in the table, on purpose: formatting never looks a code up.
  const unlisted = "NIFTY099" as string as DiagnosticCode;
  t.is(
    formatDiagnostic({ severity: "error", code: unlisted, message: "no recipe given" }, { color: false }),
    "niftyc: error: no recipe given [NIFTY099]",
  );
  t.is(
    formatDiagnostic(
      { severity: "warning", code: "NIFTY098", message: "empty", source, hint: "add a line" },
      { color: false },
    ),
    "recipes/ssh.nifty: warning: empty [NIFTY098]\n  hint: add a line",
  );
});

test("JSON form is plain data with every key", (t) => {
  const [withSpan, bare] = diagnosticsToJson([
    at(fecth, fecth + 5, { hint: "did you mean FETCH?" }),
    { severity: "warning", code: "NIFTY098", message: "m" },
  ]);
  t.deepEqual(withSpan, {
    severity: "error",
    code: "NIFTY010",
    message: "unknown instruction FECTH",
    file: "recipes/ssh.nifty",
    line: 2,
    column: 1,
    endLine: 2,
    endColumn: 6,
    hint: "did you mean FETCH?",
  });
  t.deepEqual(bare, {
    severity: "warning",
    code: "NIFTY098",
    message: "m",
    file: null,
    line: null,
    column: null,
    endLine: null,
    endColumn: null,
    hint: null,
  });
});

test("summary counts errors and warnings", (t) => {
  const e = at(0, 1);
  const w = at(0, 1, { severity: "warning" });
  t.is(formatSummary([e, e, w]), "2 errors, 1 warning");
  t.is(formatSummary([w, w]), "2 warnings");
  t.is(formatSummary([e]), "1 error");
  t.is(formatSummary([]), "no problems");
});

test("suggest finds near misses, ignoring case", (t) => {
  const keywords = ["FETCH", "FILE", "USER", "KEYGEN", "STOPSIGNAL"];
  t.is(suggest("FECTH", keywords), "FETCH");
  t.is(suggest("fecth", keywords), "FETCH");
  t.is(suggest("FIEL", keywords), "FILE");
  t.is(suggest("USR", keywords), "USER");
  t.is(suggest("STOPSIGNL", keywords), "STOPSIGNAL");
  t.is(suggest("COPY", keywords), undefined);
  t.is(suggest("KEYGENXX", keywords), "KEYGEN");
  t.is(suggest("KEYGENXXXX", keywords), undefined);
  t.is(suggest("X", keywords), undefined);
});

test("the caret lines up under text after wide characters, which a terminal gives two columns", (t) => {
  const wide = "DIR /日本/x MODE 999\n";
  const at999 = wide.indexOf("999");
  const index = new LineIndex(wide);
  const out = formatDiagnostic(
    {
      severity: "error",
      code: "NIFTY033",
      message: 'bad mode "999"',
      source: { path: "w.nifty", text: wide },
      span: index.span(at999, at999 + 3),
    },
    { color: false },
  ).split("\n");
  t.is(out[1], "    1 | DIR /日本/x MODE 999");
  // Two columns more than the string's length before it: 日 and 本 are wide.
  t.is(out[2], `      | ${" ".repeat("DIR /".length + 4 + "/x MODE ".length)}^~~`);
});

test("a very long line is shown as a window around the caret, marked with …", (t) => {
  const long = `DIR /a${"b".repeat(300_000)} MODE 999\n`;
  const at999 = long.indexOf("999");
  const index = new LineIndex(long);
  const out = formatDiagnostic(
    {
      severity: "error",
      code: "NIFTY033",
      message: 'bad mode "999"',
      source: { path: "l.nifty", text: long },
      span: index.span(at999, at999 + 3),
    },
    { color: false },
  ).split("\n");
  t.true(out[1]!.length < 400, `${out[1]!.length} characters`);
  t.true(out[1]!.startsWith("    1 | …b"));
  t.true(out[1]!.endsWith(" MODE 999"));
  t.is(out[1]!.indexOf("999"), out[2]!.indexOf("^"));
});
