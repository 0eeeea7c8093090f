// The up-to-date short cut. A `niftyc build` with reproducible outputs leaves
// a stamp in the store (stamps/<hash>.json), keyed by the command line, the
// working directory and the environment a build reads: what it read from the
// host and how each file was (src/core/host-inputs.ts), every file of its
// output directory as it was, and what the build prints when up to date. The
// same command run again finds every one of them unchanged and prints that
// answer without loading the compiler; bin/niftyc tries this first. When
// only the output directory is gone or changed, the stamp restores it from
// the store as a warm build would (src/cli/build-restore.ts).
// Anything else (a changed input or output, no stamp, other flags or
// environment) runs the build, which checks for itself.
import { NIFTYC_VERSION } from "../core/version.ts";
import { maskCredentials } from "../diagnostics/escape.ts";
import { clockMs } from "../core/clock.ts";
import { USE_REFRESH_MS } from "../cache/records.ts";
import { unchanged, type HostInput, type HostInputs } from "../core/host-inputs.ts";
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
import type { Diagnostic } from "../diagnostics/diagnostic.ts";
import type { BuildResult } from "../pipeline/types.ts";
import type { StampRestore } from "./build-restore.ts";

// Builtins through process.getBuiltinModule, as in src/core/host-inputs.ts: an
// ESM import of node:fs costs more than all the rest of the short cut.
const { readFileSync, renameSync, writeFileSync } = process.getBuiltinModule("node:fs");
const { dirname, join, resolve } = process.getBuiltinModule("node:path");

const STAMP_FORMAT = 5; // 5: the warnings the build printed; 4: a use record per platform, and what restores the outputs; 2: stamps of open bundles (before they were 0700) no longer answer

interface Stamp {
  format: number;
  /** The command line, working directory and environment it answers, compared whole but for the credentials in URLs, starred out (the file name is a hash of it all). */
  invocation: string;
  json: boolean;
  quiet: boolean;
  inputs: HostInput[];
  /** Every file and directory of the output directory. */
  outputs: HostInput[];
  /**
   * The store's use records the build refreshed (one per platform built): past its hour, the build
   * runs, to refresh them so gc keeps the blobs.
   */
  useRecords: string[];
  events: ReportEvent[];
  /** The warnings the build printed (the recipe's text once), printed again, coloured as the terminal now wants. */
  warnings?: StampedWarnings;
  result: Omit<ReportedResult, "stages">;
  restore?: StampRestore;
}

/** A build's warnings as a stamp keeps them; undefined when one has a source other than the recipe's. */
function stampedWarnings(warnings: readonly Diagnostic[]): StampedWarnings | undefined {
  const source = warnings.find((w) => w.source !== undefined)?.source;
  const each: StampedWarnings["each"] = [];
  for (const { source: from, ...rest } of warnings) {
    if (from === undefined) each.push(rest);
    else if (from.path === source!.path && from.text === source!.text) each.push({ ...rest, inRecipe: true });
    else return undefined;
  }
  return source === undefined ? { each } : { source, each };
}

/**
 * The command line, working directory and the environment a build reads
 * (src/cli/common.ts), as one string. NO_COLOR and TERM are left out: they
 * colour only diagnostics, which a stamp prints afresh (printStampedWarnings).
 */
function invocationOf(args: readonly string[], io: Pick<CliIo, "env" | "cwd">): string {
  const env = Object.entries(io.env)
    .filter(([k]) => k === "SOURCE_DATE_EPOCH" || k === "NIFTY_CACHE" || k.startsWith("NIFTY_MIRROR_"))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([STAMP_FORMAT, NIFTYC_VERSION, io.cwd, args, env]);
}

/**
 * Where the stamps of a command line are: in the store, found as the build
 * finds it, from --cache, NIFTY_CACHE or ./cache (the last --cache wins, as in
 * parseArgs). A stamp is written only where this agrees with the build's own
 * parse, and answers only the exact invocation it holds.
 */
function stampsDir(args: readonly string[], io: Pick<CliIo, "env" | "cwd">): string {
  let cache = io.env.NIFTY_CACHE ?? "cache";
  for (const [i, arg] of args.entries()) {
    if (arg === "--") break;
    if (arg === "--cache" && i + 1 < args.length) cache = args[i + 1]!;
    else if (arg.startsWith("--cache=")) cache = arg.slice("--cache=".length);
  }
  return join(resolve(io.cwd, cache), "stamps");
}

/** A file name for a string: two 32-bit FNV-1a hashes (node:crypto alone would take 10 ms to load; the stamp is compared whole). */
function nameHash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193) >>> 0;
    b = (b ^ (b >>> 15)) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/** A use record's digests, when it was used within the hour (read as Store.recordUse reads it: the time it holds, not the file's). */
function freshUseRecord(file: string): Set<string> | undefined {
  const record = JSON.parse(readFileSync(file, "utf8")) as { lastUsed: string; digests: string[] };
  const age = Date.now() - Date.parse(record.lastUsed);
  return age >= 0 && age < USE_REFRESH_MS ? new Set(record.digests) : undefined;
}

/**
 * Answer `niftyc build ARGS` from its stamp: the exit status when every input
 * and output is as recorded, or when only the outputs changed and they are
 * restored from the store; else undefined (run the build).
 */
