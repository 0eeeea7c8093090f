// A program for another machine than the image's platform is an error at the
// line that put it in the image, not an image labelled amd64 that fails at run
// time with `Exec format error` (test/pipeline/platforms.test.ts: other platforms).
// Debian's arm64 BusyBox is served from loopback (scripts/test-debs.ts brings
// it into cache/test-debs/).
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { BUSYBOX_ARM64, cachedForeignDeb, fetchForeignDebs } from "../support/foreign-debs.ts";
import { serve, startServer } from "../fetch/helpers/server.ts";
import { mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { twoSuiteProject } from "../support/package-project.ts";

test("FETCH of an arm64 static busybox is an error at its line, and nothing is written", async (t) => {
  let deb = cachedForeignDeb(BUSYBOX_ARM64);
  if (deb === undefined) {
    if (process.env.CI) t.fail("the arm64 test .deb is not cached: run node scripts/test-debs.ts");
    await fetchForeignDebs().catch((error: Error) =>
      t.log(`cannot download the arm64 .deb: ${error.message}`),
    );
    deb = cachedForeignDeb(BUSYBOX_ARM64);
    if (deb === undefined) return t.pass();
  }
  const server = await startServer({ "/busybox-static_arm64.deb": serve(deb) });
  t.teardown(() => server.close());
  const dir = mkdtempSync(join(tmpdir(), "niftyc-arm64-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fetchLine = `FETCH busybox ${server.url}/busybox-static_arm64.deb sha256:${BUSYBOX_ARM64.sha256} EXTRACT bin/busybox TO /bin/busybox`;
  writeFileSync(
    join(dir, "arm.nifty"),
    `FILE /etc/os-release <<EOF\nID=t\nEOF\n${fetchLine}\nSYMLINK /sbin/init /bin/busybox\n`,
  );
  const built = await runMain(
    ["build", "arm.nifty", "--cache", "c", "--out", "o", "--format", "rootfs"],
    dir,
  );
  t.is(built.code, 1, built.stderr);
  t.true(
    built.stderr.includes(
      "arm.nifty:4:1: error: /bin/busybox is a program for arm64 (aarch64), 64-bit, not for this image's linux/amd64 (x86-64, 64-bit) [NIFTY215]\n",
    ),
    built.stderr,
  );
  t.true(built.stderr.includes(`    4 | ${fetchLine}`));
  t.false(existsSync(join(dir, "o")), "no image labelled amd64 was written");
});

test("PACKAGE qualifiers are judged per platform: x:arm64 is refused at the qualifier for linux/amd64 (the default) and taken for linux/arm64; :native and :any everywhere", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-arm64-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "p.nifty"),
    "ARCHIVE debian bookworm\nPACKAGE busybox-static:arm64\nPACKAGE libc6:amd64 zlib1g:native readline-common:any\n",
  );
  const check = async (...platform: string[]) => {
    const checked = await runMain(["check", "--json", "p.nifty", ...platform], dir);
    const { diagnostics } = JSON.parse(checked.stdout) as {
      diagnostics: Array<{ code: string; line: number; column: number; endColumn: number; message: string }>;
    };
    return {
      code: checked.code,
      found: diagnostics.map((d) => [d.code, d.line, d.column, d.endColumn, d.message]),
    };
  };
  const amd64 = await check();
  t.is(amd64.code, 1);
  t.deepEqual(amd64.found, [
    [
      "NIFTY642",
      2,
      23,
      29,
      "PACKAGE busybox-static:arm64 cannot go in the linux/amd64 image (amd64): an image holds its own architecture's packages and Architecture: all ones",
    ],
  ]);
  const arm64 = await check("--platform", "linux/arm64");
  t.is(arm64.code, 1);
  t.deepEqual(arm64.found, [
    [
      "NIFTY642",
      3,
      14,
      20,
      "PACKAGE libc6:amd64 cannot go in the linux/arm64 image (arm64): an image holds its own architecture's packages and Architecture: all ones",
    ],
  ]);
  writeFileSync(
    join(dir, "p.nifty"),
    "ARCHIVE debian bookworm\nPACKAGE busybox-static:arm64 zlib1g:native\n",
  );
  t.deepEqual(await check("--platform", "linux/arm64"), { code: 0, found: [] });
});

test("niftyc lock refuses a qualifier the image's platform cannot hold, at the qualifier, as check and build do, and writes no lock", async (t) => {
  if (!requireArchive(t)) return;
  // nifty-data is Architecture: all (the resolver would take it for :arm64); nifty-pager has only amd64.
  const { dir, archive } = await twoSuiteProject(
    t,
    "niftyc-lock-foreign-",
    "PACKAGE nifty-data:arm64\nPACKAGE nifty-pager:i386\n",
  );
  const r = await runMain(["lock", "app.nifty", "--cache", "c", ...mirrorFlags(archive.view())], dir);
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    /app\.nifty:3:19: error: PACKAGE nifty-data:arm64 cannot go in the linux\/amd64 image \(amd64\).*\[NIFTY642\]/,
  );
  t.regex(
    r.stderr,
    /app\.nifty:4:20: error: PACKAGE nifty-pager:i386 cannot go in the linux\/amd64 image \(amd64\).*\[NIFTY642\]/,
  );
  t.notRegex(r.stderr, /NIFTY601/);
  t.false(existsSync(join(dir, "app.nifty.lock")), "no lock was written");
  const checked = await runMain(["check", "app.nifty"], dir);
  t.is(checked.code, 1);
  t.regex(checked.stderr, /app\.nifty:3:19: .*\[NIFTY642\]/);
});
