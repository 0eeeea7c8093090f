// The up-to-date short cut (src/cli/build-stamp.ts), through the real bin/niftyc:
// a repeated up-to-date build is answered from its stamp with only the short
// cut's modules loaded and the same output, and every change to what the build
// read or wrote, to its flags, environment or store, runs the build again.
import test, { type ExecutionContext } from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { journalName } from "../../src/cache/journals.ts";
import { bootId } from "../../src/core/process.ts";
import {
  NIFTYC,
  NODE,
  ROOT,
  baseEnv,
  busyboxRecipe,
  collect,
  execFileP,
  dropbearLines,
  jsonOf,
  listTree,
  niftyc,
  readBuildJson,
  sha256,
  useFixture,
  type CliResult,
} from "../pipeline/helpers.ts";
import { debianArchive, mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { twoSuiteArchives } from "../support/package-project.ts";

const ctx = useFixture(test);
const HOOK = path.join(ROOT, "test/pipeline/record-loads.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Past the second within which a file read after a change is not trusted (src/core/host-inputs.ts). */
const SETTLE_MS = 1100;

/** What the short cut may load: the launcher and a handful of small modules (builtins come through process.getBuiltinModule). */
const SHORT_CUT = new Set([
  "bin/niftyc",
  "src/cli/io.ts",
  "src/cli/build-stamp.ts",
  "src/core/version.ts",
  "src/core/host-inputs.ts",
  "src/core/clock.ts",
  "src/cache/records.ts",
  "src/cli/build-report.ts",
  "src/diagnostics/escape.ts",
]);

interface Project {
  dir: string;
  recipe: string;
  run(
    extra?: string[],
    env?: Record<string, string>,
  ): Promise<CliResult & { loads: string[]; recalled: boolean }>;
}

/** A recipe with a FETCH, a COPY of a directory and a password from a secret file, in its own directory and store. */
async function project(_t: ExecutionContext, name: string, tail = ""): Promise<Project> {
  const dir = path.join(ctx.work, name);
  await fsp.mkdir(path.join(dir, "site/css"), { recursive: true });
  await fsp.writeFile(path.join(dir, "site/index.html"), "<h1>hello</h1>\n");
  await fsp.writeFile(path.join(dir, "site/css/a.css"), "h1 { color: red }\n");
  await fsp.writeFile(path.join(dir, "pw"), "first-password\n");
  const recipe = path.join(dir, `${name}.nifty`);
  await fsp.writeFile(
    recipe,
    busyboxRecipe(
      ctx.fixture,
      `${dropbearLines(ctx.fixture)}\nCOPY site /srv/www\nUSER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password\nENV PORT=2200\n${tail}`,
    ),
  );
  const loads = path.join(dir, "loads.txt");
  return {
    dir,
    recipe,
    async run(extra = [], env = {}) {
      const result = await niftyc(["build", `${name}.nifty`, "--secret", "luser-password=pw", ...extra], {
        cwd: dir,
        nodeArgs: ["--import", HOOK],
        env: { NIFTY_TEST_LOADS: loads, ...env },
      });
      const list = (await fsp.readFile(loads, "utf8"))
        .split("\n")
        .filter(Boolean)
        .filter((u) => u.startsWith("file://"))
        .map((u) => path.relative(ROOT, new URL(u).pathname));
      return { ...result, loads: list, recalled: !list.includes("src/pipeline/build.ts") };
    },
  };
}

/**
 * Built, then found up to date once its inputs settled (which leaves the
 * stamp), then answered from the stamp. Returns what the build itself prints
 * when up to date (NIFTY_NO_STAMPS: the short cut is not tried).
 */
async function stamped(
  t: ExecutionContext,
  p: Project,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const first = await p.run(extra, env);
  t.is(first.code, 0, first.stderr);
  await sleep(SETTLE_MS);
  const found = await p.run(extra, { ...env, NIFTY_NO_STAMPS: "1" });
  t.is(found.code, 0, found.stderr);
  t.false(found.recalled, "NIFTY_NO_STAMPS runs the build");
  t.true(jsonOrText(found).upToDate);
  const recalled = await p.run(extra, env);
  t.is(recalled.code, 0, recalled.stderr);
  t.true(recalled.recalled, `answered from the stamp; loaded ${recalled.loads.join(", ")}`);
  return found;
}

function jsonOrText(r: CliResult): { upToDate: boolean } {
  return r.stdout.startsWith("{") ? jsonOf(r) : { upToDate: r.stdout.startsWith("up to date ") };
}

test("a build that warned is answered from its stamp too, and says its warnings again as the build does", async (t) => {
  const p = await project(t, "warned", "FILE /usr/local/bin/tool MODE 4755 <<EOF\n#!/bin/sh\nEOF\n");
  const found = await stamped(t, p);
  t.regex(found.stderr, /warned\.nifty:\d+:1: warning: the image has 1 setuid or setgid file.*\[NIFTY232\]/);
  // One file, in the singular.
  t.regex(found.stderr, /1 setuid or setgid file, which runs with its owner's rights/);
  const recalled = await p.run();
  t.true(recalled.recalled, "answered from the stamp");
  t.is(recalled.stdout, found.stdout);
  t.is(recalled.stderr, found.stderr, "the same warnings, with their lines and carets");
  // --strict is another command line: its build refuses what the stamped one only warned about.
  const strict = await p.run(["--strict"]);
  t.is(strict.code, 1);
  t.regex(strict.stderr, /error: the image has 1 setuid or setgid file/);
});

test("--json of a build that warned lists its warnings, as the stamp's answer and a restore into a fresh --out do", async (t) => {
  const p = await project(t, "warnedjson", "FILE /usr/local/bin/tool MODE 4755 <<EOF\n#!/bin/sh\nEOF\n");
  const built = await p.run(["--json"]);
  t.is(built.code, 0, built.stderr);
  const diagnostics = (r: CliResult) =>
    (JSON.parse(r.stdout) as { diagnostics: Array<Record<string, unknown>> }).diagnostics;
  const listed = diagnostics(built);
  t.is(listed.length, 1, built.stdout);
  t.like(listed[0], { severity: "warning", code: "NIFTY232", file: "warnedjson.nifty", column: 1 });
  t.true((listed[0]!.line as number) > 1);
  t.regex(listed[0]!.message as string, /1 setuid or setgid file/);
  const found = await stamped(t, p, ["--json"]);
  t.deepEqual(diagnostics(found), listed);
  const recalled = await p.run(["--json"]);
  t.true(recalled.recalled, "answered from the stamp");
  t.deepEqual(diagnostics(recalled), listed);
  await restorable(t, p, ["--json"]);
  await fsp.rm(outOf(p), { recursive: true });
  const restored = await p.run(["--json"]);
  t.is(restored.code, 0, restored.stderr);
  t.true(restored.recalled, "restored from the stamp, not built");
  t.deepEqual(diagnostics(restored), listed, "restored from the stamp into a fresh out/");
  // A build with nothing to say lists nothing, still as an array.
  const quiet = await project(t, "quietjson");
  const clean = await quiet.run(["--json"]);
  t.deepEqual(diagnostics(clean), []);
});

test("a repeated up-to-date build is answered from its stamp: only the short cut loads, and it prints what the build printed", async (t) => {
  const p = await project(t, "same");
  const found = await stamped(t, p);
  const recalled = await p.run();
  t.true(recalled.recalled);
  t.deepEqual(
    recalled.loads.filter((l) => !SHORT_CUT.has(l)),
    [],
    "nothing but the short cut's modules",
  );
  t.is(recalled.stdout, found.stdout);
  t.is(recalled.stderr, found.stderr);
  t.regex(recalled.stdout, /^up to date same: sha256:[0-9a-f]{64}\n  out\/same\/rootfs\.tar\n/);
  t.regex(recalled.stderr, /\[ *1\/\d+\] ARG BASE=.*\(cached\)/);

  // --json: the same object, the stages aside.
  const foundJson = await stamped(t, p, ["--json", "-q"]);
  const recalledJson = await p.run(["--json", "-q"]);
  t.true(recalledJson.recalled);
  t.is(recalledJson.stderr, "");
  const { stages: s1, ...a } = JSON.parse(foundJson.stdout) as Record<string, unknown>;
  const { stages: s2, ...b } = JSON.parse(recalledJson.stdout) as Record<string, unknown>;
  t.deepEqual(b, a);
  t.true(jsonOf(recalledJson).upToDate);
  t.like((s2 as Array<{ name: string }>)[0], { name: "up to date" });
  t.true(Array.isArray(s1));

  // The stamp holds identities, never the password or a hash of it.
  const stamps = await fsp.readdir(path.join(p.dir, "cache/stamps"));
  t.is(stamps.length, 2);
  for (const s of stamps)
    t.false((await fsp.readFile(path.join(p.dir, "cache/stamps", s), "utf8")).includes("first-password"));
});

test("a build leaves a stamp too: the first rebuild after it is answered, as the build would answer it", async (t) => {
  const p = await project(t, "fresh");
  await sleep(SETTLE_MS);
  for (const extra of [[], ["--json"]]) {
    await fsp.rm(path.join(p.dir, "out"), { recursive: true, force: true });
    const built = await p.run(extra);
    t.is(built.code, 0, built.stderr);
    t.false(jsonOrText(built).upToDate);
    const recalled = await p.run(extra);
    t.true(recalled.recalled, "answered from the stamp the build left");
    const full = await p.run(extra, { NIFTY_NO_STAMPS: "1" });
    t.false(full.recalled);
    t.is(recalled.stderr, full.stderr);
    if (extra.length === 0) t.is(recalled.stdout, full.stdout);
    else {
      const { stages: _a, ...a } = JSON.parse(full.stdout) as Record<string, unknown>;
      const { stages: _b, ...b } = JSON.parse(recalled.stdout) as Record<string, unknown>;
      t.deepEqual(b, a);
    }
  }
});

/** Each change: the next build runs (and says what it found), and once settled the stamp answers again. */
const changes: Array<{
  title: string;
  change(p: Project): Promise<void>;
  expect: "rebuilt" | "up to date";
  extra?: string[];
  env?: Record<string, string>;
}> = [
  {
    title: "a COPY file rewritten with the same size, its mtime put back",
    async change(p) {
      const file = path.join(p.dir, "site/index.html");
      const { mtime } = await fsp.stat(file);
      await fsp.writeFile(file, "<h1>HELLO</h1>\n");
      await fsp.utimes(file, mtime, mtime);
    },
    expect: "rebuilt",
  },
  {
    title: "a file added in a COPY subdirectory",
    change: (p) => fsp.writeFile(path.join(p.dir, "site/css/b.css"), "p {}\n"),
    expect: "rebuilt",
  },
  {
    title: "another password in the secret file",
    change: (p) => fsp.writeFile(path.join(p.dir, "pw"), "other-password\n"),
    expect: "rebuilt",
  },
  {
    title: "the recipe rewritten with the same text",
    change: async (p) => fsp.writeFile(p.recipe, await fsp.readFile(p.recipe)),
    expect: "up to date",
  },
  {
    title: "an output file edited",
    change: (p) => fsp.appendFile(path.join(p.dir, "out/edited/edited.service"), "# edited\n"),
    expect: "up to date",
  },
  {
    title: "the output directory removed",
    change: (p) => fsp.rm(path.join(p.dir, "out"), { recursive: true }),
    expect: "rebuilt",
  },
  {
    title: "the store's use record past its hour",
    async change(p) {
      // As an hour and more later: the time a use record holds is what the store reads.
      const uses = path.join(p.dir, "cache/uses");
      const old = new Date(Date.now() - 2 * 3600_000).toISOString();
      for (const f of await fsp.readdir(uses)) {
        const record = JSON.parse(await fsp.readFile(path.join(uses, f), "utf8")) as { lastUsed: string };
        await fsp.writeFile(path.join(uses, f), JSON.stringify({ ...record, lastUsed: old }) + "\n");
      }
    },
    expect: "up to date",
  },
];

for (const [i, c] of changes.entries()) {
  test(`the build runs again after ${c.title}`, async (t) => {
    const name = ["copy", "added", "secret", "recipe", "edited", "removed", "uses"][i]!;
    const p = await project(t, name);
    await stamped(t, p);
    await c.change(p);
    const after = await p.run();
    t.is(after.code, 0, after.stderr);
    t.false(after.recalled, "not answered from the stamp");
    t.true(
      after.stdout.startsWith(c.expect === "rebuilt" ? `built ${name}:` : `up to date ${name}:`),
      after.stdout,
    );
    if (name === "uses") {
      const uses = path.join(p.dir, "cache/uses");
      const times = await Promise.all(
        (await fsp.readdir(uses)).map(async (f) =>
          Date.parse(
            (JSON.parse(await fsp.readFile(path.join(uses, f), "utf8")) as { lastUsed: string }).lastUsed,
          ),
        ),
      );
      t.true(
        times.some((m) => Date.now() - m < 3600_000),
        "the build refreshed its use record",
      );
    }
    // Settled, the same command is answered from a stamp again (left by this run or the next).
    await sleep(SETTLE_MS);
    t.is((await p.run()).code, 0);
    t.true((await p.run()).recalled);
  });
}

test("another --arg, SOURCE_DATE_EPOCH or --format is another command: the build runs", async (t) => {
  const p = await project(t, "flags", "ARG GREETING=hi\nFILE /etc/motd <<EOF\n${GREETING}\nEOF\n");
  await stamped(t, p);
  const arg = await p.run(["--arg", "GREETING=hello"]);
  t.false(arg.recalled);
  t.regex(arg.stdout, /^built flags:/);
  const epoch = await p.run([], { SOURCE_DATE_EPOCH: "1700000000" });
  t.false(epoch.recalled);
  t.regex(epoch.stdout, /^built flags:/);
  t.is(
    ((await readBuildJson(path.join(p.dir, "out/flags"))) as unknown as { epoch: number }).epoch,
    1700000000,
  );
  const formats = await p.run(["--format", "rootfs,nspawn"]);
  t.false(formats.recalled);
  t.regex(formats.stdout, /^built flags:/);
});

test("a mirror's password (--mirror, NIFTY_MIRROR_*) reaches no file of the store, and the stamp still answers; another password is another command", async (t) => {
  const p = await project(t, "mirrorpw");
  const flag = ["--mirror", "debian=http://ciuser:FlagPassw0rd@127.0.0.1:9/debian"];
  const env = { NIFTY_MIRROR_SECURITY: "http://envuser:EnvPassw0rd@127.0.0.1:9/debian-security" };
  await stamped(t, p, flag, env);
  // Every file of the store (the stamps are read by whoever shares it), and of out/.
  const leaks: string[] = [];
  for (const top of ["cache", "out"]) {
    for (const file of await fsp.readdir(path.join(p.dir, top), { recursive: true })) {
      const full = path.join(p.dir, top, file);
      if (!(await fsp.stat(full)).isFile()) continue;
      const text = (await fsp.readFile(full)).toString("latin1");
      if (/FlagPassw0rd|EnvPassw0rd|ciuser|envuser/.test(text)) leaks.push(path.join(top, file));
    }
  }
  t.deepEqual(leaks, [], "the store or out/ holds the mirror's credentials");
  const other = await p.run(["--mirror", "debian=http://ciuser:OtherPassw0rd@127.0.0.1:9/debian"], env);
  t.is(other.code, 0, other.stderr);
  t.false(other.recalled, "another password is another invocation");
});

test("a secret from the environment is never answered from a stamp", async (t) => {
  const p = await project(t, "env");
  const env = { PW: "first-password" };
  const args = ["build", "env.nifty", "--secret", "luser-password=env:PW", "-q"];
  const loads = path.join(p.dir, "env-loads.txt");
  const run = async () => {
    const r = await niftyc(args, {
      cwd: p.dir,
      nodeArgs: ["--import", HOOK],
      env: { NIFTY_TEST_LOADS: loads, ...env },
    });
    t.is(r.code, 0, r.stderr);
    return (await fsp.readFile(loads, "utf8")).includes("src/pipeline/build.ts");
  };
  t.true(await run());
  await sleep(SETTLE_MS);
  for (let i = 0; i < 3; i++) t.true(await run(), "the build ran");
  t.deepEqual(await fsp.readdir(path.join(p.dir, "cache/stamps")).catch(() => []), []);
});

// Serial: other tests' builds loading the machine would stretch the second the check needs.
test.serial("a recipe read within a second of its last change leaves no stamp", async (t) => {
  const p = await project(t, "racy");
  await stamped(t, p);
  const started = Date.now();
  await fsp.writeFile(p.recipe, await fsp.readFile(p.recipe));
  const next = await p.run();
  t.false(next.recalled);
  if (Date.now() - started < 1000) {
    // The build read the recipe less than a second after the write: it may not vouch for it.
    t.deepEqual(await fsp.readdir(path.join(p.dir, "cache/stamps")), []);
  } else t.log("the build took over a second to start: the window was missed, nothing to check");
});

test("cache gc removes the stamps of the use records it removes", async (t) => {
  const p = await project(t, "gc");
  await stamped(t, p);
  const gc = await niftyc(["cache", "gc", "--days", "0", "--cache", "cache"], { cwd: p.dir });
  t.is(gc.code, 0, gc.stderr);
  t.deepEqual(await fsp.readdir(path.join(p.dir, "cache/stamps")), []);
  t.false((await p.run()).recalled);
});

test("a recipe on standard input is never answered from a stamp", async (t) => {
  const p = await project(t, "stdin");
  const text = await fsp.readFile(p.recipe);
  const run = async () => {
    const child = spawn(NODE, [NIFTYC, "build", "-", "--secret", "luser-password=pw", "-q"], {
      cwd: p.dir,
      env: baseEnv(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    child.stdin!.end(text);
    const r = await collect(child);
    t.is(r.code, 0, r.stderr);
    return r.stdout;
  };
  t.regex(await run(), /^built stdin:/);
  await sleep(SETTLE_MS);
  t.regex(await run(), /^up to date stdin:/);
  t.regex(await run(), /^up to date stdin:/);
  t.deepEqual(await fsp.readdir(path.join(p.dir, "cache/stamps")).catch(() => []), []);
});

test("the lock is an input: rewritten, the build runs; gone, the build resolves again and leaves no stamp", async (t) => {
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const view = archive.view();
  const dir = path.join(ctx.work, "lock");
  await fsp.mkdir(dir);
  await fsp.writeFile(path.join(dir, "app.nifty"), `${twoSuiteArchives(archive.keyring)}PACKAGE nifty-app\n`);
  const loads = path.join(dir, "loads.txt");
  const args = ["build", "app.nifty", "--format", "rootfs", ...mirrorFlags(view)];
  const run = async () => {
    const r = await niftyc(args, {
      cwd: dir,
      nodeArgs: ["--import", HOOK],
      env: { NIFTY_TEST_LOADS: loads },
    });
    t.is(r.code, 0, r.stderr);
    return { ...r, recalled: !(await fsp.readFile(loads, "utf8")).includes("src/pipeline/build.ts") };
  };
  t.regex((await run()).stderr, /wrote app\.nifty\.lock/);
  await sleep(SETTLE_MS);
  t.false((await run()).recalled);
  t.true((await run()).recalled);

  const lock = path.join(dir, "app.nifty.lock");
  await fsp.writeFile(lock, await fsp.readFile(lock));
  const rewritten = await run();
  t.false(rewritten.recalled);
  t.regex(rewritten.stdout, /^up to date app:/);

  await sleep(SETTLE_MS);
  await run();
  t.true((await run()).recalled);
  await fsp.rm(lock);
  const resolved = await run();
  t.false(resolved.recalled);
  t.regex(resolved.stderr, /wrote app\.nifty\.lock/);
  // Resolved against the archive: nothing to vouch for the lock it wrote until a build reads it.
  t.deepEqual(await fsp.readdir(path.join(dir, "cache/stamps")), []);
});

test("a multi-platform build leaves a stamp: a no-op rebuild is answered from it; the recipe, a lock section, the platform list or an output file changed runs the build", async (t) => {
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const view = archive.view();
  const dir = path.join(ctx.work, "platforms");
  await fsp.mkdir(dir);
  const recipe = `${twoSuiteArchives(archive.keyring)}FILE /etc/os-release <<EOF\nID=t\nEOF\nPACKAGE nifty-data\n`;
  await fsp.writeFile(path.join(dir, "app.nifty"), recipe);
  const loads = path.join(dir, "loads.txt");
  const run = async (platforms = "linux/amd64,linux/arm64", env: Record<string, string> = {}) => {
    const args = ["build", "app.nifty", "--format", "rootfs,oci", "--platform", platforms];
    const r = await niftyc([...args, ...mirrorFlags(view)], {
      cwd: dir,
      nodeArgs: ["--import", HOOK],
      env: { NIFTY_TEST_LOADS: loads, ...env },
    });
    t.is(r.code, 0, r.stderr);
    return { ...r, recalled: !(await fsp.readFile(loads, "utf8")).includes("src/pipeline/build.ts") };
  };
  await run();
  await sleep(SETTLE_MS);
  const found = await run("linux/amd64,linux/arm64", { NIFTY_NO_STAMPS: "1" });
  t.false(found.recalled);
  const recalled = await run();
  t.true(recalled.recalled, "answered from the stamp");
  t.is(recalled.stdout.replace(/\(.*?ms\)/g, ""), found.stdout.replace(/\(.*?ms\)/g, ""));
  t.regex(recalled.stdout, /2 platforms: image index sha256:/);
  // Every platform's step lines and notes, as the build found up to date printed them.
  t.is(recalled.stderr, found.stderr);
  t.is(found.stderr.match(/^\[1\/\d+\] /gm)?.length, 2, found.stderr);
  const settleThenRun = async (change: () => Promise<void>, platforms?: string) => {
    await change();
    await sleep(SETTLE_MS);
    const changed = await run(platforms);
    t.false(changed.recalled);
    t.true((await run(platforms)).recalled, "the build it ran left a new stamp");
  };
  // The same bytes written again: a new identity is a change, as for any input.
  await settleThenRun(() => fsp.writeFile(path.join(dir, "app.nifty"), recipe));
  const lock = await fsp.readFile(path.join(dir, "app.nifty.lock"), "utf8");
  t.regex(lock, /\nArchitecture: arm64\n/);
  await settleThenRun(() => fsp.writeFile(path.join(dir, "app.nifty.lock"), lock));
  await settleThenRun(async () => {
    const tar = path.join(dir, "out/app/linux-arm64/rootfs.tar");
    await fsp.utimes(tar, new Date(0), new Date(0));
  });
  await settleThenRun(async () => {}, "linux/arm64,linux/amd64");
});

/** The project's output directory (out/<name>): beside it, in out/, its secret stamps. */
const outOf = (p: Project): string => path.join(p.dir, "out", path.basename(p.recipe, ".nifty"));

/** Every entry under `dir`: its type and mode, and its bytes or target; two output directories compared whole. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const entries: Record<string, string> = {};
  for (const rel of await listTree(dir)) {
    const file = path.join(dir, rel);
    const st = await fsp.lstat(file);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) entries[rel] = `link ${await fsp.readlink(file)}`;
    else if (st.isDirectory()) entries[rel] = `dir ${mode}`;
    else entries[rel] = `file ${mode} ${sha256(await fsp.readFile(file))}`;
  }
  return entries;
}

/** Built, settled, and built again into a fresh out/: the stamp that warm build leaves can restore out/. */
async function restorable(
  t: ExecutionContext,
  p: Project,
  extra: string[] = [],
): Promise<Record<string, string>> {
  t.is((await p.run(extra)).code, 0);
  await sleep(SETTLE_MS);
  await fsp.rm(outOf(p), { recursive: true, force: true });
  const warm = await p.run(extra);
  t.is(warm.code, 0, warm.stderr);
  t.false(warm.recalled, "the stamp the first build left cannot restore: its blobs were written that second");
  return snapshot(outOf(p));
}

/** What the warm short cut may load besides the up-to-date short cut's modules. */
const RESTORE = new Set([
  "src/cli/build-restore.ts",
  "src/cache/assembled.ts",
  "src/cache/journals.ts",
  "src/core/atomic.ts",
  "src/core/out-dir.ts",
  "src/core/process.ts",
]);

test("a removed output directory is restored from the store: the same files, build.json and report as a warm build", async (t) => {
  const p = await project(t, "restore");
  const out = outOf(p);
  for (const extra of [[], ["--json"]]) {
    await restorable(t, p, extra);
    await fsp.rm(out, { recursive: true });
    const warm = await p.run(extra, { NIFTY_NO_STAMPS: "1" });
    t.false(warm.recalled);
    const expected = await snapshot(out);
    await fsp.rm(out, { recursive: true });
    const restored = await p.run(extra);
    t.is(restored.code, 0, restored.stderr);
    t.true(restored.recalled, "restored without the compiler");
    t.deepEqual(
      restored.loads.filter((l) => !SHORT_CUT.has(l) && !RESTORE.has(l)),
      [],
      "nothing but the short cut's modules",
    );
    t.deepEqual(await snapshot(out), expected);
    t.is(restored.stderr, warm.stderr);
    t.regex(restored.stderr, /\(cached\)/);
    if (extra.length === 0) {
      t.is(restored.stdout, warm.stdout);
      t.regex(restored.stdout, /^built restore:/);
    } else {
      const { stages: s1, ...a } = JSON.parse(warm.stdout) as Record<string, unknown>;
      const { stages: s2, ...b } = JSON.parse(restored.stdout) as Record<string, unknown>;
      t.deepEqual(b, a);
      t.false(jsonOf(restored).upToDate);
      t.deepEqual(
        (s2 as Array<{ name: string }>).map((s) => s.name),
        ["restored"],
      );
      t.true(Array.isArray(s1));
    }
    // The stamp now holds the restored files: the next run is up to date, from the stamp.
    const again = await p.run(extra);
    t.true(again.recalled);
    t.true(jsonOrText(again).upToDate);
  }
});

test("after a restart with a journal of unsynced blobs, a removed out/ is not restored from the stamp: the build checks the blobs, and one that lost its bytes is written again", async (t) => {
  const p = await project(t, "reboot");
  const expected = await restorable(t, p);
  const out = outOf(p);
  const { digest } = await readBuildJson(out);
  await fsp.rm(out, { recursive: true });
  // rootfs.tar's blob loses its bytes but keeps its identity (inode, mode, size, mtime), as a file
  // named before its bytes reached the disk can after a crash of a file system without a journal.
  const blob = path.join(p.dir, "cache/blobs/sha256", digest.slice("sha256:".length));
  const before = await fsp.stat(blob, { bigint: true });
  await fsp.chmod(blob, 0o644);
  await fsp.writeFile(blob, Buffer.alloc(Number(before.size)));
  await fsp.chmod(blob, 0o444);
  // To the nanosecond (utimes takes seconds as a double, which cannot hold them).
  const ns = before.mtimeNs;
  await execFileP("touch", [
    "-m",
    "-d",
    `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`,
    blob,
  ]);
  t.deepEqual((await fsp.stat(blob, { bigint: true })).mtimeNs, ns, "the identity is as it was");
  const journals = path.join(p.dir, "cache/unsynced");
  await fsp.mkdir(journals, { recursive: true });
  let earlier = randomUUID();
  while (earlier === bootId()) earlier = randomUUID();
  const planted = journalName(earlier, 4242, "ab", Date.now());
  await fsp.writeFile(path.join(journals, planted), `${digest}\n`);

  const rebuilt = await p.run();
  t.is(rebuilt.code, 0, rebuilt.stderr);
  t.false(rebuilt.recalled, "the build ran: its opening of the store checked the journal's blobs");
  // The same files; build.json says the same image (its steps' timings are the run's own).
  const { "build.json": _, ...files } = await snapshot(out);
  const { "build.json": __, ...expectedFiles } = expected;
  t.deepEqual(files, expectedFiles);
  t.is((await readBuildJson(out)).digest, digest);
  t.is(sha256(await fsp.readFile(blob)), digest, "the blob was written again");
  const left = await fsp.readdir(journals);
  t.false(left.includes(planted), "the earlier boot's journal is gone");
  t.true(
    left.every((name) => name.startsWith(`${bootId()}.`)),
    `only this boot's journals (the rebuild's own) stay: ${left.join(", ")}`,
  );
});

/** The blob of the restored out/'s `<name>.nspawn`, as the stamp names it. */
async function nspawnBlob(p: Project, name: string): Promise<string> {
  const dir = path.join(p.dir, "cache/stamps");
  for (const file of await fsp.readdir(dir)) {
    const stamp = JSON.parse(await fsp.readFile(path.join(dir, file), "utf8")) as {
      restore?: {
        entries: Array<{ path: string; digest?: string }>;
        blobs: Array<{ digest: string; path: string }>;
      };
    };
    const digest = stamp.restore?.entries.find((e) => e.path === `${name}.nspawn`)?.digest;
    const blob = stamp.restore?.blobs.find((b) => b.digest === digest);
    if (blob !== undefined) return blob.path;
  }
  throw new Error("no stamp that restores");
}

const restoreChanges: Array<{
  name: string;
  title: string;
  change(p: Project): Promise<void>;
  extra?: string[];
}> = [
  {
    name: "redit",
    title: "the recipe edited",
    change: (p) => fsp.appendFile(p.recipe, "ENV EDITED=1\n"),
  },
  {
    name: "rsecret",
    title: "another password in the secret file",
    change: (p) => fsp.writeFile(path.join(p.dir, "pw"), "other-password\n"),
  },
  {
    name: "rbeside",
    title: "the secret stamps beside out/ removed with it",
    change: (p) => fsp.rm(path.join(p.dir, "out"), { recursive: true }),
  },
  { name: "rflag", title: "another flag", change: async () => {}, extra: ["--format", "rootfs,nspawn"] },
  {
    name: "rgone",
    title: "an output's blob removed from the store",
    change: async (p) => fsp.rm(await nspawnBlob(p, "rgone")),
  },
  {
    name: "raltered",
    title: "an output's blob rewritten in place, its size kept",
    async change(p) {
      const blob = await nspawnBlob(p, "raltered");
      const bytes = await fsp.readFile(blob);
      await fsp.chmod(blob, 0o644);
      await fsp.writeFile(blob, Buffer.from(bytes.toString("latin1").replace(/\w/, "X"), "latin1"));
      await fsp.chmod(blob, 0o444);
    },
  },
];

for (const c of restoreChanges) {
  test(`out/ is not restored from the stamp after ${c.title}: the build runs`, async (t) => {
    const p = await project(t, c.name);
    const expected = await restorable(t, p);
    await fsp.rm(outOf(p), { recursive: true });
    await c.change(p);
    const after = await p.run(c.extra);
    t.is(after.code, 0, after.stderr);
    t.false(after.recalled, "the build ran");
    t.regex(after.stdout, new RegExp(`^built ${c.name}:`));
    // The blob removed: the build writes that output afresh, the same bytes as before (build.json
    // aside: it holds each step's time, and the steps were replayed into a tree).
    if (c.name === "rgone") {
      const { "build.json": _a, ...now } = await snapshot(outOf(p));
      const { "build.json": _b, ...before } = expected;
      t.deepEqual(now, before);
    }
  });
}

test("a blob stored again (its mtime refreshed, as the store does for gc) is hashed, found whole, and restored from", async (t) => {
  const p = await project(t, "ragain");
  const expected = await restorable(t, p);
  await fsp.rm(outOf(p), { recursive: true });
  const now = new Date();
  const blob = await nspawnBlob(p, "ragain");
  await fsp.utimes(blob, now, now);
  const restored = await p.run();
  t.is(restored.code, 0, restored.stderr);
  t.true(restored.recalled, "restored without the compiler");
  t.deepEqual(await snapshot(outOf(p)), expected);
});
