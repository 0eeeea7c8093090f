// The warm short cut: the same `niftyc build` command, its inputs unchanged
// by identity (src/cli/build-stamp.ts), but its output directory gone or
// changed. A warm build would copy every output file from the store and
// write build.json; the stamp of the last such build says which blobs and
// what build.json holds, so this does that without loading the compiler.
// It trusts a blob as it trusts an input, by its identity (device, inode,
// mode, size, mtime) as the build saw it; a blob whose identity moved (stored
// again, which refreshes its mtime for gc, or a copy of the store) is hashed
// and used only when its bytes still match its name. The identities are
// checked again after the copy. Anything else (a blob gone or rewritten, out/
// already holding these outputs) runs the build.
import { blobIdentityOf, racy, treeIdentities, unchanged } from "../core/host-inputs.ts";
import { clockMs } from "../core/clock.ts";
import { fileDigestSync, restoreEntries } from "../cache/assembled.ts";
import { journalsOfEarlierBoot } from "../cache/journals.ts";
import { discard, publish, stagingDir } from "../core/atomic.ts";
import { outDirRefusal } from "../core/out-dir.ts";
import {
  eventLine,
  printStampedWarnings,
  diagnosticsJson,
  resultText,
  unstamped,
  type ReportedResult,
  type ReportEvent,
  type StampedWarnings,
} from "./build-report.ts";
import type { CliIo } from "./io.ts";
import type { HostInput } from "../core/host-inputs.ts";
import type { OutputsRestore } from "../pipeline/types.ts";

const { readFileSync, statSync, writeFileSync } = process.getBuiltinModule("node:fs");
const { join } = process.getBuiltinModule("node:path");

/** What a warm build of the same command writes and prints, kept in its stamp (src/cli/build-stamp.ts). */
export interface StampRestore extends Omit<OutputsRestore, "stepNotes"> {
  events: ReportEvent[];
  result: Omit<ReportedResult, "stages">;
}

type Blob = StampRestore["blobs"][number];

/** Whether every blob is as it was: the same identity, so the same bytes. */
function blobsAsSeen(blobs: readonly Blob[]): boolean {
  return blobs.every(({ path, identity }) => {
    const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
    return stats !== undefined && blobIdentityOf(stats) === identity;
  });
}

/**
 * Every blob with the identity it has now, when its bytes are its name's: by
 * identity, or else hashed; and the identities for the stamp, where one from
 * within the file system clock's tick is not kept (the next run hashes again).
 * Undefined when a blob is gone or not its name's.
 */
function vouchedBlobs(blobs: readonly Blob[]): { now: Blob[]; kept: Blob[] } | undefined {
  const now: Blob[] = [];
  const kept: Blob[] = [];
  for (const blob of blobs) {
    const stats = statSync(blob.path, { bigint: true, throwIfNoEntry: false });
    if (stats === undefined) return undefined;
    const identity = blobIdentityOf(stats);
    if (identity !== blob.identity && fileDigestSync(blob.path) !== blob.digest) return undefined;
    now.push({ ...blob, identity });
    kept.push(racy(stats.mtimeNs) ? blob : { ...blob, identity });
  }
  return { now, kept };
}

/** The fingerprint out/build.json holds now, if any: the build itself would find those outputs up to date. */
function fingerprintIn(outDir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(outDir, "build.json"), "utf8")) as { fingerprint?: string })
      .fingerprint;
  } catch {
    return undefined;
  }
}

/** out/ restored, or false (nothing published) when the store no longer holds what the stamp says. */
async function restoreOutputs(restore: StampRestore): Promise<boolean> {
  const outDir = restore.result.outDir;
  const staging = await stagingDir(outDir);
  try {
    const paths = new Map(restore.blobs.map((b) => [b.digest, b.path]));
    restoreEntries(staging, restore.entries, (digest) => paths.get(digest)!);
    // A blob changed while it was copied (identities as vouched for just before).
    if (!blobsAsSeen(restore.blobs)) throw new Error("a blob changed");
    writeFileSync(join(staging, "build.json"), restore.buildJson);
    await publish(staging, outDir);
    return true;
  } catch {
    await discard(staging);
    return false;
  }
}

/**
 * Restore out/ as the stamp's warm build writes it and print what that build
 * prints; undefined (run the build) when the store cannot vouch for it. The
 * caller has checked the inputs and the use record that names the blobs.
 */
export async function restoreFromStamp(
  restore: StampRestore,
  how: {
    json: boolean;
    quiet: boolean;
    started: number;
    restored: (outputs: HostInput[], blobs: Blob[]) => void;
    /** The store's directory. */
    store: string;
    /** The host files the build read: out/ must not hold any of them. */
    inputs: readonly string[];
    warnings?: StampedWarnings;
  },
  io: Pick<CliIo, "cwd" | "stdout" | "stderr" | "env">,
): Promise<number | undefined> {
  let blobs: ReturnType<typeof vouchedBlobs>;
  try {
    if (!unchanged(restore.beside)) return undefined;
    // Blobs an earlier boot left unsynced may have lost their bytes with their identity intact:
    // the build checks them when it opens the store (src/cache/unsynced.ts) before anything reads them.
    if (journalsOfEarlierBoot(how.store)) return undefined;
    blobs = vouchedBlobs(restore.blobs);
    if (blobs === undefined) return undefined;
    const built = (JSON.parse(restore.buildJson) as { fingerprint?: string }).fingerprint;
    if (built !== undefined && fingerprintIn(restore.result.outDir) === built) return undefined;
    // Not a directory a build wrote: the build refuses it, and says why (NIFTY217).
    const keep = [how.store, ...how.inputs].map((path) => ({ path, what: path }));
    if (outDirRefusal(restore.result.outDir, keep) !== undefined) return undefined;
  } catch {
    return undefined;
  }
  if (!(await restoreOutputs({ ...restore, blobs: blobs.now }))) return undefined;
  // As published: the next identical command finds them so, and answers up to date.
  const outputs = treeIdentities(restore.result.outDir);
  if (outputs !== undefined) how.restored(outputs, blobs.kept);
  if (!how.quiet) for (const event of restore.events) io.stderr.write(eventLine(event));
  await printStampedWarnings(how.warnings, io);
  const stages = [{ name: "restored", ms: Math.round((clockMs() - how.started) * 10) / 10 }];
  const diagnostics = how.json ? await diagnosticsJson(unstamped(how.warnings)) : [];
  io.stdout.write(resultText({ ...restore.result, stages }, io.cwd, how.json, undefined, diagnostics));
  return 0;
}
