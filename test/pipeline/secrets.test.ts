// Secrets and the ELF check, at build level: the password reaches the image
// only as a $6$ hash that openssl agrees with, never any file we write; a
// missing secret or library is an error that says what to do.
import test from "ava";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import {
  busyboxRecipe,
  dropbearLines,
  execFileP,
  jsonOf,
  listTree,
  niftyc,
  writeRecipe,
  useFixture,
} from "./helpers.ts";

const files = useFixture(test);

/** Files under `dir` whose bytes (or gunzipped bytes) contain `needle`. */
async function filesContaining(dir: string, needle: Buffer): Promise<string[]> {
  const found: string[] = [];
  for (const rel of await listTree(dir)) {
    const file = path.join(dir, rel);
    const st = await fsp.lstat(file);
    if (!st.isFile()) continue;
    const bytes = await fsp.readFile(file);
    if (bytes.includes(needle)) found.push(rel);
    else if (bytes[0] === 0x1f && bytes[1] === 0x8b && gunzipSync(bytes).includes(needle))
      found.push(`${rel} (gzip)`);
  }
  return found;
}

test("the password never appears in any output, build.json or cache file; the shadow line verifies with openssl", async (t) => {
  const dir = path.join(files.work, "secret");
  await fsp.mkdir(dir);
  const password = `pw-${randomBytes(12).toString("hex")}`;
  await fsp.writeFile(path.join(dir, "pw"), password + "\n");
  const recipe = await writeRecipe(
    dir,
    "secret",
    busyboxRecipe(files.fixture, "USER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password\n"),
  );
  const cache = path.join(dir, "cache");
  const out = path.join(dir, "out");
  const args = [
    "build",
    recipe,
    "--cache",
    cache,
    "--out",
    out,
    "--secret",
    `luser-password=${path.join(dir, "pw")}`,
    "--format",
    "all",
    "--json",
    "-q",
  ];
  const result = await niftyc(args);
  t.is(result.code, 0, result.stderr);
  // Twice: the second run replays from the cache and writes its records too.
  const again = await niftyc([...args.slice(0, 5), path.join(dir, "out2"), ...args.slice(6)]);
  t.is(again.code, 0, again.stderr);

  const needles = [
    Buffer.from(password),
    Buffer.from(password).toString("base64").slice(0, 16),
    Buffer.from(password, "utf8").toString("hex"),
  ];
  for (const needle of needles) {
    const bytes = Buffer.from(needle);
    t.deepEqual(await filesContaining(out, bytes), [], `${needle} in the output`);
    t.deepEqual(await filesContaining(path.join(dir, "out2"), bytes), [], `${needle} in the second output`);
    t.deepEqual(await filesContaining(cache, bytes), [], `${needle} in the cache`);
  }
  t.false(result.stdout.includes(password) || result.stderr.includes(password));

  const { stdout: shadow } = await execFileP("tar", ["-xOf", path.join(out, "rootfs.tar"), "etc/shadow"]);
  const line = shadow.split("\n").find((l) => l.startsWith("luser:"));
  t.truthy(line);
  const hash = line!.split(":")[1]!;
  const m = /^\$6\$([^$]+)\$[./0-9A-Za-z]{86}$/.exec(hash);
  t.truthy(m, hash);
  // openssl reads the password from the secret file, so it never shows in a process list.
  const { stdout: viaFile } = await execFileP("sh", [
    "-c",
    'openssl passwd -6 -salt "$1" -stdin < "$2"',
    "sh",
    m![1]!,
    path.join(dir, "pw"),
  ]);
  t.is(viaFile.trim(), hash);
  t.regex(shadow, /^root:!:/m);
});

test("a missing secret is an error naming the id and the flag", async (t) => {
  const dir = path.join(files.work, "missing");
  await fsp.mkdir(dir);
  const recipe = await writeRecipe(
    dir,
    "missing",
    busyboxRecipe(files.fixture, "USER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password\n"),
  );
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(dir, "cache"),
    "--out",
    path.join(dir, "out"),
    "--json",
  ]);
  t.is(result.code, 1);
  t.regex(result.stderr, /luser-password/);
  t.regex(result.stderr, /--secret luser-password=FILE/);
  const json = jsonOf(result);
  t.deepEqual(
    json.diagnostics?.map((d) => d.code),
    ["NIFTY210"],
  );
  // Both forms the README shows: a file, and an environment variable (its first command uses env:).
  t.regex(
    json.diagnostics?.[0]?.hint ?? "",
    /--secret luser-password=FILE .*--secret luser-password=env:VARIABLE/,
  );
  t.is(json.diagnostics?.[0]?.line, busyboxRecipe(files.fixture).split("\n").length);
  // At the secret's own word.
  t.is(
    (json.diagnostics?.[0] as { column?: number } | undefined)?.column,
    "USER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password".indexOf("secret:") + 1,
  );
  await t.throwsAsync(fsp.stat(path.join(dir, "out")), { code: "ENOENT" });
});

