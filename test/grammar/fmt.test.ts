// niftyc fmt changes the layout and never what a recipe builds: the checked
// recipe without positions is the same before and after, for every shipped
// recipe and for generated ones; formatting twice changes nothing more.
import test from "ava";
import fc from "fast-check";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { formatNiftyfile } from "../../grammar/format.ts";
import { formatRecipe } from "../../src/check/format.ts";
import { parseNiftyfile } from "../../grammar/parse.ts";
import { checkSource } from "../../src/check/source.ts";
import { CHECK_FRAGMENTS, CHECK_VALID_LINES, recipeArbitraries } from "../support/arbitrary-recipes.ts";
import { runMain } from "../support/cli.ts";

const RECIPES = resolve(import.meta.dirname, "../../recipes");

/** The typed recipe as data without positions, or undefined when it does not check. */
async function meaning(text: string, recipePath?: string): Promise<string | undefined> {
  const result = await checkSource(
    { path: "r.nifty", text },
    { args: new Map(), strict: false, ...(recipePath ? { recipePath } : {}) },
  );
  if (result.recipe === undefined) return undefined;
  return JSON.stringify(result.recipe, (key, value) =>
    key === "span" || key.endsWith("Span") ? undefined : value,
  );
}

async function sameMeaning(text: string, recipePath?: string): Promise<boolean> {
  const formatted = await formatRecipe({ path: "r.nifty", text });
  if (formatted.errors) return true;
  const again = await formatRecipe({ path: "r.nifty", text: formatted.text });
  if (again.text !== formatted.text)
    throw new Error(`not idempotent:\n${JSON.stringify(formatted.text)}\n${JSON.stringify(again.text)}`);
  const before = await meaning(text, recipePath);
  const after = await meaning(formatted.text, recipePath);
  if (before !== after)
    throw new Error(
      `meaning changed:\n${JSON.stringify(text)}\n${JSON.stringify(formatted.text)}\n${before}\n${after}`,
    );
  return true;
}

test("every shipped recipe checks to the same typed recipe after fmt, and fmt is idempotent", async (t) => {
  const names = (await readdir(RECIPES)).filter((n) => n.endsWith(".nifty"));
  t.true(names.length > 0);
  for (const name of names) {
    const path = join(RECIPES, name);
    const text = await readFile(path, "utf8");
    t.truthy(await meaning(text, path), name);
    t.true(await sameMeaning(text, path), name);
    // The same recipe laid out badly comes back to the same meaning.
    let messy = text;
    for (const ins of [...parseNiftyfile({ path: name, text }).tree.instructions].reverse()) {
      if (ins.heredocs.length > 0) continue;
      const line = `\n\n  ${ins.keyword.toLowerCase()}   ${ins.args.map((a) => a.raw).join(" \\\n\t ")}   `;
      messy = messy.slice(0, ins.span.start.offset) + line + messy.slice(ins.span.end.offset);
    }
    const formatted = await formatRecipe({ path: name, text: messy });
    t.is(formatted.errors, undefined, name);
    t.is(await meaning(formatted.text!, path), await meaning(text, path), name);
  }
});

const { recipe, mutated } = recipeArbitraries(
  [
    ...CHECK_VALID_LINES,
    "DIR /a \\",
    "   # inside",
    "  /b MODE 0755\\",
    "OWNER root:root",
    "ENV A=1 \\",
    "arg   x=1   ",
  ],
  CHECK_FRAGMENTS,
  { validWeight: 3, maxMutatedLines: 14 },
);

test("generated recipes: fmt keeps the checked recipe and is idempotent", async (t) => {
  await fc.assert(
    fc.asyncProperty(recipe, (text) => sameMeaning(text)),
    { numRuns: 2000 },
  );
  t.pass();
});

test("mutated valid recipes: fmt keeps the checked recipe and is idempotent", async (t) => {
  await fc.assert(
    fc.asyncProperty(mutated, (text) => sameMeaning(text)),
    { numRuns: 2000 },
  );
  t.pass();
});

test("one layout: upper-case keywords, single spaces, indented continuations, heredocs, comments", (t) => {
  const text =
    "\n\n  # top   \narg  PORT=22   \n\n\n\nfile /x   MODE 0644 <<EOF  \n  body  \n\tkept \nEOF\n" +
    "dir /a \\\n   # inner\n      /b   MODE 0755\\\n  OWNER root:root\nenv A=1 \\\n\n# after\n";
  t.is(
    formatNiftyfile({ path: "m.nifty", text }).text,
    "# top\nARG PORT=22\n\nFILE /x MODE 0644 <<EOF\n  body  \n\tkept \nEOF\n" +
      "DIR /a \\\n    # inner\n    /b MODE 0755 \\\n    OWNER root:root\nENV A=1\n\n# after\n",
  );
});

