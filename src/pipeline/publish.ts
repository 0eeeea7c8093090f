// Outputs are assembled in a staging directory beside the destination and
// swapped in whole at the end: a failed or killed build never leaves a
// half-written output directory under its final name.
import { mkdir, mkdtemp, readdir, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Staging names carry the builder's PID, so what a killed build left can be told apart and swept. */
export async function createStaging(outDir: string): Promise<string> {
  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  await sweepAbandoned(parent, basename(outDir));
  return mkdtemp(join(parent, `.${basename(outDir)}.staging-${process.pid}-`));
}

/** Remove staging directories (and their .old swaps) of builds whose process is gone. */
async function sweepAbandoned(parent: string, name: string): Promise<void> {
  const prefix = `.${name}.staging-`;
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(entry.slice(prefix.length))?.[1]);
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) await rm(join(parent, entry), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function publish(staging: string, outDir: string): Promise<void> {
  // Another build may publish the same directory between our two renames;
  // then its result is moved aside too and ours goes in (bounded retries).
  const olds: string[] = [];
  try {
    for (let attempt = 0; ; attempt++) {
      const old = `${staging}.old${attempt}`;
      try {
        await rename(outDir, old);
        olds.push(old);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
      try {
        await rename(staging, outDir);
        return;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== "ENOTEMPTY" && code !== "EEXIST") || attempt >= 10) throw error;
      }
    }
  } finally {
    for (const old of olds) await rm(old, { recursive: true, force: true });
  }
}

export async function discard(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true });
}
