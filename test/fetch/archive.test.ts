import test from "ava";
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { buildTar } from "../support/tar-stream.ts";
import { openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { extractMember } from "../../src/fetch/archive.ts";
import { listFiles, sha256, tempDir } from "./helpers/util.ts";

const run = promisify(execFile);
const HOST_BUSYBOX = "/bin/busybox";

/** Build a real .deb holding the host's busybox, with dpkg-deb. */
async function buildDeb(dir: string, compression: "xz" | "zstd" | "gzip"): Promise<string> {
  const root = path.join(dir, `pkg-${compression}`);
  await fsp.mkdir(path.join(root, "DEBIAN"), { recursive: true });
  await fsp.mkdir(path.join(root, "bin"), { recursive: true });
  await fsp.mkdir(path.join(root, "usr", "bin"), { recursive: true });
  await fsp.writeFile(
    path.join(root, "DEBIAN", "control"),
    "Package: nifty-busybox\nVersion: 1.0\nArchitecture: amd64\nMaintainer: niftyc tests <tests@invalid>\nDescription: test package\n",
  );
  await fsp.copyFile(HOST_BUSYBOX, path.join(root, "bin", "busybox"));
  await fsp.chmod(path.join(root, "bin", "busybox"), 0o755);
  await fsp.symlink("../../bin/busybox", path.join(root, "usr", "bin", "bb"));
  const deb = path.join(dir, `busybox-${compression}.deb`);
  await run("dpkg-deb", ["--root-owner-group", `-Z${compression}`, "--build", root, deb]);
  return deb;
}

const hostBusybox = fsp.readFile(HOST_BUSYBOX);

for (const compression of ["xz", "zstd", "gzip"] as const) {
  test(`extracts /bin/busybox from a real .deb (${compression}) with identical bytes`, async (t) => {
    const dir = await tempDir();
    const store = await openStore(path.join(dir, "cache"));
    const deb = await buildDeb(dir, compression);
    const expected = await hostBusybox;

    const r = await extractMember(store, deb, "/bin/busybox");
    t.is(r.digest, sha256(expected));
    t.is(r.size, expected.length);
    t.is(r.member, "bin/busybox");
    t.is(r.mode, 0o755);
    t.true((await fsp.readFile(r.path)).equals(expected));

    t.is((await extractMember(store, deb, "./bin/busybox")).digest, r.digest);
    t.is((await extractMember(store, deb, "bin/busybox")).digest, r.digest);

    const viaLink = await extractMember(store, deb, "usr/bin/bb");
    t.is(viaLink.digest, r.digest);
    t.is(viaLink.member, "bin/busybox");
    t.deepEqual(await listFiles(store.tmpDir), []);
  });
}

const fileBody = "#!/bin/sh\necho hi\n";
const linkTar = () =>
  buildTar([
    // A symlink before its target: found in one pass.
    { header: { name: "./sbin/init", type: "symlink", linkname: "../bin/busybox" } },
    { header: { name: "./bin/", type: "directory" } },
    { header: { name: "./bin/busybox", type: "file", mode: 0o755 }, body: fileBody },
    // A symlink after its target, absolute: taken from the archive root.
    { header: { name: "./usr/bin/env", type: "symlink", linkname: "/bin/busybox" } },
    // A hard link, and a file reached through a directory symlink.
    { header: { name: "./bin/sh", type: "link", linkname: "./bin/busybox" } },
    { header: { name: "./usr/lib/libx.so", type: "file" }, body: "lib" },
    { header: { name: "./lib", type: "symlink", linkname: "usr/lib" } },
    // Links that climb out of the archive.
    { header: { name: "./escape", type: "symlink", linkname: "../../etc/passwd" } },
    { header: { name: "./etc/abs", type: "symlink", linkname: "/../etc/passwd" } },
    { header: { name: "./loop", type: "symlink", linkname: "loop" } },
  ]);

test("follows symlinks and hard links inside a tarball, in any order", async (t) => {
  const dir = await tempDir();
  const store = await openStore(dir);
  const file = path.join(dir, "links.tar");
  await fsp.writeFile(file, await linkTar());
  const want = sha256(Buffer.from(fileBody));
  for (const member of ["sbin/init", "usr/bin/env", "bin/sh", "/bin/busybox"]) {
    const r = await extractMember(store, file, member);
    t.is(r.digest, want, member);
    t.is(r.member, "bin/busybox", member);
  }
  const lib = await extractMember(store, file, "lib/libx.so");
  t.is(lib.member, "usr/lib/libx.so");
  t.true((await fsp.readFile(lib.path)).equals(Buffer.from("lib")));
});

test("refuses links that escape the archive, and link loops", async (t) => {
  const dir = await tempDir();
  const store = await openStore(dir);
  const file = path.join(dir, "links.tar");
  await fsp.writeFile(file, await linkTar());
  for (const member of ["escape", "etc/abs"]) {
    const err = await t.throwsAsync(extractMember(store, file, member), { instanceOf: NiftyError });
    t.is(err?.code, "NIFTY123", member);
    t.regex(err!.message, /outside the archive/);
  }
  t.is(
    (await t.throwsAsync(extractMember(store, file, "loop"), { instanceOf: NiftyError }))?.code,
    "NIFTY124",
  );
  t.is(
    (await t.throwsAsync(extractMember(store, file, "bin"), { instanceOf: NiftyError }))?.code,
    "NIFTY125",
  );
  t.deepEqual(await listFiles(store.blobsDir), []);
});

test("refuses absolute and .. member names", async (t) => {
  const dir = await tempDir();
  const store = await openStore(dir);
  const file = path.join(dir, "evil.tar");
  await fsp.writeFile(
    file,
    await buildTar([
      { header: { name: "/etc/shadow", type: "file" }, body: "root:x" },
      { header: { name: "usr/../etc/passwd", type: "file" }, body: "root:x" },
      { header: { name: "ok", type: "file" }, body: "fine" },
    ]),
  );
  const abs = await t.throwsAsync(extractMember(store, file, "etc/shadow"), { instanceOf: NiftyError });
  t.is(abs?.code, "NIFTY122");
  t.regex(abs!.message, /absolute/);
  const dots = await t.throwsAsync(extractMember(store, file, "etc/passwd"), { instanceOf: NiftyError });
  t.is(dots?.code, "NIFTY122");
  t.regex(dots!.message, /"\.\."/);
  const asked = await t.throwsAsync(extractMember(store, file, "../etc/passwd"), { instanceOf: NiftyError });
  t.is(asked?.code, "NIFTY122");
  t.deepEqual(await listFiles(store.blobsDir), []);
  t.is((await extractMember(store, file, "ok")).size, 4, "the archive's safe members still extract");
});

test("a missing member lists close names", async (t) => {
  const dir = await tempDir();
  const store = await openStore(dir);
  const file = path.join(dir, "links.tar");
  await fsp.writeFile(file, await linkTar());
  const err = await t.throwsAsync(extractMember(store, file, "bin/busybx"), { instanceOf: NiftyError });
  t.is(err?.code, "NIFTY121");
  t.regex(err!.hint ?? "", /similar names in the archive: .*bin\/busybox/);
});

test("tarballs are told by content: plain, gzip, zstd and xz, whatever their names", async (t) => {
  const dir = await tempDir();
  const store = await openStore(dir);
  const plain = await buildTar([{ header: { name: "a/b.txt", type: "file" }, body: "payload" }]);
  const xzFile = path.join(dir, "x.bin");
  await fsp.writeFile(path.join(dir, "plain.tar"), plain);
  await run("xz", ["-k", "-c", path.join(dir, "plain.tar")], { encoding: "buffer", maxBuffer: 1 << 20 }).then(
    ({ stdout }) => fsp.writeFile(xzFile, stdout),
  );
  const variants: Record<string, Buffer> = {
    "p.data": plain,
    "g.data": gzipSync(plain),
    "z.data": zstdCompressSync(plain),
  };
  for (const [name, data] of Object.entries(variants)) await fsp.writeFile(path.join(dir, name), data);
  for (const name of [...Object.keys(variants), "x.bin"]) {
    const r = await extractMember(store, path.join(dir, name), "a/b.txt");
    t.is(r.digest, sha256(Buffer.from("payload")), name);
  }
  await fsp.writeFile(path.join(dir, "junk"), "not an archive at all");
  t.is(
    (await t.throwsAsync(extractMember(store, path.join(dir, "junk"), "a"), { instanceOf: NiftyError }))
      ?.code,
    "NIFTY120",
  );
  const truncated = path.join(dir, "trunc.gz");
  await fsp.writeFile(truncated, gzipSync(plain).subarray(0, 40));
  t.is(
    (await t.throwsAsync(extractMember(store, truncated, "a/b.txt"), { instanceOf: NiftyError }))?.code,
    "NIFTY127",
  );
  t.deepEqual(await listFiles(store.tmpDir), []);
});
