// Hostile archives for FETCH … EXTRACT and .deb reading: a small zstd file
// holding a large member, many entries, long pax names, a missing member
// among long names, and BSD ar name lengths that point past the file.
import test from "ava";
import { createWriteStream } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createZstdCompress } from "node:zlib";
import tarStream from "tar-stream";
import { openStore } from "../../src/cache/store.ts";
import { DEFAULT_LIMITS } from "../../src/core/limits.ts";
import { extractMember } from "../../src/fetch/archive.ts";
import { readDebFile } from "../../src/debian/deb.ts";
import type { NiftyError } from "../../src/diagnostics/errors.ts";
import { tempDir } from "./helpers.ts";

interface Item {
  name: string;
  size?: number;
  type?: "file" | "symlink";
  linkname?: string;
}

/** A zstd tarball; a file's body is `size` zero bytes, generated as it is packed. */
async function zstTar(file: string, items: Iterable<Item>): Promise<string> {
  const pack = tarStream.pack();
  const done = pipeline(pack, createZstdCompress(), createWriteStream(file));
  for (const item of items) {
    if (item.type === "symlink") {
      await new Promise<void>((resolve, reject) =>
        pack.entry({ name: item.name, type: "symlink", linkname: item.linkname! }, (e) =>
          e ? reject(e) : resolve(),
        ),
      );
      continue;
    }
    const size = item.size ?? 1;
    const entry = pack.entry({ name: item.name, size, mode: 0o644 });
    await pipeline(
      Readable.from(
        (function* () {
          const chunk = Buffer.alloc(1 << 20);
          for (let left = size; left > 0; left -= chunk.length)
            yield left >= chunk.length ? chunk : chunk.subarray(0, left);
        })(),
      ),
      entry as unknown as NodeJS.WritableStream,
    );
  }
  pack.finalize();
  await done;
  return file;
}

async function setup(t: { teardown(f: () => Promise<void>): void }) {
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  return { dir, store: await openStore(path.join(dir, "cache")) };
}

test("a member past --limit member-size is refused from its header, before a byte lands in the store", async (t) => {
  t.timeout(60_000);
  const { dir, store } = await setup(t);
  const archive = await zstTar(path.join(dir, "bomb.tar.zst"), [{ name: "big", size: 64 << 20 }]);
  t.true((await fsp.stat(archive)).size < 64 * 1024, "a small file");
  const error = await t.throwsAsync(
    extractMember(store, archive, "big", "bomb.tar.zst", { ...DEFAULT_LIMITS, memberBytes: 16 << 20 }),
  );
  t.is((error as NiftyError).code, "NIFTY804");
  t.regex(error!.message, /67,108,864 bytes.*limit of 16 MiB/);
  t.deepEqual(await fsp.readdir(path.join(dir, "cache/tmp")).catch(() => []), []);
  // Raised, it extracts.
  const member = await extractMember(store, archive, "big", "bomb.tar.zst", {
    ...DEFAULT_LIMITS,
    memberBytes: 64 << 20,
  });
  t.is(member.size, 64 << 20);
});

test("entries past --limit entries and names past --limit entry-name are NIFTY804", async (t) => {
  t.timeout(60_000);
  const { dir, store } = await setup(t);
  const many = await zstTar(
    path.join(dir, "many.tar.zst"),
    Array.from({ length: 200 }, (_, i) => ({ name: `f${i}` })),
  );
  const e1 = await t.throwsAsync(
    extractMember(store, many, "f199", "many", { ...DEFAULT_LIMITS, entries: 100 }),
  );
  t.is((e1 as NiftyError).code, "NIFTY804");
  t.regex(e1!.message, /more than 100 entries/);
  // Default limits: a 1 MiB pax link target (tar-stream itself refuses headers past 4 MiB).
  const long = await zstTar(path.join(dir, "long.tar.zst"), [
    { name: "l", type: "symlink", linkname: "x".repeat(1 << 20) },
    { name: "f" },
  ]);
  const e2 = await t.throwsAsync(extractMember(store, long, "f", "long"));
  t.is((e2 as NiftyError).code, "NIFTY804");
  t.regex(e2!.message, /1,048,576 characters/);
});

test("a missing member among long names is told quickly: the did-you-mean compares only names near in length", async (t) => {
  t.timeout(60_000);
  const { dir, store } = await setup(t);
  const items = Array.from({ length: 200 }, (_, i) => ({
    name: `${String(i).padStart(3, "0")}${"n".repeat(4000)}`,
  }));
  const archive = await zstTar(path.join(dir, "names.tar.zst"), [...items, { name: "bin/busybox" }]);
  const error = await t.throwsAsync(extractMember(store, archive, `${"n".repeat(4000)}x`, "names"));
  t.is((error as NiftyError).code, "NIFTY121");
  const near = await t.throwsAsync(extractMember(store, archive, "bin/busybax", "names"));
  t.regex(near!.message, /busybax/);
  t.regex((near as NiftyError).hint ?? "", /bin\/busybox/);
});

function arMember(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(60, " ");
  header.write(name, 0, "latin1");
  header.write("0", 16);
  header.write("0", 28);
  header.write("0", 34);
  header.write("100644", 40);
  header.write(String(data.length), 48);
  header.write("`\n", 58, "latin1");
  return Buffer.concat([header, data, data.length % 2 ? Buffer.from("\n") : Buffer.alloc(0)]);
}

test("BSD ar name lengths past the member or absurdly large are NIFTY805, not a RangeError", async (t) => {
  const { dir, store } = await setup(t);
  for (const length of ["1000000000", "9999999999999", "20"]) {
    const file = path.join(dir, `bad-${length}.deb`);
    await fsp.writeFile(
      file,
      Buffer.concat([
        Buffer.from("!<arch>\n"),
        arMember("debian-binary", Buffer.from("2.0\n")),
        arMember(`#1/${length}`, Buffer.alloc(10)),
      ]),
    );
    const error = await t.throwsAsync(readDebFile(store, file, "sha256:" + "0".repeat(64), "bad.deb"));
    t.is((error as NiftyError).code, "NIFTY805", `${length}: ${error?.message}`);
  }
});

test("a member named twice is NIFTY808: tar would take the last copy, a reader stopping early the first", async (t) => {
  const { dir, store } = await setup(t);
  const archive = await zstTar(path.join(dir, "twice.tar.zst"), [
    { name: "d/f", size: 10 },
    { name: "d/f", size: 20 },
  ]);
  const error = await t.throwsAsync(extractMember(store, archive, "d/f", "twice"));
  t.is((error as NiftyError).code, "NIFTY808", error?.message);
});
