// The tarballs written in worker threads (rootfs.tar in one, the layers in the other; src/pipeline/layers.ts)
// are the bytes the single pass on the main thread writes, and a damaged blob fails them the same way.
// Serial: the first test writes before the threads start, the others after.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { openStore, type Store } from "../../src/cache/store.ts";
import { startThreads, threadsStarted } from "../../src/cache/threads.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { Tree, type TreeNode } from "../../src/image/tree.ts";
import { writeTarballs, type Tarballs } from "../../src/pipeline/layers.ts";
import { sha256, tempDir } from "./helpers.ts";

const EPOCH = 1_700_000_000;

/** A tree of files of every size class (inline, small, a batch and more), links and directories; two paths in the first layer. */
async function sample(store: Store): Promise<{ tree: Tree; base: Set<string> }> {
  const tree = new Tree();
  const file = async (p: string, bytes: Buffer, mode = 0o644): Promise<void> => {
    const { digest, size } = await store.putBuffer(bytes);
    tree.set(tree.placement(p), {
      type: "file",
      mode,
      uid: 0,
      gid: 0,
      content: { digest, size },
    } as TreeNode);
  };
  await file("/usr/bin/busybox", Buffer.alloc((3 << 20) + 17, 0xab), 0o755);
  for (let i = 0; i < 200; i++) await file(`/usr/share/doc/f${i}`, Buffer.alloc(i * 13 + 1, i));
  await file("/etc/exact", Buffer.alloc(512, 1));
  tree.set(tree.placement("/etc/inline"), {
    type: "file",
    mode: 0o600,
    uid: 0,
    gid: 42,
    content: { digest: sha256(Buffer.from("hi\n")), size: 3, inline: Buffer.from("hi\n").toString("base64") },
  });
  tree.set(tree.placement("/bin"), { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: "usr/bin" });
  tree.set(tree.placement("/usr/bin/sh"), {
    type: "symlink",
    mode: 0o777,
    uid: 0,
    gid: 0,
    target: "busybox",
  });
  tree.set(tree.mkdirp("/tmp"), { type: "dir", mode: 0o1777, uid: 0, gid: 0 });
  return { tree, base: new Set(["/usr/bin/busybox", "/usr/bin/sh"]) };
}

async function written(gzip: boolean): Promise<{ tarballs: Tarballs; bytes: Map<string, string> }> {
  const store = await openStore(path.join(await tempDir("niftyc-tarball-threads-"), "cache"));
  const { tree, base } = await sample(store);
  const tarballs = await writeTarballs(store, tree, base, EPOCH, gzip);
  const blobs = [tarballs.rootfs, ...tarballs.layers.flatMap((l) => (l.gzip ? [l, l.gzip] : [l]))];
  const bytes = new Map<string, string>();
  for (const blob of blobs) bytes.set(blob.digest, sha256(await fsp.readFile(store.blobPath(blob.digest))));
  return { tarballs, bytes };
}

const onMain: Record<string, Awaited<ReturnType<typeof written>>> = {};

test.serial(
  "on the main thread (no threads running, a small tree): every blob holds the bytes of its digest",
  async (t) => {
    t.false(threadsStarted());
    for (const gzip of [false, true]) {
      onMain[String(gzip)] = await written(gzip);
      for (const [digest, actual] of onMain[String(gzip)]!.bytes) t.is(actual, digest);
    }
    t.false(threadsStarted(), "a small tree is written here");
    t.truthy(onMain.true!.tarballs.layers.every((l) => l.gzip !== undefined));
  },
);

test.serial(
  "in worker threads, with and without the layers' gzip: the same tarballs as the main thread's",
  async (t) => {
    startThreads();
    t.true(threadsStarted());
    for (const gzip of [false, true]) {
      const inThreads = await written(gzip);
      t.deepEqual(inThreads.tarballs, onMain[String(gzip)]!.tarballs);
      t.deepEqual(inThreads.bytes, onMain[String(gzip)]!.bytes);
    }
  },
);

test.serial(
  "in worker threads, a blob shorter than its recorded size fails the tarballs with the store's error",
  async (t) => {
    t.true(threadsStarted());
    const store = await openStore(path.join(await tempDir("niftyc-tarball-threads-"), "cache"));
    const { tree, base } = await sample(store);
    // A file whose blob lost its tail (a damaged store): written in the rootfs and in a layer.
    const node = tree.get("/usr/share/doc/f100") as Extract<TreeNode, { type: "file" }>;
    const blob = store.blobPath(node.content.digest);
    await fsp.chmod(blob, 0o644);
    await fsp.truncate(blob, 10);
    const error = await t.throwsAsync(writeTarballs(store, tree, base, EPOCH, true));
    t.true(error instanceof NiftyError, String(error));
    t.is((error as NiftyError).code, "NIFTY231");
    t.regex(error!.message, /shorter than its recorded 1301 bytes/);
  },
);
