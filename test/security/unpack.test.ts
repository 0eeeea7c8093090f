// Hostile rootfs tarballs for the bundle and `niftyc install` unpacker: long
// paths, a directory then a symlink of the same name, owners beyond ustar.
// Each is refused with a code (or unpacked right), never a raw errno.
import test from "ava";
import { createWriteStream } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import { unpackRootfs } from "../../src/emit/unpack.ts";
import { tempDir } from "./helpers.ts";

interface Item {
  name: string;
  type?: "file" | "directory" | "symlink";
  linkname?: string;
  uid?: number;
  gid?: number;
  pax?: Record<string, string>;
  body?: string;
}

async function tarOf(file: string, items: Item[]): Promise<string> {
  const pack = tarStream.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const item of items) {
    const header = {
      name: item.name,
      type: item.type ?? "file",
      mode: item.type === "directory" ? 0o755 : 0o644,
      uid: item.uid ?? 0,
      gid: item.gid ?? 0,
      mtime: new Date(0),
      ...(item.linkname ? { linkname: item.linkname } : {}),
      ...(item.pax ? { pax: item.pax } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (error?: Error | null) => (error ? reject(error) : resolve());
      if (header.type === "file") pack.entry(header, item.body ?? "", cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return file;
}

test("a 5,000-byte path and a directory then a symlink of its name are NIFTY803, and nothing is left", async (t) => {
  const work = await tempDir();
  t.teardown(() => fsp.rm(work, { recursive: true, force: true }));
  const cases: Array<[string, Item[]]> = [
    ["long-path", [{ name: `${"d/".repeat(2500)}f`, body: "x" }]],
    ["long-name", [{ name: "n".repeat(300), body: "x" }]],
    [
      "dir-then-symlink",
      [
        { name: "a/", type: "directory" },
        { name: "a", type: "symlink", linkname: "/etc" },
      ],
    ],
    [
      "dir-then-file",
      [
        { name: "a/", type: "directory" },
        { name: "a/x", body: "x" },
        { name: "a", body: "y" },
      ],
    ],
  ];
  for (const [name, items] of cases) {
    const tar = await tarOf(path.join(work, `${name}.tar`), items);
    const dir = path.join(work, `out-${name}`);
    const error = await t.throwsAsync(unpackRootfs(tar, dir));
    t.is((error as { code?: string }).code, "NIFTY803", `${name}: ${error?.message}`);
    await t.throwsAsync(fsp.lstat(dir), { code: "ENOENT" });
  }
});

test("owners beyond ustar's range come from pax records: 2097152 stays 2097152", async (t) => {
  t.timeout(30_000);
  if (process.getuid?.() !== 0) {
    // CI runs as root; elsewhere lchown to another owner is not allowed.
    if (process.env["CI"]) return t.fail("this test needs root in CI");
    return t.pass("skipped: lchown to other owners needs root");
  }
  const work = await tempDir();
  t.teardown(() => fsp.rm(work, { recursive: true, force: true }));
  const tar = await tarOf(path.join(work, "ids.tar"), [
    { name: "f", uid: 262143, gid: 262143, pax: { uid: "2097152", gid: "3000000" }, body: "x" },
  ]);
  await unpackRootfs(tar, path.join(work, "out"));
  const info = await fsp.lstat(path.join(work, "out/f"));
  t.deepEqual([info.uid, info.gid], [2097152, 3000000]);
});
