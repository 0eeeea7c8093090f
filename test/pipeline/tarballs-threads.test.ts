// The tarballs written in worker threads (rootfs.tar in one, the layers in the other; src/pipeline/layers.ts)
// are the bytes the single pass on the main thread writes, and a damaged blob fails them the same way.
// Formats that read no layer (rootfs.tar alone) get rootfs.tar alone, the same bytes.
// Serial: the first test writes before the threads start, the others after.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { openStore, type Store } from "../../src/cache/store.ts";
import { startThreads, threadsRunning } from "../../src/cache/threads.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { Tree, type TreeNode } from "../../src/image/tree.ts";
import { writeTarballs, type LayersWanted, type Tarballs } from "../../src/pipeline/layers.ts";
import { sha256, tempDir } from "./helpers.ts";
import { sample } from "./sample-tree.ts";

const EPOCH = 1_700_000_000;

/** The tar tests' sample tree with its blobs in the store; two paths in the first layer. */
async function sampleInStore(store: Store): Promise<{ tree: Tree; base: Set<string> }> {
  await fsp.mkdir(store.blobsDir, { recursive: true });
  const { tree } = await sample(store.blobsDir);
  return { tree, base: new Set(["/bin/big", "/sbin"]) };
}

/**
 * The tarballs written into a fresh store, each blob's bytes hashed again, and which thread wrote
 * each: the journal that names its digest (every thread journals into a file of its own, and the
 * sample's blobs are written without one).
 */
async function written(
  wanted: LayersWanted,
): Promise<{ tarballs: Tarballs; bytes: Map<string, string>; journals: Map<string, string> }> {
  const store = await openStore(path.join(await tempDir("niftyc-tarball-threads-"), "cache"));
  const { tree, base } = await sampleInStore(store);
  const tarballs = await writeTarballs(store, tree, base, EPOCH, wanted);
  const blobs = [tarballs.rootfs, ...tarballs.layers.flatMap((l) => (l.gzip ? [l, l.gzip] : [l]))];
  const bytes = new Map<string, string>();
  for (const blob of blobs) bytes.set(blob.digest, sha256(await fsp.readFile(store.blobPath(blob.digest))));
  const journals = new Map<string, string>();
  for (const name of await fsp.readdir(store.unsyncedDir))
    for (const line of (await fsp.readFile(path.join(store.unsyncedDir, name), "utf8")).split("\n"))
      if (line) journals.set(line, name);
  return { tarballs, bytes, journals };
}

/** The journals (so the threads) the tarballs' blobs were written from: rootfs's, and the layers'. */
function writers(w: Awaited<ReturnType<typeof written>>): { rootfs: string; layers: string[] } {
  return {
    rootfs: w.journals.get(w.tarballs.rootfs.digest)!,
    layers: [...new Set(w.tarballs.layers.map((l) => w.journals.get(l.digest)!))],
  };
}

const onMain: Record<string, Awaited<ReturnType<typeof written>>> = {};
/** Layers with their gzip, without it, and none (a build whose formats read only rootfs.tar). */
const WANTED: Record<string, LayersWanted> = {
  gzip: { layers: true, gzip: true },
  tars: { layers: true, gzip: false },
  none: { layers: false, gzip: false },
};

test.serial(
  "on the main thread (no threads running): one pass writes every blob, each holding the bytes of its digest",
  async (t) => {
    t.is(threadsRunning(), 0);
    for (const [how, wanted] of Object.entries(WANTED)) {
      onMain[how] = await written(wanted);
      for (const [digest, actual] of onMain[how]!.bytes) t.is(actual, digest);
      const { rootfs, layers } = writers(onMain[how]!);
      t.deepEqual(
        layers,
        wanted.layers ? [rootfs] : [],
        "one pass: the rootfs and the layers from one thread",
      );
      t.true(rootfs.includes(`.${process.pid}.`));
    }
    t.is(threadsRunning(), 0, "no thread was started for them");
    t.is(onMain.gzip!.tarballs.layers.length, 2);
    t.truthy(onMain.gzip!.tarballs.layers.every((l) => l.gzip !== undefined));
    t.truthy(onMain.tars!.tarballs.layers.every((l) => l.gzip === undefined));
    t.deepEqual(onMain.none!.tarballs, { rootfs: onMain.gzip!.tarballs.rootfs, layers: [] });
    t.is(onMain.none!.bytes.size, 1, "rootfs.tar alone was written");
  },
);

test.serial(
  "in worker threads, with the layers' gzip, without it, and without layers: the same tarballs as the main thread's",
  async (t) => {
    startThreads();
    t.true(threadsRunning() >= 2, "the machine gives two threads or more");
    const mainJournal = writers(onMain.tars!).rootfs;
    // This thread's journal carries the same tag in every store; the threads' tags are their own.
    const tag = (journal: string) => journal.split(".")[2];
    for (const [how, wanted] of Object.entries(WANTED)) {
      const inThreads = await written(wanted);
      t.deepEqual(inThreads.tarballs, onMain[how]!.tarballs);
      t.deepEqual(inThreads.bytes, onMain[how]!.bytes);
      const { rootfs, layers } = writers(inThreads);
      t.not(tag(rootfs), tag(mainJournal), "the rootfs from a worker thread");
      if (!wanted.layers) {
        t.deepEqual(layers, []);
        continue;
      }
      t.is(layers.length, 1, "both layers from one thread");
      t.not(rootfs, layers[0], "the rootfs from another");
      t.not(tag(layers[0]!), tag(mainJournal));
    }
  },
);

test.serial(
  "in worker threads, a blob shorter than its recorded size fails the tarballs with the store's error",
  async (t) => {
    t.true(threadsRunning() >= 2);
    const store = await openStore(path.join(await tempDir("niftyc-tarball-threads-"), "cache"));
    const { tree, base } = await sampleInStore(store);
    // A file whose blob lost its tail (a damaged store): written in the rootfs and in a layer.
    const node = tree.get("/many/f100") as Extract<TreeNode, { type: "file" }>;
    const blob = store.blobPath(node.content.digest);
    await fsp.chmod(blob, 0o644);
    await fsp.truncate(blob, 10);
    const error = await t.throwsAsync(writeTarballs(store, tree, base, EPOCH, WANTED.gzip!));
    t.true(error instanceof NiftyError, String(error));
    t.is((error as NiftyError).code, "NIFTY231");
    t.regex(error!.message, /shorter than its recorded 701 bytes/);
  },
);
