// A --mirror is used only for an archive of its name: a misspelt one (`--mirror debain=…`) used to be
// silently unused, the packages then downloaded from apt's sources. It is now a warning (NIFTY634)
// with the closest archive name.
import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { scratchDir, twoSuiteProject } from "../support/package-project.ts";

const RECIPE = "FILE /etc/os-release <<EOF\nID=t\nEOF\nSYMLINK /sbin/init /etc/os-release\n";

test("build warns of a --mirror whose name is no archive's, with the closest name, and not of debian or the recipe's own", async (t) => {
  const dir = scratchDir(t, "niftyc-mirror-names-");
  writeFileSync(join(dir, "app.nifty"), RECIPE);
  const build = (mirrors: string[], ...extra: string[]) =>
    runMain(
      [
        "build",
        "app.nifty",
        "--cache",
        "c",
        "--out",
        "o",
        "--format",
        "rootfs",
        ...mirrors.flatMap((m) => ["--mirror", m]),
        ...extra,
      ],
      dir,
    );
  const r = await build(["debain=http://127.0.0.1:9/", "debian-security=http://127.0.0.1:9/"]);
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stderr,
    /warning: --mirror debain=… is given but the recipe names no archive debain: it is not used \[NIFTY634\]/,
  );
  t.regex(r.stderr, /did you mean --mirror debian=…\?/);
  t.notRegex(r.stderr, /archive debian-security/);
  const strict = await build(["debain=http://127.0.0.1:9/"], "--strict");
  t.is(strict.code, 1, strict.stderr);
  const good = await build(["debian=http://127.0.0.1:9/"]);
  t.notRegex(good.stderr, /NIFTY634/);
});

test("lock says the same of a misspelt --mirror, and takes the recipe's ARCHIVE names as known", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(t, "niftyc-mirror-names-", "PACKAGE nifty-pager\n");
  const r = await runMain(
    [
      "lock",
      "app.nifty",
      "--cache",
      "c",
      ...mirrorFlags(archive.view()),
      "--mirror",
      "debian-securty=http://127.0.0.1:9/",
    ],
    dir,
  );
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stderr,
    /--mirror debian-securty=… is given but the recipe names no archive debian-securty.*\[NIFTY634\].*did you mean --mirror debian-security=…\?/,
  );
  t.notRegex(r.stderr, /archive debian[ :]/);
});

test("lock --quiet still says it of a misspelt --mirror: the warning is no progress", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(t, "niftyc-mirror-names-", "PACKAGE nifty-pager\n");
  const lock = (...extra: string[]) =>
    runMain(
      [
        "lock",
        "app.nifty",
        "--cache",
        "c",
        ...mirrorFlags(archive.view()),
        "--mirror",
        "debain=http://127.0.0.1:9/",
        ...extra,
      ],
      dir,
    );
  const first = await lock("--quiet");
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /--mirror debain=… is given but the recipe names no archive debain.*\[NIFTY634\]/);
  // The lock now covers the recipe: the same warning when nothing is resolved again.
  const again = await lock("-q");
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /\[NIFTY634\].*did you mean --mirror debian=…\?/);
});
