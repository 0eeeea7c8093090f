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
  const old = `${staging}.old`;
  let moved = false;
  try {
    await rename(outDir, old);
    moved = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await rename(staging, outDir);
  if (moved) await rm(old, { recursive: true, force: true });
}

export async function discard(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true });
}
