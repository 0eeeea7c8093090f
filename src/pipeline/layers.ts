// The OCI layers: fetched binaries and their links in the first, everything
// else in the second, so recipes that fetch the same binaries share the
// first layer's digest whatever else they do.
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import { DEFAULT_DIR, Tree, type TreeNode } from "../image/tree.ts";
import { damagedBlob, Store } from "../cache/store.ts";
import type { TarTarget } from "../emit/tar.ts";
import { newHash } from "../core/hash.ts";
import { NIFTYC_VERSION } from "../core/version.ts";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * Split `tree` into two trees. `base` holds the paths last written by FETCH
 * and LINK, under plain 0755 root directories; `rest` holds every other path,
 * every directory with its final
 * metadata. Their union, in order, is `tree`.
 */
export function splitLayers(tree: Tree, basePaths: ReadonlySet<string>): { base: Tree; rest: Tree } {
  const base = new Tree();
  const rest = new Tree();
  for (const path of tree.sortedPaths()) {
    if (path === "/") continue;
    const node = tree.get(path)!;
    if (basePaths.has(path) && node.type !== "dir") {
      for (let dir = posix.dirname(path); dir !== "/"; dir = posix.dirname(dir)) {
        if (!base.get(dir)) base.nodes.set(dir, DEFAULT_DIR);
      }
      base.nodes.set(path, node);
    } else {
      rest.nodes.set(path, node);
    }
  }
  return { base, rest };
}

export interface Tarballs {
  rootfs: { digest: string; size: number };
  /**
   * Each layer's tar, and its gzip (the OCI layout's layer blob), all in the store. Made only for a
   * build whose formats read them, then kept: the tars for the OCI layout and the docker-archive
   * (empty when no format read them: a tree always has two layers once they are made), the gzip
   * for the OCI layout alone (gzipLayers). rootfs.tar, bundles and the unit files never read them.
   */
  layers: Array<{ digest: string; size: number; comment: string; gzip?: { digest: string; size: number } }>;
}

/** Which of the tarballs a build's formats read beyond rootfs.tar (outputs.ts takesLayers, takesGzippedLayers). */
export interface LayersWanted {
  layers: boolean;
  /** The layers' gzip too (only with `layers`). */
  gzip: boolean;
}

/**
 * rootfs.tar and, when `wanted.layers`, the two layer tarballs, streamed into the store, the layers
 * gzipped as they are written when `wanted.gzip` is set. When worker threads run (a cold build read
 * its .debs in them), rootfs.tar is written in one and the layers in another while the caller goes
 * on (the image's checks); otherwise in one pass here, each file read once.
 */
export async function writeTarballs(
  store: Store,
  tree: Tree,
  basePaths: ReadonlySet<string>,
  epoch: number,
  wanted: LayersWanted,
): Promise<Tarballs> {
  const { runInThread, threadsRunning } = await import("../cache/threads.ts");
  const gzip = wanted.layers && wanted.gzip;
  if (threadsRunning() < (wanted.layers ? 2 : 1)) {
    const which = wanted.layers ? ALL : ROOTFS;
    const { rootfs, layers } = await writeTarballSet(store, tree, basePaths, epoch, which, gzip);
    return { rootfs: rootfs!, layers: layers ?? [] };
  }
  const nodes = [...tree.nodes];
  const part = (which: TarballSet) => {
    const args: Parameters<typeof writeTarballsInThread> = [
      store.dir,
      nodes,
      [...basePaths],
      epoch,
      which,
      gzip,
    ];
    return runInThread(import.meta.url, "writeTarballsInThread", args) as Promise<Partial<Tarballs>>;
  };
  if (!wanted.layers) return { rootfs: (await part(ROOTFS)).rootfs!, layers: [] };
  // Both settle before either's failure is thrown: no thread still writes when the build fails.
  const [rootfs, layers] = await Promise.allSettled([part(ROOTFS), part(LAYERS)]);
  if (rootfs.status === "rejected") throw rootfs.reason;
  if (layers.status === "rejected") throw layers.reason;
  return { rootfs: rootfs.value.rootfs!, layers: layers.value.layers! };
}

/** Which tarballs one pass writes. */
interface TarballSet {
  rootfs: boolean;
  layers: boolean;
}
const ALL: TarballSet = { rootfs: true, layers: true };
const ROOTFS: TarballSet = { rootfs: true, layers: false };
const LAYERS: TarballSet = { rootfs: false, layers: true };

/** What a worker thread does for writeTarballs: some of the tarballs of the tree given as its nodes. */
export async function writeTarballsInThread(
  storeDir: string,
  nodes: Array<[string, TreeNode]>,
  basePaths: string[],
  epoch: number,
  which: TarballSet,
  gzip: boolean,
): Promise<Partial<Tarballs>> {
  const tree = new Tree();
  for (const [path, node] of nodes) tree.nodes.set(path, node);
  return writeTarballSet(new Store(storeDir), tree, new Set(basePaths), epoch, which, gzip);
}

