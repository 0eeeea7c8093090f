// The tar writer against tar-stream's encoder: the same bytes for every kind
// of entry (so digests did not move when the writer stopped using it), and the
// cases it got wrong: mode 0 and ids beyond ustar, read back by GNU tar.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { PassThrough, Writable } from "node:stream";
import tarStream from "tar-stream";
import { writeTar, writeTars } from "../../src/emit/tar.ts";
import { Tree } from "../../src/image/tree.ts";
import { execFileP, sha256, tempDir } from "./helpers.ts";
import { sample } from "./sample-tree.ts";

function collector(): { stream: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      setImmediate(callback);
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}

/** tar-stream's pack with the headers niftyc has always written. */
async function reference(tree: Tree, blobs: Map<string, Buffer>, mtime: number): Promise<Buffer> {
  const pack = tarStream.pack();
  const out = collector();
  pack.pipe(out.stream);
  for (const p of tree.sortedPaths()) {
    const node = tree.get(p)!;
    const h: Partial<tarStream.Header> & { name: string } = {
      name: p === "/" ? "./" : p.slice(1) + (node.type === "dir" ? "/" : ""),
      mode: node.type === "symlink" ? 0o777 : node.mode,
      uid: node.uid,
      gid: node.gid,
      mtime: new Date(mtime * 1000),
      type: node.type === "dir" ? "directory" : node.type === "symlink" ? "symlink" : "file",
      size: node.type === "file" ? node.content.size : 0,
      ...(node.type === "symlink" ? { linkname: node.target } : {}),
      ...(node.uid > 0o777777 || node.gid > 0o777777
        ? { pax: { uid: String(node.uid), gid: String(node.gid) } }
        : {}),
    };
    const body =
      node.type === "file"
        ? node.content.inline !== undefined
          ? Buffer.from(node.content.inline, "base64")
          : blobs.get(node.content.digest)!
        : undefined;
    await new Promise<void>((resolve, reject) =>
      body
        ? pack.entry(h, body, (e) => (e ? reject(e) : resolve()))
        : pack.entry(h, (e) => (e ? reject(e) : resolve())),
    );
  }
  pack.finalize();
  await new Promise((resolve) => out.stream.on("finish", resolve));
  return out.bytes();
}

test("writeTar writes the same bytes as tar-stream did, for every kind of entry", async (t) => {
  const dir = await tempDir();
  try {
    const { tree, blobs } = await sample(dir);
    for (const mtime of [0, 1700000000]) {
      const out = collector();
      await writeTar(out.stream, tree, tree.sortedPaths(), {
        mtime,
        blobPath: (d) => path.join(dir, d.slice(7)),
      });
      const expected = await reference(tree, blobs, mtime);
      t.is(sha256(out.bytes()), sha256(expected), `mtime ${mtime}`);
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("mode 0 stays 0 and large ids read back in GNU tar", async (t) => {
  const dir = await tempDir();
  try {
    const tree = new Tree();
    tree.set("/locked", {
      type: "file",
      mode: 0,
      uid: 0,
      gid: 0,
      content: { digest: sha256(Buffer.alloc(0)), size: 0, inline: "" },
    });
    tree.set("/owned", { type: "dir", mode: 0o700, uid: 4000000, gid: 300001 });
    const file = path.join(dir, "t.tar");
    const { createWriteStream } = await import("node:fs");
    await writeTar(createWriteStream(file), tree, tree.sortedPaths(), {
      mtime: 0,
      blobPath: () => "/nonexistent",
    });
    const { stdout } = await execFileP("tar", ["--numeric-owner", "-tvf", file]);
    t.regex(stdout, /^---------- 0\/0 .* locked$/m);
    t.regex(stdout, /^drwx------ 4000000\/300001 .* owned\/$/m);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("a blob shorter than its recorded size fails the write instead of writing a corrupt archive", async (t) => {
  const dir = await tempDir();
  try {
    await fsp.writeFile(path.join(dir, "short"), "abc");
    const tree = new Tree();
    tree.set("/f", {
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      content: { digest: sha256(Buffer.from("abcdef")), size: 6 },
    });
    const out = collector();
    out.stream.on("error", () => {});
    await t.throwsAsync(
      writeTar(out.stream, tree, tree.sortedPaths(), { mtime: 0, blobPath: () => path.join(dir, "short") }),
      { message: /shorter than its recorded 6 bytes/ },
    );
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test("writeTars: a tarball on disk and one through a stream that still holds its chunks get the same bytes", async (t) => {
  const dir = await tempDir();
  try {
    const { tree, blobs } = await sample(dir);
    const expected = await reference(tree, blobs, 0);
    const { createWriteStream } = await import("node:fs");
    const file = path.join(dir, "t.tar");
    // Passes each chunk on as it is and is read only at the end: a buffer given back too early shows.
    const held = new PassThrough({ highWaterMark: 1 << 30 });
    const chunks: Buffer[] = [];
    await writeTars(
      [
        { out: createWriteStream(file), pick: (p) => tree.get(p) },
        { out: held, pick: (p) => tree.get(p) },
      ],
      tree.sortedPaths(),
      { mtime: 0, blobPath: (d) => path.join(dir, d.slice(7)) },
    );
    for await (const chunk of held) chunks.push(chunk as Buffer);
    t.is(sha256(await fsp.readFile(file)), sha256(expected));
    t.is(sha256(Buffer.concat(chunks)), sha256(expected));
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
