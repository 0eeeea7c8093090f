// Writes an instances directory in three atomic steps, so a failure at any
// point leaves either the previous state or the new one:
//   1. rootfs/   the shared tree, unpacked once per rootfs digest (staging, rename);
//                kept as it is when the manifest says it holds the same digest;
//   2. systemd/  template unit, target and the instances' env file (staging, rename);
//   3. instances.json, last: the manifest says what the directory holds.
import { createHash } from "node:crypto";
import { lstat, mkdir, open, readFile, readdir, readlink, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, posix } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { replaceDir, stagingDir, writeFileAtomic } from "../core/atomic.ts";
import { privateDir, unpackRootfs } from "../emit/unpack.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import type { ImageConfig } from "../image/config.ts";
import { fileDigest } from "../core/hash.ts";
import type { InstancePlan } from "./plan.ts";
import { listenerUnit, type Forwarder } from "../emit/systemd.ts";
import { isRecord } from "../core/json-shape.ts";
import {
  DEFAULT_IDLE_STOP,
  LAYOUT,
  checkDirectory,
  ENV_FILE,
  manifest,
  renderInstancesEnv,
  renderInstanceUnit,
  renderManifest,
  renderOnDemandUnits,
  renderTarget,
  targetName,
  unitName,
  type Manifest,
} from "./render.ts";

export interface WriteInput {
  /** Absolute instances directory, as the machine that runs the units sees it. */
  dir: string;
  /** Where that machine's / is on this one (default /): files go to <root><dir>, units name <dir>. */
  root?: string;
  config: ImageConfig;
  plan: InstancePlan;
  rootfsTar: string;
  /** The digest the build recorded for rootfsTar. */
  digest: string;
  /** Replace a shared tree of another digest (its instances must be stopped). */
  replace?: boolean;
  /** With replace: how long to wait for machines still running from the tree to exit (default 30 s). */
  stopWaitMs?: number;
  version: string;
  /** On-demand plans: the forwarder's idle time (a systemd time span). */
  idleStop?: string;
  /** On-demand plans: the node and niftyc the forwarder runs (`<node> <niftyc> forward`). */
  forwarder?: Forwarder;
}

export interface WriteResult {
  /** Where the directory was written on this machine (<root><dir>). */
  dir: string;
  /** True when an existing tree of the same digest was kept. */
  reusedRootfs: boolean;
  files: {
    rootfs: string;
    unit: string;
    target: string;
    envFile: string;
    manifest: string;
    listener?: string;
    forwarder?: string;
  };
}

/**
 * <root><dir>: where the files go on this machine. A `..` of the directory is refused rather than
 * joined: join() would resolve it against this machine's tree and leave the root.
 */
function onDisk(input: WriteInput): string {
  if (input.root === undefined || input.root === "/") return input.dir;
  if (input.dir.split("/").some((part) => part === ".." || part === ".")) {
    throw new NiftyError(
      "NIFTY436",
      `the instances directory ${input.dir} leaves the root ${input.root}: ` +
        `this machine would write it at ${join(input.root, input.dir)}`,
      "with --root, give --out as that machine's absolute path without '..' or '.', e.g. --out /var/lib/niftyc/ssh",
    );
  }
  return join(input.root, input.dir);
}

/**
 * The instances.json of `dir`, or undefined when there is none (or `dir` is a file). One that
 * cannot be read, or is not what niftyc instances writes, is NIFTY422 with `hint`.
 */
export async function readManifest(
  dir: string,
  hint = "remove the directory or pass --replace",
): Promise<Manifest | undefined> {
  const file = join(dir, LAYOUT.manifest);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new NiftyError("NIFTY422", `${file} cannot be read: ${(error as Error).message}`, hint);
  }
  if (!isManifest(manifest))
    throw new NiftyError("NIFTY422", `${file} is not the manifest niftyc instances writes`, hint);
  return manifest;
}

/** The fields status and a later run read: a name, a digest, and each instance's machine and unit. */
function isManifest(m: unknown): m is Manifest {
  return (
    isRecord(m) &&
    typeof m.name === "string" &&
    typeof m.digest === "string" &&
    (m.onDemand === undefined || isRecord(m.onDemand)) &&
    Array.isArray(m.instances) &&
    m.instances.every((i) => isRecord(i) && typeof i.machine === "string" && typeof i.unit === "string")
  );
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    if ((error as NodeJS.ErrnoException).code === "ENOTDIR")
      throw new NiftyError(
        "NIFTY422",
        `${dir} is a file, not an instances directory`,
        "choose another --out",
      );
    throw error;
  }
}

/** The lock file systemd-nspawn keeps beside a directory it runs (`.#<name>.lck`) while it runs. */
export function treeLockFile(tree: string): string {
  return join(dirname(tree), `.#${basename(tree)}.lck`);
}

/**
 * How many locks the kernel holds on the tree's lock file: one per systemd-nspawn running from it
 * (an open file description lock, shared under --volatile), whoever started it and in whatever
 * namespace. Read from /proc/locks, which lists every lock by device and inode.
 */