test("dropbear without one of its libraries fails with NIFTY221 naming the program and the library, at the FETCH line", async (t) => {
  const dir = path.join(files.work, "elf");
  await fsp.mkdir(dir);
  const text = busyboxRecipe(files.fixture, dropbearLines(files.fixture, ["libz.so.1"]));
  const recipe = await writeRecipe(dir, "nolibz", text);
  const fetchLine = text.split("\n").findIndex((l) => l.startsWith("FETCH dropbear ")) + 1;
  const result = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(dir, "cache"),
    "--out",
    path.join(dir, "out"),
    "--json",
  ]);
  t.is(result.code, 1, result.stderr);
  const json = jsonOf(result);
  const errors = json.diagnostics?.filter((d) => d.code === "NIFTY221") ?? [];
  t.is(errors.length, 1, result.stderr);
  t.regex(errors[0]!.message, /\/bin\/dropbear/);
  t.regex(errors[0]!.message, /libz\.so\.1/);
  t.is(errors[0]!.line, fetchLine);
  t.is(errors[0]!.file, recipe);
  t.regex(
    result.stderr,
    new RegExp(`nolibz\\.nifty:${fetchLine}:\\d+: error: .*libz\\.so\\.1.*\\[NIFTY221\\]`),
  );
  await t.throwsAsync(fsp.stat(path.join(dir, "out")), { code: "ENOENT" });

  // With every library the same recipe builds.
  const whole = await writeRecipe(dir, "whole", busyboxRecipe(files.fixture, dropbearLines(files.fixture)));
  const ok = await niftyc([
    "build",
    whole,
    "--cache",
    path.join(dir, "cache"),
    "--out",
    path.join(dir, "out-whole"),
    "--json",
    "-q",
  ]);
  t.is(ok.code, 0, ok.stderr);
});

test("an empty password secret and a key seed too short to be one are refused before anything is built", async (t) => {
  const dir = path.join(files.work, "empty-secret");
  await fsp.mkdir(dir);
  await fsp.writeFile(path.join(dir, "empty"), "\n");
  await fsp.writeFile(path.join(dir, "short-seed"), "x");
  const recipe = await writeRecipe(
    dir,
    "empty",
    busyboxRecipe(files.fixture, "USER luser UID 1000 SHELL /bin/sh PASSWORD secret:pw\n"),
  );
  const out = path.join(dir, "out");
  const viaFile = await niftyc([
    "build",
    recipe,
    "--cache",
    path.join(dir, "cache"),
    "--out",
    out,
    "--secret",
    `pw=${path.join(dir, "empty")}`,
  ]);
  t.is(viaFile.code, 1, viaFile.stderr);
  // At the secret's word: column 44 of "USER luser UID 1000 SHELL /bin/sh PASSWORD secret:pw".
  t.regex(viaFile.stderr, /empty\.nifty:\d+:44: error: the secret "pw" has 0 bytes \[NIFTY211\]/);
  t.regex(viaFile.stderr, /an empty password would let anyone log in/);
  const viaEnv = await niftyc(
    ["build", recipe, "--cache", path.join(dir, "cache"), "--out", out, "--secret", "pw=env:NIFTY_EMPTY"],
    { env: { NIFTY_EMPTY: "" } },
  );
  t.is(viaEnv.code, 1, viaEnv.stderr);
  t.regex(viaEnv.stderr, /\[NIFTY211\]/);
  const keyed = await writeRecipe(
    dir,
    "keyed",
    busyboxRecipe(
      files.fixture,
      "FILE /bin/dropbearkey MODE 0755 <<EOF\nnot really\nEOF\nKEYGEN dropbear ed25519 AT build\n",
    ),
  );
  const seed = await niftyc([
    "build",
    keyed,
    "--cache",
    path.join(dir, "cache"),
    "--out",
    out,
    "--secret",
    `keyseed=${path.join(dir, "short-seed")}`,
  ]);
  t.is(seed.code, 1, seed.stderr);
  t.regex(seed.stderr, /the secret "keyseed" has 1 byte, fewer than the 16 it needs \[NIFTY211\]/);
  t.notRegex(seed.stderr, /internal error/);
  await t.throwsAsync(fsp.stat(out), undefined, "nothing was published");
});