export function upToDateFromStamp(
  args: readonly string[],
  io: Pick<CliIo, "env" | "cwd" | "stdout" | "stderr">,
): number | undefined | Promise<number | undefined> {
  const started = clockMs();
  const invocation = invocationOf(args, io);
  const file = join(stampsDir(args, io), `${nameHash(invocation)}.json`);
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(file, "utf8")) as Stamp;
    if (stamp.format !== STAMP_FORMAT || stamp.invocation !== maskCredentials(invocation)) return undefined;
    const used = stamp.useRecords.map(freshUseRecord);
    if (used.includes(undefined) || !unchanged(stamp.inputs)) return undefined;
    // The directories' identities cover entries added since.
    if (!unchanged(stamp.outputs)) {
      // Given for one platform's build only: its use record names every blob out/ is copied from.
      const restore = stamp.restore;
      const named = used[0]!;
      if (restore === undefined || !restore.blobs.every((b) => named.has(b.digest))) return undefined;
      const { json, quiet } = stamp;
      const restored = (outputs: HostInput[], blobs: StampRestore["blobs"]) =>
        rewriteStamp(file, { ...stamp, outputs, restore: { ...restore, blobs } });
      const store = dirname(dirname(file));
      const warnings = stamp.warnings;
      // The build's own files (the recipe, its lock, COPY sources) are never in what out/ replaces.
      const inputs = stamp.inputs.filter((i) => !("absent" in i)).map((i) => i.path);
      return import("./build-restore.ts").then((m) =>
        m.restoreFromStamp(restore, { json, quiet, started, restored, store, warnings, inputs }, io),
      );
    }
  } catch {
    return undefined;
  }
  if (!stamp.quiet) for (const event of stamp.events) io.stderr.write(eventLine(event));
  const answer = async (): Promise<number> => {
    const stages = [{ name: "up to date", ms: Math.round((clockMs() - started) * 10) / 10 }];
    const diagnostics = stamp.json ? await diagnosticsJson(unstamped(stamp.warnings)) : [];
    io.stdout.write(resultText({ ...stamp.result, stages }, io.cwd, stamp.json, undefined, diagnostics));
    return 0;
  };
  // Only a build that warned loads the diagnostics' printer.
  return stamp.warnings === undefined ? answer() : printStampedWarnings(stamp.warnings, io).then(answer);
}

/**
 * The stamp again, once its outputs were restored: the next identical command finds them so.
 * Not synced, as a hint may be lost; written in the store's tmp/ as its writers write theirs,
 * so gc sweeps what a killed run left.
 */
function rewriteStamp(file: string, stamp: Stamp): void {
  const temp = join(
    dirname(dirname(file)),
    "tmp",
    `${process.pid}-${Math.random().toString(16).slice(2)}.json`,
  );
  try {
    writeFileSync(temp, JSON.stringify(stamp) + "\n");
    renameSync(temp, file);
  } catch {
    // A store this user may read but not write: the next build restores again.
  }
}

/** What a build leaves for the next identical command. */
export interface StampInput {
  args: readonly string[];
  io: Pick<CliIo, "env" | "cwd">;
  /** The store the build used. */
  cacheDir: string;
  /** The parsed command line: only a plain build is answered from a stamp. */
  values: { json?: unknown; quiet?: unknown; push?: unknown; "cache-to"?: unknown; "cache-from"?: unknown };
  inputs: HostInputs;
  recall: NonNullable<BuildResult["recall"]>;
  events: ReportEvent[];
  /** What the build warned about: printed again by the stamp. */
  warnings: readonly Diagnostic[];
  result: Omit<ReportedResult, "stages">;
  /** What a warm build prints, when recall holds what restores out/. */
  restore?: { events: ReportEvent[]; result: Omit<ReportedResult, "stages"> };
}

/**
 * Leave the stamp. None for a build whose inputs cannot all be recorded, or
 * that pushes or shares its cache (each run talks to the registry); an older
 * stamp of the same command line is then removed.
 */
export async function writeStamp(input: StampInput): Promise<void> {
  const { rm, mkdir } = await import("node:fs/promises");
  const { writeFileAtomic } = await import("../core/atomic.ts");
  const invocation = invocationOf(input.args, input.io);
  const dir = stampsDir(input.args, input.io);
  if (dir !== join(input.cacheDir, "stamps")) return;
  const file = join(dir, `${nameHash(invocation)}.json`);
  const inputs = input.inputs.list();
  const { values } = input;
  const warnings = stampedWarnings(input.warnings);
  if (
    inputs === undefined ||
    warnings === undefined ||
    values.push !== undefined ||
    values["cache-to"] !== undefined ||
    values["cache-from"] !== undefined
  ) {
    await rm(file, { force: true }).catch(() => {});
    return;
  }
  const stamp: Stamp = {
    format: STAMP_FORMAT,
    invocation,
    json: values.json === true,
    quiet: values.quiet === true,
    inputs,
    outputs: input.recall.outputs,
    useRecords: [...new Set([input.recall.useRecord, ...(input.recall.otherUseRecords ?? [])])],
    events: input.events,
    ...(warnings.each.length > 0 ? { warnings } : {}),
    result: input.result,
  };
  const restore = input.recall.restore;
  if (restore !== undefined && input.restore !== undefined) {
    const { stepNotes: _, ...files } = restore;
    stamp.restore = { ...files, ...input.restore };
  }
  try {
    await mkdir(dir, { recursive: true });
    // Starred out: the store is read by whoever shares it, and a mirror's password (--mirror,
    // NIFTY_MIRROR_*) is not theirs. The file's name still hashes the whole invocation.
    await writeFileAtomic(file, maskCredentials(JSON.stringify(stamp)) + "\n");
  } catch {
    // A store this user may read but not write (a shared one): the next build runs in full, as without stamps.
  }
}
