// Hostile recipe text: huge recipes, very long lines, control characters and
// invalid UTF-8 end in diagnostics with codes, never a crash or a hang.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { checkSource, decodeRecipe, MAX_RECIPE_CHARS, readRecipe } from "../../src/check/source.ts";
import { formatDiagnostic } from "../../src/diagnostics/format.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { tempDir } from "./helpers.ts";

const check = (text: string, args: Record<string, string> = {}) =>
  checkSource({ path: "hostile.nifty", text }, { args: new Map(Object.entries(args)), strict: false });

test("a recipe of 130,000 lines or one line of 5 million characters is refused with NIFTY802 before parsing", async (t) => {
  const many = Array.from({ length: 130_000 }, (_, i) => `DIR /d${i}`).join("\n");
  const long = `DIR /${"a".repeat(5_000_000)}\n`;
  const comments = "# c\n".repeat(300_000);
  for (const text of [many, long, comments]) {
    const result = await check(text);
    t.deepEqual(
      result.diagnostics.map((d) => d.code),
      ["NIFTY802"],
    );
  }
});

test("a recipe just under the limit, one long line, checks without a crash", async (t) => {
  const text = `LABEL a="${"b".repeat(MAX_RECIPE_CHARS - 100)}"\n`;
  const result = await check(text);
  t.deepEqual(result.diagnostics, []);
});

test("invalid UTF-8 in a recipe file is NIFTY801 at its line, not U+FFFD", async (t) => {
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "latin.nifty");
  await fsp.writeFile(
    file,
    Buffer.concat([Buffer.from("DIR /a\nDIR /caf"), Buffer.from([0xe9]), Buffer.from("\n")]),
  );
  const error = await t.throwsAsync(readRecipe(file, "latin.nifty"));
  t.true(error instanceof NiftyError);
  t.is((error as NiftyError).code, "NIFTY801");
  t.regex(error!.message, /line 2, byte 16/);
  // A character cut by nothing but valid multi-byte text passes.
  t.is(decodeRecipe(Buffer.from("DIR /café\n"), "ok.nifty"), "DIR /café\n");
});

test("a recipe that never ends (/dev/zero) or over 3 MiB is read only up to the limit: NIFTY802, not a hang", async (t) => {
  const error = await t.throwsAsync(readRecipe("/dev/zero", "/dev/zero"));
  t.is((error as NiftyError).code, "NIFTY802");
  t.regex(error!.message, /^the recipe \/dev\/zero has more than 3,145,728 bytes/);
});

const NIFTYC = path.join(import.meta.dirname, "../../bin/niftyc");

test("standard input as a recipe is read as a file is: invalid UTF-8 is NIFTY801 and fmt never writes U+FFFD; /dev/zero ends in NIFTY802", async (t) => {
  const latin = Buffer.concat([Buffer.from("dir  /caf"), Buffer.from([0xe9]), Buffer.from("\n")]);
  for (const argv of [["check", "-"], ["fmt"], ["fmt", "--check"]]) {
    const r = spawnSync(process.execPath, [NIFTYC, ...argv], { input: latin, encoding: "utf8" });
    t.is(r.status, 1, `${argv.join(" ")}: ${r.stderr}`);
    t.regex(r.stderr, /standard input is not valid UTF-8 \(line 1, byte 10\) \[NIFTY801\]/);
    t.notRegex(r.stdout, /\uFFFD/);
  }
  const zero = spawnSync("sh", ["-c", `exec "$0" "$1" check - < /dev/zero`, process.execPath, NIFTYC], {
    encoding: "utf8",
  });
  t.is(zero.status, 1, zero.stderr);
  t.regex(zero.stderr, /standard input has more than 3,145,728 bytes.*\[NIFTY802\]/);
});

test("fmt refuses a recipe over the character limit as check does, and leaves it as it was", async (t) => {
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "long.nifty");
  const text = "dir  /a\n".repeat(Math.ceil(MAX_RECIPE_CHARS / 8) + 1);
  await fsp.writeFile(file, text);
  for (const argv of [
    ["fmt", "--check", file],
    ["fmt", file],
  ]) {
    const r = spawnSync(process.execPath, [NIFTYC, ...argv], { encoding: "utf8", maxBuffer: 1 << 26 });
    t.is(r.status, 1, argv.join(" "));
    t.regex(
      r.stderr,
      /more than the limit of 1,048,576 \[NIFTY802\][\s\S]*not formatted: the recipe is too long/,
    );
    t.is(r.stdout, "", "no diff of what no build reads");
  }
  t.is(await fsp.readFile(file, "utf8"), text);
});

test("an --arg with a line break cannot add an inittab line, and names itself", async (t) => {
  const text = "FILE /bin/echo MODE 0755 <<EOF\n#!/bin/sh\nEOF\nARG C\nINITTAB once /bin/echo ${C}\n";
  const result = await check(text, { C: "hi\n::sysinit:/bin/sh -c evil" });
  t.is(result.recipe, undefined);
  t.deepEqual(
    result.diagnostics.map((d) => `${d.span?.start.line}:${d.span?.start.column} ${d.code}`),
    ["5:24 NIFTY022"],
  );
  t.regex(result.diagnostics[0]!.message, /from --arg C/);
  // The same value in a heredoc is content, not a line of a config file.
  const file = await check("ARG C\nFILE /etc/motd <<EOF\n${C}\nEOF\n", { C: "two\nlines" });
  t.deepEqual(file.diagnostics, []);
});

test("control characters in a diagnostic's recipe text are shown as escapes, never sent to the terminal", async (t) => {
  for (const text of ["DIR a\x1b[2J\x1b[H\n", "D\x1bIR /x\n", 'LABEL x="\x9b2J"\n']) {
    const result = await check(text);
    t.true(result.diagnostics.length > 0);
    for (const d of result.diagnostics) {
      const shown = formatDiagnostic(d, { color: false });
      t.false(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(shown), JSON.stringify(shown));
    }
  }
});

test("raw control characters in paths are NIFTY038", async (t) => {
  for (const c of ["\x01", "\f", "\v", "\r", "\x7f"]) {
    const result = await check(`DIR /srv/a${c}b\n`);
    t.deepEqual(
      result.diagnostics.map((d) => d.code),
      ["NIFTY038"],
      JSON.stringify(c),
    );
  }
});

test("FILE / cannot make the image's root a file", async (t) => {
  const result = await check("FILE / <<EOF\nx\nEOF\n");
  t.deepEqual(
    result.diagnostics.map((d) => d.code),
    ["NIFTY052"],
  );
  t.regex(result.diagnostics[0]!.message, /root \/ is always a directory/);
});
