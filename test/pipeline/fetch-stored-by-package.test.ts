// A FETCH whose digest is already in the store because a PACKAGE line brought
// it: the blob is named and reported by where it came from (the package's .deb
// on the mirror), never by the sources of the FETCH that found it.
import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { debianArchive, mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { scratchDir, twoSuiteArchives } from "../support/package-project.ts";

test("FETCH of busybox-static's pool path with dropbear-bin's digest, stored by a PACKAGE line: NIFTY105, and NIFTY121 names dropbear's .deb", async (t) => {
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const view = archive.view();
  const dir = scratchDir(t, "niftyc-fetch-stored-");
  const mirrors = mirrorFlags(view);
  const build = (recipe: string, out: string) =>
    runMain(["build", recipe, "--cache", "c", "--out", out, "--format", "rootfs", ...mirrors], dir);

  writeFileSync(
    join(dir, "ssh.nifty"),
    `${twoSuiteArchives(archive.keyring)}PACKAGE dropbear-bin FILES /usr/sbin/dropbear\n`,
  );
  const first = await build("ssh.nifty", "o1");
  t.is(first.code, 0, first.stderr);

  const busybox = archive.pkg("busybox-static");
  const dropbear = archive.pkg("dropbear-bin");
  const dropbearFile = dropbear.filename.split("/").pop()!;
  const line = `FETCH busybox ${view.mirrors.debian![0]}/${busybox.filename} ${dropbear.sha256} EXTRACT bin/busybox TO /bin/busybox`;
  writeFileSync(join(dir, "wrong.nifty"), `${line}\n`);
  const second = await build("wrong.nifty", "o2");
  t.is(second.code, 1, second.stderr);
  const where = `wrong.nifty:1:${line.indexOf("http") + 1}`;
  t.true(
    second.stderr.includes(
      `${where}: warning: ${dropbear.sha256} is taken from the store, where it came from ${view.mirrors.debian![0]}/${dropbear.filename}, not from this line's sources [NIFTY105]`,
    ),
    second.stderr,
  );
  t.regex(
    second.stderr,
    new RegExp(
      `error: bin/busybox is not in ${dropbearFile.replace(/[.+]/g, "\\$&")} \\(sha256:[0-9a-f]{12}…\\) \\[NIFTY121\\]`,
    ),
  );
  t.false(second.stderr.includes(`is not in ${busybox.filename.split("/").pop()}`), second.stderr);
});
