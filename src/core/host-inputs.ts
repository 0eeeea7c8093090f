// What a build read from the build host (the recipe, its lock, COPY sources,
// secret files) and how each was when read: device, inode, mode, size, mtime
// and ctime, the way make and ninja know an input is unchanged without
// reading it. A later run that finds every input as recorded may skip the
// build (src/cli/build-stamp.ts). Identities only: never a byte of content.
import type { BigIntStats } from "node:fs";

// Taken with process.getBuiltinModule, not imported: this module is on the
// up-to-date short cut, and an ESM import of node:fs builds its namespace from
// every export, fs.promises and the streams included (8 ms of a 40 ms budget).
const { readdirSync, realpathSync, statSync } = process.getBuiltinModule("node:fs");
const { join } = process.getBuiltinModule("node:path");

export type HostInput =
  /** A file or directory, as stat(2) saw it (a directory's mtime moves when an entry is added, removed or renamed). */
  | { path: string; identity: string }
  /** Looked for and not there. */
  | { path: string; absent: true }
  /** A path that led, through symbolic links, to `realpath`. */
  | { path: string; realpath: string };

export function identityOf(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}:${stats.mode}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

/**
 * A store blob's identity: what changes when its bytes or mode do. Not its
 * ctime, which a hard link to it moves (a copy of the store made with
 * `cp -al` is still the same blob).
 */
export function blobIdentityOf(stats: BigIntStats): string {
  return `${stats.dev}:${stats.ino}:${stats.mode}:${stats.size}:${stats.mtimeNs}`;
}

/**
 * A file changed this close before it was read may change again within the
 * same tick of the file system's clock and keep its timestamps (git's "racily
 * clean" entries); a build that read one is not recorded.
 */
const RACY_NS = 1_000_000_000n;

/** Whether a timestamp (in ns) is within RACY_NS of now: what it stamps may change again unseen. */
export function racy(timeNs: bigint): boolean {
  return timeNs > BigInt(Date.now()) * 1_000_000n - RACY_NS;
}

/** The inputs of one build, as its readers report them. */
export class HostInputs {
  #inputs = new Map<string, HostInput>();
  #untrusted: string | undefined;

  /** `stats` taken from the open descriptor before its content was read. */
  file(path: string, stats: BigIntStats): void {
    if (racy(stats.ctimeNs)) this.distrust(`${path} changed less than a second before it was read`);
    this.#add(`stat ${path}`, { path, identity: identityOf(stats) });
  }

  absent(path: string): void {
    this.#add(`stat ${path}`, { path, absent: true });
  }

  resolved(path: string, realpath: string): void {
    this.#add(`realpath ${path}`, { path, realpath });
  }

  /** Something the build read cannot be recorded (a secret from the environment, a recipe on standard input). */
  distrust(why: string): void {
    this.#untrusted ??= why;
  }

  /** Why this build may not be recalled, or undefined. */
  get untrusted(): string | undefined {
    return this.#untrusted;
  }

  /** Every input, in the order first read; undefined when the build may not be recalled. */
  list(): HostInput[] | undefined {
    return this.#untrusted === undefined ? [...this.#inputs.values()] : undefined;
  }

  #add(key: string, input: HostInput): void {
    const previous = this.#inputs.get(key);
    // Read twice in one build and seen differently: it changed while the build ran.
    if (previous !== undefined && JSON.stringify(previous) !== JSON.stringify(input))
      this.distrust(`${input.path} changed while the build read it`);
    this.#inputs.set(key, input);
  }
}

/** Whether every input is still as recorded (synchronous: a handful of stat calls beat the thread pool's round trips). */
export function unchanged(inputs: readonly HostInput[]): boolean {
  for (const input of inputs) {
    try {
      if ("realpath" in input) {
        if (realpathSync(input.path) !== input.realpath) return false;
        continue;
      }
      const stats = statSync(input.path, { bigint: true, throwIfNoEntry: false });
      if (
        stats === undefined
          ? !("absent" in input)
          : !("identity" in input) || identityOf(stats) !== input.identity
      )
        return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Every file and directory below `dir`, and itself, as stat sees them now; undefined when `dir` is not a readable directory. */
export function treeIdentities(dir: string): HostInput[] | undefined {
  try {
    const found: HostInput[] = [{ path: dir, identity: identityOf(statSync(dir, { bigint: true })) }];
    for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      const path = join(entry.parentPath, entry.name);
      const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
      found.push(stats === undefined ? { path, absent: true } : { path, identity: identityOf(stats) });
    }
    return found;
  } catch {
    return undefined;
  }
}
