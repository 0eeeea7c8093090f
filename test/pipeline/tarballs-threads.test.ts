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
import { sample } from "./sample-tree.ts";

const EPOCH = 1_700_000_000;

/** The tar tests' sample tree with its blobs in the store; two paths in the first layer. */
async function sampleInStore(store: Store): Promise<{ tree: Tree; base: Set<string> }> {
  await fsp.mkdir(store.blobsDir, { recursive: true });
  const { tree } = await sample(store.blobsDir);
  return { tree, base: new Set(["/bin/big", "/sbin"]) };
}

async function written(gzip: boolean): Promise<{ tarballs: Tarballs; bytes: Map<string, string> }> {
  const store = await openStore(path.join(await tempDir("niftyc-tarball-threads-"), "cache"));
  const { tree, base } = await sampleInStore(store);
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
    const { tree, base } = await sampleInStore(store);
    // A file whose blob lost its tail (a damaged store): written in the rootfs and in a layer.
    const node = tree.get("/many/f100") as Extract<TreeNode, { type: "file" }>;
    const blob = store.blobPath(node.content.digest);
    await fsp.chmod(blob, 0o644);
    await fsp.truncate(blob, 10);
    const error = await t.throwsAsync(writeTarballs(store, tree, base, EPOCH, true));
    t.true(error instanceof NiftyError, String(error));
    t.is((error as NiftyError).code, "NIFTY231");
    t.regex(error!.message, /shorter than its recorded 701 bytes/);
  },
);
