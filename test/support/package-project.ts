// A project that builds PACKAGE lines against the loopback archive of
// debian-archive.ts: a temporary directory whose app.nifty names the fixture's
// two signed suites (debian bookworm, debian-security bookworm-security) by its
// keyring, and the plain rootfs build of it. The recipe's first two lines are
// these ARCHIVE lines, which the line numbers tests expect in diagnostics count on.
import type { ExecutionContext } from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runMain, type Run } from "./cli.ts";
import { debianArchive, mirrorFlags, type ArchiveView, type DebianArchive } from "./debian-archive.ts";

/** The ARCHIVE lines of the fixture's two suites, each trusting the keys in `keyring`. */
export function twoSuiteArchives(keyring: string): string {
  return `ARCHIVE debian bookworm KEYRING ${keyring}\nARCHIVE debian-security bookworm-security KEYRING ${keyring}\n`;
}

/** A directory of its own (named `prefix`…), removed when the test ends. */
export function scratchDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A scratch directory holding app.nifty: the two suites' ARCHIVE lines, then `body`. */
export async function twoSuiteProject(
  t: ExecutionContext,
  prefix: string,
  body: string,
): Promise<{ dir: string; archive: DebianArchive }> {
  const archive = await debianArchive();
  const dir = scratchDir(t, prefix);
  writeFileSync(join(dir, "app.nifty"), `${twoSuiteArchives(archive.keyring)}${body}`);
  return { dir, archive };
}

/** `niftyc build app.nifty` in `dir` into the store c/ and the rootfs o/rootfs.tar, both suites from `view`. */
export function buildAppRootfs(dir: string, view: ArchiveView, ...extra: string[]): Promise<Run> {
  return runMain(
    [
      "build",
      "app.nifty",
      "--cache",
      "c",
      "--out",
      "o",
      "--format",
      "rootfs",
      ...mirrorFlags(view),
      ...extra,
    ],
    dir,
  );
}
