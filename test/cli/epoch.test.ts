// SOURCE_DATE_EPOCH is every entry's mtime in the tarballs: a time from 2038 on is written as it
// is (not wrapped into a negative number by 32-bit arithmetic), and one later than a tar header's
// 11 octal digits hold is refused on the command line instead of becoming another time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { runMain } from "../support/cli.ts";

function project(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-epoch-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "box.nifty"), "DIR /srv\nFILE /etc/os-release <<EOF\nID=box\nEOF\n");
  return dir;
}

/** The mtime field (octal, 12 bytes at offset 136) of every header of a ustar file without pax entries. */
function mtimes(tar: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    out.push(tar.subarray(at + 136, at + 148).toString("latin1"));
    const size = Number.parseInt(
      tar
        .subarray(at + 124, at + 136)
        .toString("latin1")
        .trim() || "0",
      8,
    );
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

test("an epoch after 2038 (and the last one a header holds) is every entry's mtime as it is", async (t) => {
  const dir = project(t);
  for (const epoch of [2 ** 31, 0o77777777777]) {
    const out = join(dir, `out-${epoch}`);
    const r = await runMain(
      ["build", "box.nifty", "--cache", join(dir, "cache"), "--out", out, "--format", "rootfs", "-q"],
      dir,
      { SOURCE_DATE_EPOCH: String(epoch) },
    );
    t.is(r.code, 0, r.stderr);
    const fields = mtimes(readFileSync(join(out, "rootfs.tar")));
    t.true(fields.length >= 3);
    t.deepEqual(new Set(fields), new Set([`${epoch.toString(8).padStart(11, "0")} `]), String(epoch));
  }
});

test("an epoch later than a tar header holds is a usage error, and nothing is written", async (t) => {
  const dir = project(t);
  for (const epoch of ["8589934592", "999999999999"]) {
    const r = await runMain(["build", "box.nifty", "--cache", join(dir, "cache"), "--out", "out"], dir, {
      SOURCE_DATE_EPOCH: epoch,
    });
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, /SOURCE_DATE_EPOCH=\d+ is later than 8589934591 \(2242-03-16\)/);
    t.false(existsSync(join(dir, "out")));
  }
});
