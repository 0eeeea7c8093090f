// The unpack cache: one tree per rootfs digest, unpacked once and then only
// read. Every run boots it as the lower layer of an overlay (nspawn, podman)
// or from a throw-away copy (bwrap), so nothing a container writes reaches it.
// A tree appears under its final name whole or not at all: it is unpacked in a
// staging directory beside it and renamed into place.
import { chmod, lstat, mkdir, rename, rm, stat } from "node:fs/promises";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { stagingDir } from "../core/atomic.ts";
import { fileDigest } from "../core/hash.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { privateDir, unpackRootfs } from "../emit/unpack.ts";
import { syncPath, syncTree } from "../instances/write.ts";
import { inUserNamespace, type Privilege } from "./privilege.ts";

export interface TreeInput {
  /** The unpack cache directory (one subdirectory per digest). */
  base: string;
  rootfsTar: string;
  /** "sha256:<hex>" the build recorded for rootfsTar. */
  digest: string;
  privilege: Privilege;
}

export function treePath(base: string, digest: string): string {
  return join(base, digest.replace(/^sha256:/, ""));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The cached tree for `digest`, unpacked first if no earlier run did. */
export async function ensureTree(input: TreeInput): Promise<{ dir: string; unpacked: boolean }> {
  const dir = treePath(input.base, input.digest);
  // Before a tree is looked for: one kept by an older niftyc under an open directory is closed too.
  await privateDir(input.base);
  if (await exists(dir)) return { dir, unpacked: false };
  const actual = await fileDigest(input.rootfsTar);
  if (actual !== input.digest) {
    throw new NiftyError(
      "NIFTY750",
      `${input.rootfsTar} is ${actual}, but the build recorded ${input.digest}`,
      "the build directory changed after the build: build again",
    );
  }
  if (input.privilege.root) await unpackInto(input.rootfsTar, dir);
  else await unpackUnprivileged(input.rootfsTar, dir, input.privilege);
  return { dir, unpacked: true };
}

/**
 * Unpack beside `target` and rename it into place. Another run that finished
 * first wins: its tree is the same bytes, and ours is dropped.
 */
export async function unpackInto(rootfsTar: string, target: string): Promise<void> {
  const staging = await stagingDir(target);
  try {
    await unpackRootfs(rootfsTar, join(staging, "rootfs"));
    await ensureUsr(join(staging, "rootfs"));
    // Synced before the rename: after a crash the tree is whole or absent.
    await syncTree(join(staging, "rootfs"));
    try {
      await rename(join(staging, "rootfs"), target);
      await syncPath(dirname(target));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * systemd-nspawn refuses to run a command in a tree without /usr ("doesn't look like it has an
 * OS tree"), which BusyBox images need not have: such a tree gets an empty one (root, 0755).
 * It is the only difference between a cached tree and the image.
 */
async function ensureUsr(root: string): Promise<void> {
  try {
    await lstat(join(root, "usr"));
  } catch {
    await mkdir(join(root, "usr"), { mode: 0o755 });
    await chmod(join(root, "usr"), 0o755);
  }
}

/**
 * As an ordinary user the tree is unpacked inside a user namespace that maps
 * root to the user and 1…65535 to the user's /etc/subuid range (the mapping
 * rootless podman uses too), so the image's owners stay distinct: luser's
 * files belong to luser inside every run.
 */
async function unpackUnprivileged(rootfsTar: string, target: string, privilege: Privilege): Promise<void> {
  const argv = inUserNamespace(privilege, [
    process.execPath,
    join(import.meta.dirname, "unpack-main.ts"),
    rootfsTar,
    target,
  ]);
  const result = await new Promise<{ code: number | null; stderr: string }>((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", fail);
    child.once("close", (code) => done({ code, stderr }));
  });
  if (result.code !== 0) {
    const refused = /\[(NIFTY5\d\d)\]/.exec(result.stderr);
    throw new NiftyError(
      "NIFTY751",
      `unpacking ${rootfsTar} in a user namespace failed${refused ? "" : ` (exit ${result.code})`}: ${result.stderr.trim().split("\n").slice(-3).join(" ")}`,
      "the user needs a range in /etc/subuid and /etc/subgid and the newuidmap tool (package uidmap)",
    );
  }
}

/** Remove a tree or copy whose files may belong to mapped ids (only the namespace's root can). */
export function removeArgv(privilege: Privilege, path: string): string[] {
  return inUserNamespace(privilege, ["rm", "-rf", "--one-file-system", "--", path]);
}