/** Some of the tarballs in one pass over the tree: each file read once for all of them. */
async function writeTarballSet(
  store: Store,
  tree: Tree,
  basePaths: ReadonlySet<string>,
  epoch: number,
  which: TarballSet,
  gzip: boolean,
): Promise<Partial<Tarballs>> {
  const [{ writeTars }, { deterministicGzip, Tee }] = await Promise.all([
    import("../emit/tar.ts"),
    import("../emit/digest-stream.ts"),
  ]);
  const rootfs = which.rootfs ? store.createWriter() : undefined;
  const raws = which.layers ? [store.createWriter(), store.createWriter()] : [];
  const gzips = which.layers && gzip ? [store.createWriter(), store.createWriter()] : [];
  const writers = [...(rootfs ? [rootfs] : []), ...raws, ...gzips];
  // Each layer's tar goes to its blob and, through gzip, to its gzip blob
  // (zlib compresses on the thread pool while this thread writes the tars).
  const compressed: Promise<void>[] = [];
  const layerOut = (i: number): Writable => {
    if (gzips.length === 0) return raws[i]!;
    const tee = new Tee(raws[i]!);
    const done = pipeline(tee, ...deterministicGzip(), gzips[i]!);
    done.catch(() => {}); // awaited below; a failure here also fails the tar's own pipeline
    compressed.push(done);
    return tee;
  };
  try {
    const targets: TarTarget[] = [];
    if (rootfs) targets.push({ out: rootfs, pick: (path) => tree.get(path) });
    if (which.layers) {
      const { base, rest } = splitLayers(tree, basePaths);
      targets.push(
        { out: layerOut(0), pick: (path) => (path === "/" ? undefined : base.nodes.get(path)) },
        { out: layerOut(1), pick: (path) => (path === "/" ? undefined : rest.nodes.get(path)) },
      );
    }
    await writeTars(targets, tree.sortedPaths(), { mtime: epoch, blobPath: (d) => store.blobPath(d) });
    await Promise.all(compressed);
    const [r, tars, gzipped] = await Promise.all([
      rootfs?.commit(),
      Promise.all(raws.map((w) => w.commit())),
      Promise.all(gzips.map((w) => w.commit())),
    ]);
    const layers = tars.map((tar, i) => {
      const z = gzipped[i];
      return { ...blob(tar), comment: COMMENTS[i]!, ...(z === undefined ? {} : { gzip: blob(z) }) };
    });
    return { ...(r ? { rootfs: blob(r) } : {}), ...(which.layers ? { layers } : {}) };
  } catch (error) {
    await Promise.allSettled(compressed);
    await Promise.all(writers.map((w) => w.abort()));
    throw error;
  }
}

/**
 * Bumped when the tarballs' bytes change for the same tree (the tar writer, the layer split), or what
 * the record means. 2: an epoch from 2038 on is written whole, where 32-bit arithmetic made it a
 * negative mtime. 3: a record may hold no layers (a build whose formats read none wrote none).
 */
const TARBALLS_FORMAT = "niftyc-tarballs/3";

/**
 * What the tarballs' bytes depend on: every path with its type, owner, mode, link target and content
 * digest, which paths the first layer takes, and the epoch (every entry's mtime). Recipes that differ
 * only in what never reaches the tree (LABEL, ENV, EXPOSE, STOPSIGNAL) share it, so a rebuild after such
 * an edit takes the tarballs from the store.
 */
export function tarballsKey(tree: Tree, basePaths: ReadonlySet<string>, epoch: number): string {
  const hash = newHash("sha256").update(`${TARBALLS_FORMAT}\0${NIFTYC_VERSION}\0${epoch}\0`);
  for (const path of tree.sortedPaths()) {
    const node = tree.get(path)!;
    const what =
      node.type === "file"
        ? `${node.content.digest} ${node.content.size}`
        : node.type === "symlink"
          ? node.target
          : "";
    hash.update(
      `${path}\0${node.type} ${node.mode} ${node.uid} ${node.gid} ${basePaths.has(path) ? 0 : 1}\0${what}\0`,
    );
  }
  return hash.digest("hex");
}

const COMMENTS = ["fetched binaries and links", "files, accounts and configuration"] as const;
const blob = (x: { digest: string; size: number }) => ({ digest: x.digest, size: x.size });

/**
 * The layers' gzip, for tarballs written without it: each layer's tar read back from the store and
 * compressed (both at once, on zlib's thread pool), the same bytes as when written with the tar.
 */
export async function gzipLayers(store: Store, tarballs: Tarballs): Promise<Tarballs> {
  const { DigestStream, deterministicGzip } = await import("../emit/digest-stream.ts");
  const layers = await Promise.all(
    tarballs.layers.map(async (layer) => {
      if (layer.gzip !== undefined) return layer;
      const writer = store.createWriter();
      try {
        // Checked as read: a damaged tar would give a gzip that is not of the layer's diff_id.
        const read = new DigestStream();
        await pipeline(createReadStream(store.blobPath(layer.digest)), read, ...deterministicGzip(), writer);
        if (read.digest() !== layer.digest || read.size !== layer.size)
          throw damagedBlob(layer.digest, `it reads as ${read.digest()} (${read.size} bytes)`);
        return { ...layer, gzip: blob(await writer.commit()) };
      } catch (error) {
        await writer.abort();
        throw error;
      }
    }),
  );
  return { ...tarballs, layers };
}
