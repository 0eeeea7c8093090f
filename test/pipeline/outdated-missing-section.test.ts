// `niftyc outdated --platform P` when the lock has no section for P: the lock file exists, so the
// message says what it lacks, and the hint names --platform (a plain `niftyc lock` locks only the
// platforms the file has).
import test from "ava";
import { runMain } from "../support/cli.ts";
import { mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { twoSuiteProject } from "../support/package-project.ts";

test("outdated for a platform an existing lock lacks says the lock has no section for it, and its hint names the platform", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(t, "niftyc-outdated-section-", "PACKAGE nifty-data\n");
  const niftyc = (command: string, ...extra: string[]) =>
    runMain([command, "app.nifty", "--cache", "c", ...mirrorFlags(archive.view()), ...extra], dir);
  const locked = await niftyc("lock", "--platform", "linux/arm64");
  t.is(locked.code, 0, locked.stderr);
  const outdated = await niftyc("outdated", "--platform", "linux/amd64");
  t.is(outdated.code, 1, outdated.stderr);
  t.regex(outdated.stderr, /app\.nifty\.lock has no section for linux\/amd64 yet \[NIFTY603\]/);
  t.regex(outdated.stderr, /niftyc lock app\.nifty --platform linux\/amd64/);
});

test("outdated with no lock file says the lock does not exist, for any platform asked", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(t, "niftyc-outdated-none-", "PACKAGE nifty-data\n");
  const outdated = await runMain(
    ["outdated", "app.nifty", "--cache", "c", ...mirrorFlags(archive.view()), "--platform", "linux/arm64"],
    dir,
  );
  t.is(outdated.code, 1, outdated.stderr);
  t.regex(outdated.stderr, /app\.nifty\.lock does not exist yet \[NIFTY603\]/);
  t.regex(outdated.stderr, /niftyc lock app\.nifty --platform linux\/arm64/);
});
