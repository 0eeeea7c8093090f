// Outputs are assembled in a staging directory beside the destination and
// swapped in whole at the end: a failed or killed build never leaves a
// half-written output directory under its final name.
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export async function createStaging(outDir: string): Promise<string> {
  await mkdir(dirname(outDir), { recursive: true });
  return mkdtemp(join(dirname(outDir), `.${basename(outDir)}.staging-`));
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
