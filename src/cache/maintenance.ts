// What `niftyc cache list|verify|gc|import` do to a store. Each returns a
// report; the CLI prints it.
import * as fsp from "node:fs/promises";
import path from "node:path";
import sha256File from "sha256-file";
import { NiftyError } from "../diagnostics/errors.ts";
import { processAlive } from "../core/process.ts";
import { isCode, listDir } from "./store.ts";
import { asGc } from "./lease.ts";
import { quarantine } from "./unsynced.ts";
import type { Store } from "./store.ts";

const HEX_RE = /^[0-9a-f]{64}$/;
const DAY_MS = 86_400_000;

export interface CacheEntry {
  digest: string;
  size: number;
  /** Latest of: a build's use record naming it, or the blob being (re)added. */
  lastUse: Date;
  /** Tags of the use records that name this blob. */
  usedBy: string[];
}

export async function cacheList(store: Store): Promise<CacheEntry[]> {
  const uses = await usesByDigest(store);
  const out: CacheEntry[] = [];
  for (const name of await listDir(store.blobsDir)) {
    if (!HEX_RE.test(name)) continue;
    const st = await statOrUndefined(path.join(store.blobsDir, name));
    if (!st?.isFile()) continue;
    const digest = `sha256:${name}`;
    const use = uses.get(digest);
    const lastUse = use && use.time > st.mtimeMs ? new Date(use.time) : st.mtime;
    out.push({ digest, size: st.size, lastUse, usedBy: use ? [...use.tags].sort() : [] });
  }
  return out;
}

export interface VerifyReport {
  checked: number;
  ok: number;
  /** Blobs whose bytes no longer match their name, now in DIR/quarantine. */
  corrupt: { digest: string; actual: string; quarantinedTo: string }[];
  /** Files in the blob directory that are not named by a digest, also quarantined. */
  stray: { file: string; quarantinedTo: string }[];
}

/** Re-hash every blob; move any that fails out of the store into quarantine. */
export async function cacheVerify(store: Store): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, ok: 0, corrupt: [], stray: [] };
  await fsp.mkdir(store.quarantineDir, { recursive: true });
  for (const name of await listDir(store.blobsDir)) {
    const file = path.join(store.blobsDir, name);
    if (!HEX_RE.test(name)) {
      const quarantinedTo = await quarantine(store.quarantineDir, file, name);
      if (quarantinedTo !== undefined) report.stray.push({ file, quarantinedTo });
      continue;
    }
    let actualHex: string;
    try {
      actualHex = await hashWithSha256File(file);
    } catch (err) {
      if (isCode(err, "ENOENT")) continue; // removed by a concurrent gc
      throw err;
    }
    report.checked++;
    if (actualHex === name) {
      report.ok++;
    } else {
      const quarantinedTo = await quarantine(store.quarantineDir, file, name);
      // Gone meanwhile (a concurrent gc): nothing damaged is left to report.
      if (quarantinedTo !== undefined)
        report.corrupt.push({ digest: `sha256:${name}`, actual: `sha256:${actualHex}`, quarantinedTo });
    }
  }
  return report;
}

export interface GcOptions {
  /** Keep blobs used or added within this many days. */
  olderThanDays: number;
  /** The time gc counts back from; the CLI passes the current time. */
  now?: Date;
}

/** What gc of an empty store reports. */
export function emptyGcReport(): GcReport {
  return {
    removed: [],
    kept: 0,
    freedBytes: 0,
    removedTempFiles: [],
    removedUseRecords: 0,
    removedStamps: 0,
    runningBuilds: 0,
  };
}

export interface GcReport {
  removed: { digest: string; size: number }[];
  kept: number;
  freedBytes: number;
  removedTempFiles: string[];
  removedUseRecords: number;
  /** Up-to-date stamps whose build's use record was removed. */
  removedStamps: number;
  /** Builds were running (holding leases): no blob or use record was removed. */
  runningBuilds: number;
}

/**
 * Remove blobs that no build recorded within the window used and that were
 * not added within it, use records older than the window, the up-to-date
 * stamps of those records, and temp files whose writer died (or that are over
 * a day old).
 */