export async function treeHolders(tree: string): Promise<number> {
  let st;
  try {
    st = await stat(treeLockFile(tree), { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  // The kernel's dev_t encoding, as /proc/locks prints it: major:minor in hex, then the inode.
  const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
  const id = `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${st.ino}`;
  const locks = await readFile("/proc/locks", "utf8");
  return locks.split("\n").filter((line) => !line.includes("->") && line.split(/\s+/).includes(id)).length;
}

/**
 * Before a tree is replaced: `systemctl stop <name>.target` returns while machines are still
 * shutting down, so wait (polling) until no nspawn runs from it; refuse if some still do.
 */
async function waitForMachines(tree: string, name: string, waitMs: number): Promise<void> {
  const polls = Math.ceil(waitMs / 100);
  for (let i = 0; ; i++) {
    const holders = await treeHolders(tree);
    if (holders === 0) return;
    if (i >= polls) {
      throw new NiftyError(
        "NIFTY440",
        `${holders} machine${holders === 1 ? "" : "s"} still run${holders === 1 ? "s" : ""} from ${tree} after ${waitMs / 1000} s`,
        `stop them first (systemctl stop ${targetName(name)}) and wait for niftyc instances status to show none running, then pass --replace again`,
      );
    }
    await sleep(100);
  }
}

type TreeAction = { action: "reuse"; tree: string } | { action: "write" };

/** Decide whether the tree already there can be kept, and refuse to clobber what is not ours. */
async function existingTree(input: WriteInput): Promise<TreeAction> {
  const disk = onDisk(input);
  const present = await entries(disk);
  const previous = await readManifest(disk);
  const hasTree = present.includes(LAYOUT.rootfs);
  if (previous === undefined) {
    const foreign = present.filter((name) => !name.startsWith("."));
    if (foreign.length > 0 && input.replace !== true) {
      throw new NiftyError(
        "NIFTY422",
        `${disk} exists and is not an instances directory (no ${LAYOUT.manifest}); it holds ${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}`,
        "choose another --out, or pass --replace to overwrite rootfs/ and systemd/ in it",
      );
    }
    return { action: "write" };
  }
  if (previous.digest === input.digest && previous.name === input.config.name && hasTree) {
    const root = join(disk, LAYOUT.rootfs);
    const now = await treeFingerprint(root);
    // A manifest from before trees were fingerprinted: take the tree as it is, as then.
    if (previous.tree === undefined || previous.tree === now) return { action: "reuse", tree: now };
    // Still this image's tree, but something wrote into it: a boot without --volatile
    // (nspawn's /etc/localtime and /etc/resolv.conf, systemd's machine-id), or a hand.
    if (input.replace === true) return { action: "write" };
    const changed = await changedSince(root, input.config.created);
    throw new NiftyError(
      "NIFTY424",
      `${root} is no longer the image it was unpacked from: ${changed}`,
      `something booted or edited it without --volatile, and every instance would boot those files (a machine-id there would be every instance's); stop what runs from it (systemctl stop ${targetName(previous.name)}), then pass --replace to unpack the image again`,
    );
  }
  if (hasTree && input.replace !== true) {
    throw new NiftyError(
      "NIFTY421",
      `${disk}/${LAYOUT.rootfs} holds ${previous.name} ${previous.digest}, not ${input.config.name} ${input.digest}`,
      `running instances boot from that tree: stop them (systemctl stop ${targetName(previous.name)}), then pass --replace`,
    );
  }
  return { action: "write" };
}

async function walk(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

/** sha256 over every entry's path, type, mode, owner, size (files), mtime and link target. */
export async function treeFingerprint(dir: string): Promise<string> {
  const hash = createHash("sha256");
  const paths = ["", ...(await walk(dir))];
  const BATCH = 64;
  for (let at = 0; at < paths.length; at += BATCH) {
    const lines = await Promise.all(
      paths.slice(at, at + BATCH).map(async (rel) => {
        const st = await lstat(join(dir, rel));
        const kind = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFile() ? "f" : "o";
        const target = kind === "l" ? await readlink(join(dir, rel)) : "";
        return `${rel}\0${kind}\0${st.mode}\0${st.uid}:${st.gid}\0${kind === "f" ? st.size : 0}\0${Math.floor(st.mtimeMs / 1000)}\0${target}\n`;
      }),
    );
    for (const line of lines) hash.update(line);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * What changed, for the message: entries whose mtime is not the image's (every entry of a
 * niftyc rootfs has the build's epoch), files before directories.
 */
async function changedSince(dir: string, epoch: number): Promise<string> {
  const changed: Array<{ rel: string; dir: boolean }> = [];
  for (const rel of await walk(dir)) {
    const st = await lstat(join(dir, rel));
    if (Math.floor(st.mtimeMs / 1000) !== epoch) changed.push({ rel, dir: st.isDirectory() });
  }
  const files = changed.filter((c) => !c.dir);
  const shown = (files.length > 0 ? files : changed).map((c) => c.rel);
  if (shown.length === 0) return "owners or modes changed";
  return `${shown.slice(0, 4).join(", ")}${shown.length > 4 ? ` and ${shown.length - 4} more` : ""} changed`;
}

/**
 * fsync every file and directory of the unpacked tree before it is published:
 * after a crash it is whole or absent, and its pages are clean page cache that
 * every instance maps (Shared_Clean) rather than dirty pages awaiting writeback.
 */
export async function syncTree(dir: string): Promise<void> {
  const paths = [dir];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() || entry.isDirectory()) paths.push(join(entry.parentPath, entry.name));
  }
  const BATCH = 32;
  for (let at = 0; at < paths.length; at += BATCH)
    await Promise.all(paths.slice(at, at + BATCH).map(syncPath));
}

export async function syncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Unpack, sync and publish the shared tree; its fingerprint, taken before anything can boot it. */
async function writeTree(input: WriteInput): Promise<string> {
  const actual = await fileDigest(input.rootfsTar);
  if (actual !== input.digest) {
    throw new NiftyError(
      "NIFTY423",
      `${input.rootfsTar} is ${actual}, but the build recorded ${input.digest}`,
      "the build directory changed after the build: build again",
    );
  }
  const disk = onDisk(input);
  const target = join(disk, LAYOUT.rootfs);
  const staging = await stagingDir(target);
  try {
    await unpackRootfs(input.rootfsTar, join(staging, LAYOUT.rootfs));
    await syncTree(join(staging, LAYOUT.rootfs));
    const tree = await treeFingerprint(join(staging, LAYOUT.rootfs));
    await replaceDir(join(staging, LAYOUT.rootfs), target, true);
    await syncPath(disk); // the rename itself
    return tree;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function writeAll(files: Array<[string, string]>): Promise<void> {
  await Promise.all(files.map(([path, text]) => writeFile(path, text, { mode: 0o644 })));
}

async function writeSystemd(input: WriteInput): Promise<void> {
  const disk = onDisk(input);
  const target = join(disk, LAYOUT.systemd);
  const staging = await stagingDir(target);
  try {
    const root = join(staging, LAYOUT.systemd);
    await mkdir(root, { recursive: true, mode: 0o755 });
    await writeAll([
      [
        join(root, unitName(input.plan.name)),
        renderInstanceUnit(input.config, input.dir, input.plan.onDemand !== undefined),
      ],
      [join(root, targetName(input.plan.name)), renderTarget(input.plan)],
      [join(root, ENV_FILE), renderInstancesEnv(input.plan)],
      ...renderOnDemandUnits(
        input.config,
        input.plan,
        input.idleStop ?? DEFAULT_IDLE_STOP,
        input.forwarder,
      ).map(([file, text]): [string, string] => [join(root, file), text]),
    ]);
    await replaceDir(root, target, true);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export async function writeInstances(input: WriteInput): Promise<WriteResult> {
  checkDirectory(input.dir);
  if (input.root !== undefined && !isAbsolute(input.root))
    throw new Error("the root directory must be absolute");
  const disk = onDisk(input);
  if (input.plan.name !== input.config.name) throw new Error("plan and image config disagree on the name");
  if (posix.normalize(input.dir) === "/")
    throw new NiftyError(
      "NIFTY436",
      `the instances directory cannot be / (${input.root === undefined ? "this machine's root" : `the root of the machine at ${input.root}`})`,
      "give a directory of its own, e.g. --out /var/lib/niftyc/<name>",
    );
  // What is there is judged before anything changes: a refused directory is left as it was.
  const existing = await existingTree(input);
  // 0700: rootfs/ keeps the image's setuid programs (the units run systemd-nspawn as root).
  await privateDir(disk);
  if (existing.action === "write" && input.replace === true) {
    await waitForMachines(join(disk, LAYOUT.rootfs), input.config.name, input.stopWaitMs ?? 30_000);
  }
  const tree = existing.action === "reuse" ? existing.tree : await writeTree(input);
  await writeSystemd(input);
  await writeFileAtomic(
    join(disk, LAYOUT.manifest),
    renderManifest(manifest(input.plan, input.digest, input.version, tree, input.idleStop)),
  );
  const systemd = join(disk, LAYOUT.systemd);
  return {
    dir: disk,
    reusedRootfs: existing.action === "reuse",
    files: {
      rootfs: join(disk, LAYOUT.rootfs),
      unit: join(systemd, unitName(input.plan.name)),
      target: join(systemd, targetName(input.plan.name)),
      envFile: join(systemd, ENV_FILE),
      manifest: join(disk, LAYOUT.manifest),
      ...(input.plan.onDemand === undefined
        ? {}
        : {
            listener: join(systemd, listenerUnit(input.plan.name, "socket")),
            forwarder: join(systemd, listenerUnit(input.plan.name, "service")),
          }),
    },
  };
}
