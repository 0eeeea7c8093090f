// The hostile corpus's shared parts: a recipe directory in a temp dir, and a
// build through the library that returns either its result or the codes it
// failed with (anything else, an internal error, is thrown to the test).
import { execFile } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { build, type BuildOptions, type BuildResult } from "../../src/pipeline/build.ts";
import { BuildFailed } from "../../src/pipeline/failure.ts";
import type { Diagnostic } from "../../src/diagnostics/diagnostic.ts";

export const execFileP = promisify(execFile);

export async function tempDir(prefix = "niftyc-hostile-"): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export type Outcome = { ok: true; result: BuildResult } | { ok: false; errors: Diagnostic[] };

/** Build recipePath into outDir with its own cache unless one is given. */
export async function tryBuild(
  recipePath: string,
  dir: string,
  extra: Partial<BuildOptions> = {},
): Promise<Outcome> {
  try {
    const result = await build({
      recipePath,
      epoch: 0,
      cacheDir: extra.cacheDir ?? path.join(dir, "cache"),
      outDir: () => path.join(dir, "out"),
      now: new Date(0),
      mirrors: async () => ({}),
      formats: ["rootfs"],
      offline: true,
      ...extra,
    });
    return { ok: true, result };
  } catch (error) {
    if (error instanceof BuildFailed)
      return { ok: false, errors: error.diagnostics.filter((d) => d.severity === "error") };
    throw error;
  }
}

/** One member of a tar, as GNU tar lists and extracts it. */
export async function tarMember(
  tarball: string,
  member: string,
): Promise<{ type: string; bytes: Buffer } | undefined> {
  const { stdout } = await execFileP("tar", ["-tvf", tarball, member], {
    timeout: 20_000,
    killSignal: "SIGKILL",
  }).catch(() => ({ stdout: "" }));
  if (stdout === "") return undefined;
  const type = stdout[0]!;
  if (type !== "-") return { type, bytes: Buffer.alloc(0) };
  const { stdout: bytes } = await execFileP("tar", ["-xOf", tarball, member], {
    encoding: "buffer",
    timeout: 20_000,
    killSignal: "SIGKILL",
    maxBuffer: 1 << 26,
  });
  return { type, bytes };
}