export async function cacheGc(store: Store, options: GcOptions): Promise<GcReport> {
  const days = options.olderThanDays;
  if (!Number.isFinite(days) || days < 0) {
    throw new NiftyError(
      "NIFTY131",
      `invalid gc age ${String(days)} days`,
      "give a number of days, 0 or more",
    );
  }
  const now = (options.now ?? new Date()).getTime();
  const cutoff = now - days * DAY_MS;
  const report = emptyGcReport();

  // While builds run, any blob may be one they are about to reuse.
  const { runningBuilds } = await asGc(store, (mayRemoveBlobs) =>
    mayRemoveBlobs ? removeBlobs(store, cutoff, report) : Promise.resolve(),
  );
  report.runningBuilds = runningBuilds;

  report.removedStamps = await removeOrphanStamps(store);

  for (const name of await listDir(store.tmpDir)) {
    const file = path.join(store.tmpDir, name);
    const st = await statOrUndefined(file);
    if (!st) continue;
    const pid = Number(/^(\d+)-/.exec(name)?.[1] ?? NaN);
    const writerAlive = Number.isInteger(pid) && pid > 0 && processAlive(pid);
    if (writerAlive && now - st.mtimeMs < DAY_MS) continue;
    await fsp.rm(file, { force: true });
    report.removedTempFiles.push(name);
  }
  return report;
}

/**
 * An up-to-date stamp (src/cli/build-stamp.ts) one of whose use records is gone (a multi-platform
 * build's names one per platform) can answer nothing again: removed. Returns how many were.
 */
async function removeOrphanStamps(store: Store): Promise<number> {
  const stampsDir = path.join(store.dir, "stamps");
  let removed = 0;
  for (const name of await listDir(stampsDir)) {
    const file = path.join(stampsDir, name);
    const useRecords = await fsp.readFile(file, "utf8").then(
      (text) => (JSON.parse(text) as { useRecords?: unknown }).useRecords,
      () => undefined,
    );
    const named = Array.isArray(useRecords) && useRecords.length > 0 ? useRecords : undefined;
    const present = async (r: unknown) => typeof r === "string" && (await statOrUndefined(r)) !== undefined;
    if (named !== undefined && (await Promise.all(named.map(present))).every(Boolean)) continue;
    await fsp.rm(file, { force: true });
    removed++;
  }
  return removed;
}

async function removeBlobs(store: Store, cutoff: number, report: GcReport): Promise<void> {
  const keep = new Set<string>();
  for (const { file, record } of await store.readUseRecords()) {
    const t = Date.parse(record.lastUsed);
    if (t >= cutoff) {
      for (const d of record.digests) keep.add(d);
    } else {
      await fsp.rm(file, { force: true });
      report.removedUseRecords++;
    }
  }

  for (const name of await listDir(store.blobsDir)) {
    if (!HEX_RE.test(name)) continue;
    const file = path.join(store.blobsDir, name);
    const digest = `sha256:${name}`;
    const st = await statOrUndefined(file);
    if (!st) continue;
    if (keep.has(digest) || st.mtimeMs >= cutoff) {
      report.kept++;
      continue;
    }
    await fsp.rm(file, { force: true });
    report.removed.push({ digest, size: st.size });
    report.freedBytes += st.size;
  }
}

/** Add local files to the store (for air-gapped builds). */
export async function cacheImport(
  store: Store,
  files: string[],
): Promise<{ digest: string; file: string; size: number }[]> {
  const out: { digest: string; file: string; size: number }[] = [];
  for (const file of files) {
    const info = await store.putFile(file);
    out.push({ digest: info.digest, file, size: info.size });
  }
  return out;
}

async function usesByDigest(store: Store): Promise<Map<string, { time: number; tags: Set<string> }>> {
  const map = new Map<string, { time: number; tags: Set<string> }>();
  for (const { record } of await store.readUseRecords()) {
    const t = Date.parse(record.lastUsed);
    for (const d of record.digests) {
      const cur = map.get(d) ?? { time: -Infinity, tags: new Set<string>() };
      cur.time = Math.max(cur.time, t);
      cur.tags.add(record.tag);
      map.set(d, cur);
    }
  }
  return map;
}

function hashWithSha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    sha256File(file, (err, hex) =>
      err || hex === null ? reject(err ?? new Error("no hash")) : resolve(hex),
    );
  });
}

async function statOrUndefined(file: string) {
  try {
    return await fsp.stat(file);
  } catch (err) {
    if (isCode(err, "ENOENT")) return undefined;
    throw err;
  }
}
