// Builds and `cache gc` share a store: a build holds a lease while it runs
// (it may reuse any blob it finds), and gc removes no blob while a live lease
// exists. Each side writes its own marker first and then looks for the
// other's, so at least one of two that start together sees the other: a gc
// that sees a lease leaves blobs alone; a build that sees a running gc waits
// for it to finish before it reads the store.
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { processAlive } from "../core/process.ts";
import { isCode, listDir, type Store } from "./store.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
const GC_MARKER = "gc.pid";

export interface Lease {
  release(): Promise<void>;
}

function leasesDir(store: Store): string {
  return path.join(store.dir, "leases");
}

/** The pid a marker names, when that process still runs and the marker is under a day old. */
async function liveOwner(file: string, now: number): Promise<number | undefined> {
  let text: string;
  let mtime: number;
  try {
    [text, mtime] = await Promise.all([fsp.readFile(file, "utf8"), fsp.stat(file).then((s) => s.mtimeMs)]);
  } catch (error) {
    if (isCode(error, "ENOENT")) return undefined;
    throw error;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid) && now - mtime < DAY_MS
    ? pid
    : undefined;
}

async function writeMarker(file: string): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, `${process.pid}\n`);
}

/** Take a build's lease; waits (up to `maxWaitMs`) while a gc is removing blobs. */
export async function takeLease(store: Store, maxWaitMs = 10 * 60_000): Promise<Lease> {
  const file = path.join(leasesDir(store), `${process.pid}-${randomBytes(8).toString("hex")}.lease`);
  await writeMarker(file);
  const until = Date.now() + maxWaitMs;
  while (
    (await liveOwner(path.join(leasesDir(store), GC_MARKER), Date.now())) !== undefined &&
    Date.now() < until
  )
    await sleep(100);
  await sweepDeadWriters(store);
  return { release: () => fsp.rm(file, { force: true }) };
}

/** Temp files (partial downloads, blobs being written) whose writer died: nothing will finish them. */
async function sweepDeadWriters(store: Store): Promise<void> {
  for (const name of await listDir(store.tmpDir)) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1] ?? NaN);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid))
      await fsp.rm(path.join(store.tmpDir, name), { force: true, recursive: true });
  }
}

/**
 * Run `work` as gc: with `mayRemoveBlobs` false when builds hold leases (their
 * count is returned). Stale leases (their process gone, or over a day old)
 * are removed.
 */
export async function asGc<T>(
  store: Store,
  work: (mayRemoveBlobs: boolean) => Promise<T>,
): Promise<{ result: T; runningBuilds: number }> {
  const marker = path.join(leasesDir(store), GC_MARKER);
  await writeMarker(marker);
  try {
    let running = 0;
    const now = Date.now();
    for (const name of await listDir(leasesDir(store))) {
      if (!name.endsWith(".lease")) continue;
      const file = path.join(leasesDir(store), name);
      if ((await liveOwner(file, now)) !== undefined || name.startsWith(`${process.pid}-`)) running++;
      else await fsp.rm(file, { force: true });
    }
    return { result: await work(running === 0), runningBuilds: running };
  } finally {
    await fsp.rm(marker, { force: true });
  }
}