test("option words the check takes as options are written in upper case; the same letters anywhere else are kept", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "niftyc-fmt-"));
  const text = [
    "copy a /b mode 0755 owner root:root",
    "link /bin/busybox applets in /bin",
    "link /bin/busybox tty",
    "bind ro /srv",
    "inittab respawn tty console /bin/getty 38400 console",
    'file /x "mode" 0644 <<EOF',
    "mode 0644 owner",
    "EOF",
    "arg M=mode",
    "copy a /c $M 0644",
    "user at home /var/at shell /bin/sh locked",
    "",
  ].join("\n");
  await writeFile(join(dir, "o.nifty"), text);
  t.is((await runMain(["fmt", "o.nifty"], dir)).code, 0);
  t.is(
    await readFile(join(dir, "o.nifty"), "utf8"),
    [
      "COPY a /b MODE 0755 OWNER root:root",
      "LINK /bin/busybox APPLETS IN /bin",
      "LINK /bin/busybox tty",
      "BIND RO /srv",
      "INITTAB respawn TTY console /bin/getty 38400 console",
      'FILE /x "mode" 0644 <<EOF',
      "mode 0644 owner",
      "EOF",
      "ARG M=mode",
      "COPY a /c $M 0644",
      "USER at HOME /var/at SHELL /bin/sh LOCKED",
      "",
    ].join("\n"),
  );
  t.true(await sameMeaning(text, join(dir, "o.nifty")));
  await rm(dir, { recursive: true, force: true });
});

test("fmt --check prints a unified diff, exits 1; fmt rewrites; syntax errors leave it alone", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "niftyc-fmt-"));
  await writeFile(join(dir, "a.nifty"), "hostname   box\n");
  const checked = await runMain(["fmt", "--check", "a.nifty"], dir);
  t.is(checked.code, 1);
  t.is(checked.stdout, "--- a.nifty\n+++ a.nifty (formatted)\n@@ -1 +1 @@\n-hostname   box\n+HOSTNAME box\n");
  t.is(await readFile(join(dir, "a.nifty"), "utf8"), "hostname   box\n");
  t.is((await runMain(["fmt", "a.nifty"], dir)).code, 0);
  t.is(await readFile(join(dir, "a.nifty"), "utf8"), "HOSTNAME box\n");
  t.is((await runMain(["fmt", "--check", "a.nifty"], dir)).code, 0);
  await writeFile(join(dir, "b.nifty"), 'label   "a=b\n');
  const bad = await runMain(["fmt", "b.nifty"], dir);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /b\.nifty:1:9: error: unterminated double-quoted string \[NIFTY002\]/);
  t.is(await readFile(join(dir, "b.nifty"), "utf8"), 'label   "a=b\n');
});

test("a heredoc marker glued to a word is a syntax error, so fmt never drops its body (found by the fuzzer)", (t) => {
  // The word and the marker were one word: the marker was not taken, and its body, which the
  // lexer had set aside, was printed by nobody.
  const text = "FILE /etc/motd OWNER luser:luser\\ <<EOF\nhello\nEOF\nHOSTNAME after\n";
  const formatted = formatNiftyfile({ path: "g.nifty", text });
  t.deepEqual(
    formatted.errors?.map((e) => e.code),
    ["NIFTY028"],
  );
});

test("a word ending in a lone carriage return keeps it: a blank, not a CRLF, before the newline (found by the fuzzer)", async (t) => {
  // "OWNER oot:root\r" was written back as "…\r\n", a CRLF line end, which took the \r out of the word.
  for (const text of ["OWNER oot:root\r", "LABEL a=b\r  \n", "USER luser\r"]) {
    const formatted = formatNiftyfile({ path: "r.nifty", text }).text!;
    t.true(formatted.endsWith("\r \n"), JSON.stringify(formatted));
    t.true(await sameMeaning(text), JSON.stringify(text));
  }
});

test("a word ending in an escaped blank keeps the continuation after it (found by the fuzzer)", async (t) => {
  // Without it, `\ ` and the line break would make a continuation of their own.
  const formatted = formatNiftyfile({ path: "e.nifty", text: "DIR /\\ \\" }).text!;
  t.is(formatted, "DIR /\\  \\\n");
  t.true(await sameMeaning("DIR /\\ \\\n\nHOSTNAME x\n"));
});

test("a CRLF recipe comes out all LF, its heredoc bodies too, and builds the same", async (t) => {
  const text = "\uFEFFFILE /a <<EOF\r\nhello\r\n\tindented\r\nEOF\r\nFILE   /b <<-EOF\r\n\tbody\r\n\tEOF\r\n";
  const formatted = formatNiftyfile({ path: "r.nifty", text });
  t.is(formatted.text, "FILE /a <<EOF\nhello\n\tindented\nEOF\nFILE /b <<-EOF\n\tbody\n\tEOF\n");
  t.true(await sameMeaning(text));
});

test("fmt of a recipe reached through a symbolic link rewrites the file it names and keeps the link", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "niftyc-fmt-link-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, "real"));
  await writeFile(join(dir, "real", "box.nifty"), "dir  /srv\n");
  await symlink("real/box.nifty", join(dir, "box.nifty"));
  const r = await runMain(["fmt", "box.nifty"], dir);
  t.is(r.code, 0, r.stderr);
  t.true((await lstat(join(dir, "box.nifty"))).isSymbolicLink(), "the link is still a link");
  t.is(await readFile(join(dir, "real", "box.nifty"), "utf8"), "DIR /srv\n");
});
