// The tar tests' sample tree (test/pipeline/tar-writer.test.ts, tarballs-threads.test.ts).
import * as fsp from "node:fs/promises";
import path from "node:path";
import { Tree, type TreeNode } from "../../src/image/tree.ts";
import { sha256 } from "./helpers.ts";

const MIB = 1 << 20;

/**
 * A tree with an entry of every kind the tar writer meets: files empty, inline, of a block, of the
 * batch's edges and beyond it, long and non-ASCII names and links (pax), ids beyond ustar, and a
 * sticky directory. Each file's bytes are written into `dir` under its digest's hex (a store's
 * blobs directory works).
 */
export async function sample(dir: string): Promise<{ tree: Tree; blobs: Map<string, Buffer> }> {
  const tree = new Tree();
  const blobs = new Map<string, Buffer>();
  const file = async (p: string, bytes: Buffer, extra: Partial<TreeNode> = {}): Promise<void> => {
    const digest = sha256(bytes);
    blobs.set(digest, bytes);
    await fsp.writeFile(path.join(dir, digest.slice(7)), bytes);
    tree.set(tree.placement(p), {
      type: "file",
      mode: 0o644,
      uid: 0,
      gid: 0,
      content: { digest, size: bytes.length },
      ...extra,
    } as TreeNode);
  };
  tree.set(tree.mkdirp("/tmp"), { type: "dir", mode: 0o1777, uid: 0, gid: 0 });
  await file("/bin/big", Buffer.alloc(3 * 1024 * 1024 + 17, 0xab), { mode: 0o755 });
  await file("/etc/empty", Buffer.alloc(0));
  await file("/etc/exact", Buffer.alloc(512, 1));
  tree.set(tree.placement("/etc/inline"), {
    type: "file",
    mode: 0o600,
    uid: 0,
    gid: 42,
    content: { digest: sha256(Buffer.from("hi\n")), size: 3, inline: Buffer.from("hi\n").toString("base64") },
  });
  for (let i = 0; i < 300; i++) await file(`/many/f${i}`, Buffer.alloc(i * 7 + 1, i));
  await file(`/long/${"d".repeat(90)}/${"e".repeat(90)}/name`, Buffer.from("split\n"));
  await file(`/long/${"n".repeat(120)}`, Buffer.from("pax path\n"));
  await file("/long/naïve-ünïcode", Buffer.from("utf-8 name\n"));
  tree.set(tree.placement("/long/link"), {
    type: "symlink",
    mode: 0o777,
    uid: 0,
    gid: 0,
    target: `/${"t".repeat(150)}`,
  });
  tree.set(tree.placement("/sbin"), { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: "bin" });
  tree.set(tree.placement("/long/ünï-link"), {
    type: "symlink",
    mode: 0o777,
    uid: 0,
    gid: 0,
    target: "zïel",
  });
  // The writer's batch is 1 MiB: a header and a file that fill it exactly, a file of a whole batch, one byte more.
  for (const [name, size] of [
    ["fills-batch", MIB - 512],
    ["batch", MIB],
    ["batch-and-one", MIB + 1],
  ] as const)
    await file(`/size/${name}`, Buffer.alloc(size, name.length));
  tree.set(tree.mkdirp("/home/big"), { type: "dir", mode: 0o750, uid: 300000, gid: 262144 });
  await file("/home/big/file", Buffer.from("big ids\n"), { uid: 4000000, gid: 300001 });
  tree.set(tree.placement("/home/big/link"), {
    type: "symlink",
    mode: 0o777,
    uid: 300000,
    gid: 0,
    target: "file",
  });
  return { tree, blobs };
}
