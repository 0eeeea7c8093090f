// Ctrl-C while an output is being assembled: the staging directory beside the target goes with
// the process, which still dies of the signal (a shell sees 130), and nothing is published.
import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout } from "node:timers/promises";
import { packRootfsTar } from "../support/rootfs-tar.ts";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");

/** A build directory whose rootfs.tar takes a while to unpack. */
function bigBuild(dir: string): string {
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "etc"), { recursive: true });
  writeFileSync(join(tree, "etc", "os-release"), "ID=x\n");
  for (let i = 0; i < 8; i++) writeFileSync(join(tree, `blob${i}`), Buffer.alloc(32 << 20, i + 1));
  const build = join(dir, "out");
  packRootfsTar(build, tree);
  rmSync(tree, { recursive: true });
  writeFileSync(
    join(build, "build.json"),
    JSON.stringify({ name: "x", digest: "sha256:00", config: { name: "x" } }),
  );
  writeFileSync(join(build, "x.nspawn"), "[Exec]\nBoot=yes\n");
  return build;
}

test("install interrupted while it unpacks: the staging tree is removed, and the process dies of SIGINT", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-interrupt-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const build = bigBuild(dir);
  const root = join(dir, "host");
  mkdirSync(root);
  const machines = join(root, "var/lib/machines");
  const child = spawn(process.execPath, [NIFTYC, "install", build, "--root", root], { stdio: "ignore" });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? code)),
  );
  const staging = () =>
    existsSync(machines) ? readdirSync(machines).filter((n) => n.includes(".staging-")) : [];
  // Interrupted once the unpacking has begun.
  let seen = false;
  for (let i = 0; i < 3000 && !seen && child.exitCode === null; i++) {
    seen = staging().length > 0;
    if (!seen) await setTimeout(5);
  }
  t.true(seen, "the staging directory appeared before install ended");
  child.kill("SIGINT");
  t.is(await exited, "SIGINT");
  t.deepEqual(staging(), [], "nothing of the staging tree is left");
  t.false(existsSync(join(machines, "x")), "nothing was published");
});
