// The one way niftyc puts files and directories under their final names:
// assembled in a staging path beside the target (same file system), then
// renamed. A failed or killed run never leaves a half-written output, and the
// staging names carry the writer's PID so what a killed run left is swept.
import { chmod, mkdir, mkdtemp, open, readdir, rename, rm, writeFile } from "node:fs/promises";
import { rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isCode, processAlive } from "./process.ts";

/** A fresh staging directory beside `target` (mode 0700, as mkdtemp makes it), after sweeping abandoned ones. */
export async function createStaging(target: string): Promise<string> {
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  await sweepAbandoned(parent, basename(target));
  const dir = await mkdtemp(join(parent, `.${basename(target)}.staging-${process.pid}-`));
  removedOnInterrupt(dir);
  return dir;
}

/** Every staging directory this process made; those still there when it is interrupted go. */
const staged = new Set<string>();
let watching = false;

/**
 * Ctrl-C, SIGTERM or SIGHUP while a staging directory is being filled (an unpacked machine is
 * tens of megabytes): it is removed, then the signal takes its course, unless another part of
 * niftyc listens for it too (niftyc run passes it to its container) and decides.
 */
function removedOnInterrupt(dir: string): void {
  if (!watching)
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      const onSignal = (): void => {
        // A path published since is gone from here already: nothing to remove.
        for (const path of staged) rmSync(path, { recursive: true, force: true });
        staged.clear();
        if (process.listenerCount(signal) > 1) return;
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      };
      process.on(signal, onSignal);
      watching = true;
    }
  staged.add(dir);
}

/** A staging directory that becomes the target itself: mode 0755. */
export async function stagingDir(target: string): Promise<string> {
  const dir = await createStaging(target);
  await chmod(dir, 0o755);
  return dir;
}

/** A staging file name beside `target` (not created). */
export async function stagingFile(target: string): Promise<string> {
  return join(await createStaging(target), basename(target));
}

/** Remove staging directories (and their .old swaps) of runs whose process is gone. */
async function sweepAbandoned(parent: string, name: string): Promise<void> {
  const prefix = `.${name}.staging-`;
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(entry.slice(prefix.length))?.[1]);
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid))
      await rm(join(parent, entry), { recursive: true, force: true });
  }
}

/**
 * Put the finished directory `staging` in place of `target`. An existing
 * target is moved aside first and removed only once the new one is in; if
 * another run publishes in between, its result is moved aside too (bounded).
 */
export async function publish(staging: string, target: string): Promise<void> {
  const olds: string[] = [];
  try {
    for (let attempt = 0; ; attempt++) {
      const old = `${staging}.old${attempt}`;
      try {
        await rename(target, old);
        olds.push(old);
      } catch (error) {
        if (!isCode(error, "ENOENT")) throw error;
      }
      try {
        await rename(staging, target);
        return;
      } catch (error) {
        if (!isCode(error, "ENOTEMPTY", "EEXIST") || attempt >= 10) throw error;
      }
    }
  } finally {
    for (const old of olds) await rm(old, { recursive: true, force: true });
  }
}

/** Like publish, but refuses to replace an existing target unless `replace`. */
export async function replaceDir(staged: string, target: string, replace: boolean): Promise<void> {
  if (replace) return publish(staged, target);
  await rename(staged, target);
}

export async function discard(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true });
}

/** Move a finished staging file into place (rename replaces atomically) and drop its staging directory. */
export async function commitFile(staged: string, target: string): Promise<void> {
  await rename(staged, target);
  await rm(dirname(staged), { recursive: true, force: true });
}

/**
 * Write a whole small file atomically, synced before the rename. `tempPath`
 * names the temp file (the store keeps its own in cache/tmp); by default it
 * goes in a staging directory beside the target.
 */
export async function writeFileAtomic(
  target: string,
  data: string | Uint8Array,
  options: { mode?: number; tempPath?: string } = {},
): Promise<void> {
  const temp = options.tempPath ?? (await stagingFile(target));
  try {
    const fh = await open(temp, "wx", options.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.chmod(options.mode ?? 0o644); // not left to the umask
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, target);
  } finally {
    await rm(options.tempPath ?? dirname(temp), { recursive: true, force: true });
  }
}

/** writeFile with the mode given, whatever the umask. */
export async function writeExact(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await writeFile(path, data);
  await chmod(path, mode);
}
