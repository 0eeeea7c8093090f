// A mirror that replays an older InRelease, still validly signed and not yet
// expired, must not move a lock backwards: apt refuses a Release older than
// the one it has, and the lock records the Date of the one it was resolved
// against. Served by the loopback archive's "older" variant (the same text
// dated a day earlier, signed with the archive key).
import test from "ava";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { requireArchive, mirrorFlags } from "../support/debian-archive.ts";
import { buildAppRootfs, twoSuiteProject } from "../support/package-project.ts";

const niftyc = (dir: string, argv: string[]) => runMain(argv, dir);

test("lock --update, outdated and a re-resolving build refuse an InRelease older than the lock's, and leave the lock as it was", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(t, "niftyc-rollback-", "PACKAGE nifty-lib\n");
  const good = await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags(archive.view())]);
  t.is(good.code, 0, good.stderr);
  const lock = readFileSync(join(dir, "app.nifty.lock"), "utf8");

  const older = archive.view("older");
  for (const argv of [
    ["lock", "app.nifty", "--update"],
    ["outdated", "app.nifty"],
  ]) {
    const r = await niftyc(dir, [...argv, "--cache", "c", ...mirrorFlags(older)]);
    t.is(r.code, 1, `${argv.join(" ")}: ${r.stdout}${r.stderr}`);
    t.regex(
      r.stderr,
      /the InRelease of bookworm \(.*\) is dated .*, older than the .* the lock was resolved against \[NIFTY632\]/,
      argv.join(" "),
    );
    t.notRegex(r.stdout, /current/);
  }
  // A recipe change makes a build resolve again: still refused.
  writeFileSync(
    join(dir, "app.nifty"),
    readFileSync(join(dir, "app.nifty"), "utf8") + "PACKAGE nifty-data\n",
  );
  const build = await buildAppRootfs(dir, older);
  t.is(build.code, 1, build.stderr);
  t.regex(build.stderr, /\[NIFTY632\]/);
  t.is(readFileSync(join(dir, "app.nifty.lock"), "utf8"), lock, "the lock did not move");

  // The same InRelease as the lock's is fine, and without a lock an older one is all there is to go by.
  const same = await niftyc(dir, ["outdated", "app.nifty", "--cache", "c", ...mirrorFlags(archive.view())]);
  t.not(same.code, 1, same.stderr);
  rmSync(join(dir, "app.nifty.lock"));
  const fresh = await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags(older)]);
  t.is(fresh.code, 0, fresh.stderr);
});

test("a lock whose header's InRelease date was edited is refused at that line by build --locked, outdated and lock --update, not taken as the floor", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, archive } = await twoSuiteProject(t, "niftyc-lock-date-", "PACKAGE nifty-lib\n");
  const view = archive.view();
  const good = await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags(view)]);
  t.is(good.code, 0, good.stderr);
  const lock = readFileSync(join(dir, "app.nifty.lock"), "utf8");
  // The bookworm line of Suites: `debian bookworm main sha256:… <date>`.
  const edited = lock.replace(
    /^( debian bookworm main sha256:[0-9a-f]{64} ).*$/m,
    "$1Thu, 01 Jan 2099 00:00:00 UTC",
  );
  t.not(edited, lock);
  writeFileSync(join(dir, "app.nifty.lock"), edited);
  const line = edited.split("\n").findIndex((l) => l.includes("2099")) + 1;
  for (const argv of [
    ["build", "app.nifty", "--locked", "--out", "o", "--format", "rootfs"],
    ["outdated", "app.nifty"],
    ["lock", "app.nifty", "--update"],
  ]) {
    const r = await niftyc(dir, [...argv, "--cache", "c", ...mirrorFlags(view)]);
    t.is(r.code, 1, `${argv.join(" ")}: ${r.stdout}${r.stderr}`);
    t.regex(
      r.stderr,
      new RegExp(
        `app\\.nifty\\.lock:${line}:1: error: the lock says the InRelease of debian bookworm is dated Thu, 01 Jan 2099 00:00:00 UTC, but the signed InRelease it names \\(sha256:[0-9a-f]{64}\\) is dated .* \\[NIFTY633\\]`,
      ),
      argv.join(" "),
    );
    t.notRegex(r.stderr, /NIFTY632/, argv.join(" "));
  }
  t.is(readFileSync(join(dir, "app.nifty.lock"), "utf8"), edited, "the lock was not rewritten");
});
