// redirectableBy: whether a user other than root and the caller could make a path lead elsewhere,
// walked as open(2) walks it: directories on the way, links followed, a relative path from cwd.
import test from "ava";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { redirectableBy } from "../../src/core/owned-path.ts";

const uid = process.getuid?.() ?? 0;

function workDir(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-owned-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("a path of the caller's own directories is not redirectable, absolute or relative", (t) => {
  const dir = workDir(t);
  mkdirSync(join(dir, "a/b"), { recursive: true });
  t.is(redirectableBy(join(dir, "a/b/c"), uid), undefined);
  t.is(redirectableBy(relative(process.cwd(), join(dir, "a/./b/../b")), uid), undefined);
});

test("a directory others may write without the sticky bit, on the way or through a link, is named", (t) => {
  const dir = workDir(t);
  mkdirSync(join(dir, "open/inner"), { recursive: true });
  chmodSync(join(dir, "open"), 0o777);
  t.regex(
    redirectableBy(join(dir, "open/inner/x"), uid) ?? "",
    /open is writable by other users \(mode 0777\)/,
  );
  symlinkSync(join(dir, "open/inner"), join(dir, "link"));
  t.regex(redirectableBy(join(dir, "link/x"), uid) ?? "", /open is writable by other users/);
  // Sticky, as /tmp: only an entry another user owns there could be swapped.
  chmodSync(join(dir, "open"), 0o1777);
  t.is(redirectableBy(join(dir, "link/x"), uid), undefined);
});

test("another user's directory on the way is named", (t) => {
  if (uid !== 0) {
    t.log("skipped: needs root (a directory is given to another user with chown)");
    return t.pass();
  }
  const dir = workDir(t);
  mkdirSync(join(dir, "theirs/data"), { recursive: true });
  chownSync(join(dir, "theirs"), 65534, 65534);
  t.regex(redirectableBy(join(dir, "theirs/data"), uid) ?? "", /theirs belongs to uid 65534/);
  // The last entry itself may be anyone's.
  t.is(redirectableBy(join(dir, "theirs"), uid), undefined);
});
