// The unpack cache: a tree per digest, unpacked once, checked against the
// build's digest, and never visible under its final name unless whole.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileDigest } from "../../src/core/hash.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { ensureTree, treePath } from "../../src/run/trees.ts";

const ROOT_PRIVILEGE = { root: true, uid: 0 };

function temp(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-trees-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A small rootfs tar made by GNU tar, as a build's would hold. */
function rootfsTar(dir: string, extra: string[] = []): string {
  const src = join(dir, "src");
  mkdirSync(join(src, "etc"), { recursive: true });
  writeFileSync(join(src, "etc/os-release"), "ID=nifty\n");
  const tar = join(dir, "rootfs.tar");
  const made = spawnSync(
    "tar",
    ["-cf", tar, "--owner=0", "--group=0", "--numeric-owner", "-C", src, ".", ...extra],
    { encoding: "utf8" },
  );
  if (made.status !== 0) throw new Error(made.stderr);
  return tar;
}

test("a tree is unpacked once per digest, whole, with an empty /usr where the image has none", async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI) return t.fail("CI runs as root");
    t.log(
      "SKIPPED: keeping owners needs root (as a user the tree is unpacked in a user namespace; test/run/run.test.ts covers it)",
    );
    return t.pass();
  }
  const dir = temp(t);
  const tar = rootfsTar(dir);
  const digest = await fileDigest(tar);
  const base = join(dir, "trees");
  const first = await ensureTree({ base, rootfsTar: tar, digest, privilege: ROOT_PRIVILEGE });
  t.true(first.unpacked);
  t.is(first.dir, treePath(base, digest));
  t.is(statSync(join(first.dir, "etc/os-release")).size, 9);
  t.true(statSync(join(first.dir, "usr")).isDirectory());
  const second = await ensureTree({ base, rootfsTar: tar, digest, privilege: ROOT_PRIVILEGE });
  t.false(second.unpacked);
  t.deepEqual(readdirSync(base), [digest.slice("sha256:".length)], "no staging directory is left beside it");
});

test("a rootfs.tar that is not the build's digest is refused; a refused entry leaves no tree and no staging", async (t) => {
  const dir = temp(t);
  const tar = rootfsTar(dir);
  const base = join(dir, "trees");
  const wrong = `sha256:${"0".repeat(64)}`;
  const mismatch = await t.throwsAsync(
    ensureTree({ base, rootfsTar: tar, digest: wrong, privilege: ROOT_PRIVILEGE }),
    { instanceOf: NiftyError },
  );
  t.is(mismatch?.code, "NIFTY750");

  // An absolute member name (tar -P) is refused halfway through the unpack.
  const evil = join(dir, "evil.tar");
  const made = spawnSync("tar", ["-cPf", evil, join(dir, "src/etc/os-release")], { encoding: "utf8" });
  t.is(made.status, 0, made.stderr);
  const digest = await fileDigest(evil);
  const refused = await t.throwsAsync(
    ensureTree({ base, rootfsTar: evil, digest, privilege: ROOT_PRIVILEGE }),
    { instanceOf: NiftyError },
  );
  t.is(refused?.code, "NIFTY510");
  t.deepEqual(readdirSync(base), [], "neither the tree nor its staging directory");
});
