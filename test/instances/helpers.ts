// The image config of recipes/ssh.nifty, with one more numeric and one text ENV, a small build
// directory to make instances of, and the niftyc CLI with a recipe built by it.
import type { ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileDigest } from "../../src/core/hash.ts";
import type { ImageConfig } from "../../src/image/config.ts";
import { packRootfsTar } from "../support/rootfs-tar.ts";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");

/** The niftyc CLI in a child process, in `cwd`. */
export function niftyc(cwd: string, ...args: string[]) {
  return spawnSync(process.execPath, [NIFTYC, ...args], { cwd, encoding: "utf8", timeout: 120_000 });
}

export function sshConfig(overrides: Partial<ImageConfig> = {}): ImageConfig {
  return {
    name: "ssh",
    env: [
      ["PORT", "2200"],
      ["WORKERS", "4"],
      ["GREETING", "hello"],
    ],
    hostname: "nifty",
    exposedPorts: [{ port: 2200, protocol: "tcp" }],
    binds: [{ readOnly: true, hostPath: "/usr/share/zoneinfo", containerPath: "/usr/share/zoneinfo" }],
    labels: [],
    stopSignal: { name: "SIGUSR2", number: 12, source: "recipe" },
    init: { kind: "busybox", command: ["/sbin/init"] },
    architecture: "amd64",
    os: "linux",
    created: 0,
    ...overrides,
  };
}

export function temp(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-instances-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `tree` as dir/rootfs.tar, packed by GNU tar the reproducible way (sorted, root-owned, mtime 0); its digest. */
export function packRootfs(dir: string, tree: string): Promise<string> {
  packRootfsTar(dir, tree);
  return fileDigest(join(dir, "rootfs.tar"));
}

/** A small build directory: a rootfs.tar made by GNU tar, and its build.json. */
export async function buildDir(
  t: ExecutionContext,
  marker = "one",
): Promise<{ dir: string; digest: string }> {
  const dir = temp(t);
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "etc"), { recursive: true });
  mkdirSync(join(tree, "bin"));
  writeFileSync(join(tree, "etc", "os-release"), `ID=${marker}\n`);
  writeFileSync(join(tree, "bin", "busybox"), "not really\n", { mode: 0o755 });
  const digest = await packRootfs(dir, tree);
  writeFileSync(join(dir, "build.json"), JSON.stringify({ name: "ssh", digest, config: sshConfig() }));
  return { dir, digest };
}

/**
 * A temporary directory holding `recipe` as box.nifty, built there by niftyc (cache c) into `out`
 * as rootfs and nspawn, with `extra` arguments; the directory and the build's result.
 */
export function buildBox(t: ExecutionContext, recipe: string, out: string, ...extra: string[]) {
  const dir = temp(t);
  writeFileSync(join(dir, "box.nifty"), recipe);
  const built = niftyc(
    dir,
    "build",
    "box.nifty",
    "--cache",
    "c",
    "--out",
    out,
    "--format",
    "rootfs,nspawn",
    ...extra,
  );
  return { dir, built };
}
