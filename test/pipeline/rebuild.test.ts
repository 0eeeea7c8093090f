// Rebuilds: a changed last line re-runs only its step, an unchanged recipe
// re-runs nothing and loads neither the parser (chevrotain) nor the HTTP
// client (undici).
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import {
  busyboxRecipe,
  fileSha256,
  jsonOf,
  listTree,
  niftyc,
  readBuildJson,
  ROOT,
  startFixture,
  tempDir,
  writeRecipe,
  type Fixture,
} from "./helpers.ts";

let fixture: Fixture;
let work: string;

const HOOK = path.join(ROOT, "test/pipeline/record-loads.ts");

test.before(async () => {
  fixture = await startFixture();
  work = await tempDir();
});

test.after.always(async () => {
  await fixture?.close();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

const recipeWith = (last: string): string =>
  busyboxRecipe(fixture, `FILE /etc/motd <<EOF\nhello\nEOF\nHOSTNAME rebuild\n${last}\n`);

test("changing only the last instruction re-runs only that step", async (t) => {
  const dir = path.join(work, "last");
  await fsp.mkdir(dir);
  const cache = path.join(dir, "cache");
  const out = path.join(dir, "out");
  const recipe = await writeRecipe(dir, "last", recipeWith("LABEL version=1"));
  const first = await niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"]);
  t.is(first.code, 0, first.stderr);
  t.false((await readBuildJson(out)).steps.some((s) => s.reused));

  await writeRecipe(dir, "last", recipeWith("LABEL version=2"));
  const second = await niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"]);
  t.is(second.code, 0, second.stderr);
  const steps = (await readBuildJson(out)).steps;
  t.deepEqual(
    steps.map((s) => s.reused),
    [...steps.slice(0, -1).map(() => true), false],
  );
  t.is(steps.at(-1)!.instruction, "LABEL version=2");
  const before = (await readBuildJson(out)).steps;
  t.deepEqual(
    jsonOf(second).steps.map((s) => s.key),
    before.map((s) => s.key),
  );

  // Changing a line in the middle re-runs it and everything after it.
  await writeRecipe(
    dir,
    "last",
    recipeWith("LABEL version=2").replace("HOSTNAME rebuild", "HOSTNAME rebuilt"),
  );
  const third = await niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"]);
  t.is(third.code, 0, third.stderr);
  const after = (await readBuildJson(out)).steps;
  const changed = after.findIndex((s) => s.instruction === "HOSTNAME rebuilt");
  t.deepEqual(
    after.map((s) => s.reused),
    after.map((_, i) => i < changed),
  );
  t.deepEqual(
    after.slice(0, changed).map((s) => s.key),
    before.slice(0, changed).map((s) => s.key),
  );
  t.not(jsonOf(third).digest, jsonOf(second).digest);
});

test("a no-op rebuild re-runs nothing and loads neither chevrotain nor undici", async (t) => {
  const dir = path.join(work, "noop");
  await fsp.mkdir(dir);
  const cache = path.join(dir, "cache");
  const out = path.join(dir, "out");
  const recipe = await writeRecipe(dir, "noop", recipeWith("LABEL version=1"));
  const loads = path.join(dir, "loads.txt");
  const nodeArgs = ["--import", HOOK];

  const cold = await niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"], {
    nodeArgs,
    env: { NIFTY_TEST_LOADS: loads },
  });
  t.is(cold.code, 0, cold.stderr);
  const coldLoads = await fsp.readFile(loads, "utf8");
  // The hook sees them when they are needed, so its silence below means something.
  t.regex(coldLoads, /node_modules\/chevrotain\//);
  t.regex(coldLoads, /node_modules\/undici\//);

  const noop = await niftyc(["build", recipe, "--cache", cache, "--out", out, "--json", "-q"], {
    nodeArgs,
    env: { NIFTY_TEST_LOADS: loads },
  });
  t.is(noop.code, 0, noop.stderr);
  const result = jsonOf(noop);
  t.true(result.upToDate);
  t.true(result.steps.every((s) => s.reused));
  t.is(result.digest, jsonOf(cold).digest);
  const noopLoads = await fsp.readFile(loads, "utf8");
  t.notRegex(noopLoads, /chevrotain/);
  t.notRegex(noopLoads, /undici/);
  t.notRegex(noopLoads, /tar-stream/);
  // Nor any output writer, nor the crypt (this recipe has no password).
  t.notRegex(noopLoads, /src\/emit\/(tar|oci-layout|docker-archive|digest-stream)\.ts/);
  t.notRegex(noopLoads, /sha512-crypt/);

  // A fresh output directory from a warm cache: nothing re-runs, nothing downloads.
  // (Not -q: the step lines are drawn, and still no progress bar library loads.)
  const hits = fixture.server.hits();
  const warm = await niftyc(
    ["build", recipe, "--cache", cache, "--out", path.join(dir, "out-warm"), "--json"],
    { nodeArgs, env: { NIFTY_TEST_LOADS: loads } },
  );
  t.is(warm.code, 0, warm.stderr);
  t.false(jsonOf(warm).upToDate);
  t.true(jsonOf(warm).steps.every((s) => s.reused));
  t.is(fixture.server.hits(), hits);
  // Outputs copied from the store are the very files the first build assembled.
  const files = (await listTree(out)).filter((f) => f !== "build.json");
  t.deepEqual(
    await listTree(path.join(dir, "out-warm")).then((l) => l.filter((f) => f !== "build.json")),
    files,
  );
  for (const f of files) {
    const st = await fsp.stat(path.join(out, f));
    if (!st.isFile()) continue;
    t.is(await fileSha256(path.join(dir, "out-warm", f)), await fileSha256(path.join(out, f)), f);
    t.is((await fsp.stat(path.join(dir, "out-warm", f))).mode, st.mode, f);
  }
  t.regex(warm.stderr, /\(cached\)/);
  const warmLoads = await fsp.readFile(loads, "utf8");
  t.notRegex(warmLoads, /chevrotain/);
  t.notRegex(warmLoads, /undici/);
  // The outputs are restored from the store: no step replayed into a tree, no image config
  // made, no writer; and nothing a build without a push or a download needs.
  t.notRegex(warmLoads, /tar-stream/);
  t.notRegex(warmLoads, /src\/emit\/(tar|oci-layout|docker-archive|digest-stream)\.ts/);
  t.notRegex(warmLoads, /src\/pipeline\/(image-config|layers|verify-image)\.ts/);
  t.notRegex(warmLoads, /src\/cli\/push\.ts/);
  t.notRegex(warmLoads, /cli-progress/);
  t.notRegex(warmLoads, /sha256-file/);
});

test("an unchanged secret file is recognised by its identity: the no-op rebuild makes no crypt, a changed file does", async (t) => {
  const dir = path.join(work, "secret-stamp");
  await fsp.mkdir(dir);
  const cache = path.join(dir, "cache");
  const out = path.join(dir, "out");
  const pw = path.join(dir, "pw");
  await fsp.writeFile(pw, "first-password\n");
  const recipe = await writeRecipe(
    dir,
    "stamp",
    recipeWith("USER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password"),
  );
  const loads = path.join(dir, "loads.txt");
  const build = () =>
    niftyc(
      ["build", recipe, "--cache", cache, "--out", out, "--secret", `luser-password=${pw}`, "--json", "-q"],
      { nodeArgs: ["--import", HOOK], env: { NIFTY_TEST_LOADS: loads } },
    );
  const crypted = async () => /src\/image\/sha512-crypt\.ts/.test(await fsp.readFile(loads, "utf8"));

  const cold = await build();
  t.is(cold.code, 0, cold.stderr);
  t.true(await crypted(), "the first build makes the crypt hash");
  // The record beside out/ holds digests only: neither the password nor the file's path.
  const stamps = await fsp.readFile(path.join(dir, ".out.secret-stamps.json"), "utf8");
  t.false(stamps.includes("first-password") || stamps.includes(pw));
  t.is((await fsp.stat(path.join(dir, ".out.secret-stamps.json"))).mode & 0o777, 0o600);

  const noop = await build();
  t.is(noop.code, 0, noop.stderr);
  t.true(jsonOf(noop).upToDate);
  t.false(await crypted(), "an unchanged secret file needs no crypt");

  // Rewritten with the same bytes: its identity changed, so the crypt runs again, and the build is still up to date.
  await fsp.writeFile(pw, "first-password\n");
  const same = await build();
  t.true(jsonOf(same).upToDate);
  t.true(await crypted());

  // Another password of the same length, the mtime put back: ctime and inode still tell.
  const { mtime } = await fsp.stat(pw);
  await fsp.rm(pw);
  await fsp.writeFile(pw, "other-password\n");
  await fsp.utimes(pw, mtime, mtime);
  const changed = await build();
  t.is(changed.code, 0, changed.stderr);
  t.false(jsonOf(changed).upToDate);
  t.deepEqual(
    jsonOf(changed)
      .steps.filter((s) => !s.reused)
      .map((s) => s.instruction),
    ["USER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password"],
  );
});

test("build.json names the inputs with their digests, the steps with their keys, and the outputs", async (t) => {
  const dir = path.join(work, "record");
  await fsp.mkdir(dir);
  const out = path.join(dir, "out");
  const recipe = await writeRecipe(dir, "record", recipeWith("LABEL version=1"));
  const result = await niftyc(["build", recipe, "--cache", path.join(dir, "cache"), "--out", out, "--json"]);
  t.is(result.code, 0, result.stderr);
  const json = jsonOf(result);
  t.regex(json.digest, /^sha256:[0-9a-f]{64}$/);
  // Absolute, so a program reading them from another directory finds the files.
  t.is(json.rootfs, path.join(out, "rootfs.tar"));
  t.is(json.outputs.rootfs, path.join(out, "rootfs.tar"));
  // Progress goes to stderr; stdout is the one JSON object.
  t.is(result.stdout.trim().split("\n").length, 1);
  t.regex(result.stderr, /\[ *1\/\d+\] ARG BASE=/);
  const record = await readBuildJson(out);
  t.is(record.digest, json.digest);
  t.deepEqual(
    record.inputs.map((i) => [i.name, i.digest]),
    [["busybox", fixture.busybox.digest]],
  );
  t.true(
    record.steps.every(
      (s) => /^[0-9a-f]{64}$/.test(s.key) && typeof s.ms === "number" && typeof s.reused === "boolean",
    ),
  );
  t.is(new Set(record.steps.map((s) => s.key)).size, record.steps.length);
  t.deepEqual(await fsp.readdir(dir).then((names) => names.filter((n) => n.includes("staging"))), []);
});
