// Blobs named before their bytes were synced (Store.journalUnsynced): what a
// store opened later does with the journals that list them.
// - A journal of an earlier boot: the machine restarted, perhaps without
//   writing back what was only in memory, so every blob it names is hashed
//   again, and one whose bytes do not match its name is moved to quarantine
//   (the next build that needs it writes it again). Then the journal goes.
// - A journal of this boot whose writer has exited, last written a minute or
//   more ago: one `sync -f` of the store's file system, in a detached child,
//   makes every byte written so far durable, and the journal is removed after
//   it. Nothing waits for it; a journal it leaves is dealt with by the next
//   open, or the next boot. A younger journal waits: by then the kernel has
//   written back most of what it names itself (after 30 s by default), so the
//   sync is short instead of flushing a build's hundreds of megabytes while
//   the next build, which opened the store, waits behind it for its own syncs.
// Journals of live writers are left alone.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { fileDigest } from "../core/hash.ts";
import { bootId, isCode, processAlive } from "../core/process.ts";
import { parseJournalName } from "./journals.ts";

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
/** Journals retired by one `sync -f` child: their paths are its arguments. */
export const RETIRED_AT_ONCE = 256;
/** A journal of an exited writer is retired once it was last written this long ago. */
export const RETIRED_AFTER_MS = 60_000;

/** The store's directories this needs (not the Store: store.ts loads this module). */
export interface StoreDirs {
  dir: string;
  blobsDir: string;
  quarantineDir: string;
  unsyncedDir: string;
}

/** What opening the store found: blobs an earlier boot left unsynced, checked and kept or quarantined. */
export interface UnsyncedReport {
  checked: number;
  quarantined: string[];
}

export async function settleUnsynced(store: StoreDirs, names: readonly string[]): Promise<UnsyncedReport> {
  const report: UnsyncedReport = { checked: 0, quarantined: [] };
  const boot = bootId();
  const written: string[] = [];
  for (const name of names) {
    const parsed = parseJournalName(name);
    const journal = path.join(store.unsyncedDir, name);
    if (parsed === undefined) continue; // not a journal: left for whoever put it there
    if (parsed.boot !== boot) {
      await checkJournal(store, journal, report);
      await fsp.rm(journal, { force: true });
    } else if (!processAlive(parsed.pid) && (await lastWritten(journal)) < Date.now() - RETIRED_AFTER_MS) {
      written.push(journal);
    }
  }
  // One command line takes so many; the rest wait for the next opening.
  if (written.length > 0) syncThenRemove(store.dir, written.slice(0, RETIRED_AT_ONCE));
  return report;
}

async function checkJournal(store: StoreDirs, journal: string, report: UnsyncedReport): Promise<void> {
  let text: string;
  try {
    text = await fsp.readFile(journal, "latin1");
  } catch (error) {
    if (isCode(error, "ENOENT")) return; // another process checked it first
    throw error;
  }
  for (const digest of new Set(text.split("\n"))) {
    if (!DIGEST_RE.test(digest)) continue; // a line cut short by the crash
    const blob = path.join(store.blobsDir, digest.slice("sha256:".length));
    let actual: string;
    try {
      actual = await fileDigest(blob);
    } catch (error) {
      if (isCode(error, "ENOENT")) continue; // never named, or removed since
      throw error;
    }
    report.checked++;
    if (actual === digest) continue;
    await quarantine(store.quarantineDir, blob, digest.slice("sha256:".length));
    report.quarantined.push(digest);
  }
}

/** When a journal was last appended to (Infinity when it is gone: nothing to retire). */
async function lastWritten(journal: string): Promise<number> {
  try {
    return (await fsp.stat(journal)).mtimeMs;
  } catch (error) {
    if (isCode(error, "ENOENT")) return Number.POSITIVE_INFINITY;
    throw error;
  }
}

/** `sync -f` on the store's file system, then the journals removed: detached, so the caller never waits. */
function syncThenRemove(dir: string, journals: readonly string[]): void {
  try {
    const child = spawn("/bin/sh", ["-c", 'sync -f "$0" && exec rm -f -- "$@"', dir, ...journals], {
      detached: true,
      stdio: "ignore",
    });
    child.on("error", () => {}); // no sh or no sync: the journals wait for the next open
    child.unref();
  } catch {
    // As above.
  }
}

/**
 * Move a blob whose bytes are not its name's (or a stray file) into quarantine/, under its name and
 * a random suffix; the path it now has, or undefined when it was gone already (removed, or set
 * aside by another process). The store's one way to set a file aside: verify, a restart's check
 * of unsynced blobs, and a build that finds a damaged copy all use it.
 */
export async function quarantine(
  quarantineDir: string,
  file: string,
  name: string,
): Promise<string | undefined> {
  await fsp.mkdir(quarantineDir, { recursive: true });
  const to = path.join(quarantineDir, `${name}.${randomBytes(4).toString("hex")}`);
  try {
    await fsp.rename(file, to);
    return to;
  } catch (error) {
    if (isCode(error, "ENOENT")) return undefined;
    throw error;
  }
}
