// Outputs appear under their final name complete or not at all: written in a
// staging path next to the target (same file system), then renamed.
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** A fresh staging directory beside `target`, mode 0755 (mkdtemp makes 0700). */
export async function stagingDir(target: string): Promise<string> {
  await mkdir(dirname(target), { recursive: true });
  const dir = await mkdtemp(join(dirname(target), `.${basename(target)}.staging-`));
  await chmod(dir, 0o755);
  return dir;
}

/** A staging file name beside `target` (not created). */
export async function stagingFile(target: string): Promise<string> {
  const dir = await stagingDir(target);
  return join(dir, basename(target));
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === "object" && error !== null && codes.includes((error as { code?: string }).code ?? "");
}

/**
 * Rename the finished directory `staged` to `target`. An existing target is
 * moved aside first and removed only after the new one is in place.
 */
export async function replaceDir(staged: string, target: string, replace: boolean): Promise<void> {
  try {
    await rename(staged, target);
    return;
  } catch (error) {
    if (!isCode(error, "ENOTEMPTY", "EEXIST") || !replace) throw error;
  }
  const old = await stagingDir(target);
  await rename(target, join(old, "old"));
  await rename(staged, target);
  await rm(old, { recursive: true, force: true });
}

/** Move a finished staging file into place (rename replaces atomically) and drop its staging directory. */
export async function commitFile(staged: string, target: string): Promise<void> {
  await rename(staged, target);
  await rm(dirname(staged), { recursive: true, force: true });
}

/** Write a small file atomically. */
export async function writeFileAtomic(target: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const staged = await stagingFile(target);
  try {
    await writeFile(staged, data);
    await chmod(staged, mode); // not left to the umask
    await commitFile(staged, target);
  } catch (error) {
    await rm(dirname(staged), { recursive: true, force: true });
    throw error;
  }
}

/** writeFile with the mode given, whatever the umask. */
export async function writeExact(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  await writeFile(path, data);
  await chmod(path, mode);
}
