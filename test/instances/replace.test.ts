// --replace while machines still run from the shared tree: `systemctl stop <name>.target` returns
// before its instances have shut down, so a script that stops and replaces back to back races them.
// A real systemd-nspawn on the instances' tree holds its lock, as an instance booted by the
// template would; --replace waits for it to exit, or refuses when it does not (NIFTY440).
import test, { type ExecutionContext } from "ava";
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { planInstances } from "../../src/instances/plan.ts";
import { treeHolders, writeInstances } from "../../src/instances/write.ts";
import { requireBoot } from "../boot/harness.ts";
import { packRootfs, sshConfig, temp } from "./helpers.ts";

/** A build directory whose tree boots a command under nspawn: the host's static BusyBox. */
async function bootableBuild(t: ExecutionContext, marker: string): Promise<{ dir: string; digest: string }> {
  const dir = temp(t);
  const tree = join(dir, "tree");
  for (const d of ["etc", "bin", "usr", "proc", "sys", "dev", "run", "tmp"])
    mkdirSync(join(tree, d), { recursive: true });
  writeFileSync(join(tree, "etc", "os-release"), `ID=${marker}\n`);
  copyFileSync("/bin/busybox", join(tree, "bin", "busybox"));
  execFileSync("chmod", ["0755", join(tree, "bin", "busybox")]);
  return { dir, digest: await packRootfs(dir, tree) };
}

/** systemd-nspawn running `sleep seconds` on the instances' tree, as the template runs an instance. */
function machine(
  t: ExecutionContext,
  tree: string,
  name: string,
  seconds: number,
): { exited: () => boolean } {
  let exited = false;
  const script = 'mount -t tmpfs tmpfs /run && exec systemd-nspawn "$@"';
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      "--register=no",
      "--keep-unit",
      `--machine=${name}`,
      "--quiet",
      "--console=pipe",
      "--volatile=overlay",
      "-D",
      tree,
      "--",
      "/bin/busybox",
      "sleep",
      String(seconds),
    ],
    { stdio: "ignore", detached: true },
  );
  child.once("exit", () => (exited = true));
  t.teardown(() => {
    if (exited) return;
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // Gone.
    }
  });
  return { exited: () => exited };
}

async function untilHeld(tree: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await treeHolders(tree)) > 0) return;
    await sleep(50);
  }
  throw new Error(`no nspawn took the lock of ${tree}`);
}

const plan = () => planInstances({ config: sshConfig(), count: 2, sets: [{ name: "PORT", expr: "2200+i" }] });

test.serial(
  "--replace waits for machines still running from the shared tree, then replaces it; refuses with NIFTY440 if they do not stop",
  async (t) => {
    if (!requireBoot(t)) return;
    t.timeout(180_000);
    const one = await bootableBuild(t, "one");
    const two = await bootableBuild(t, "two");
    const dir = join(temp(t), "fleet");
    const tree = join(dir, "rootfs");
    const write = (build: { dir: string; digest: string }, stopWaitMs?: number) =>
      writeInstances({
        dir,
        config: sshConfig(),
        plan: plan(),
        rootfsTar: join(build.dir, "rootfs.tar"),
        digest: build.digest,
        version: "test",
        replace: true,
        ...(stopWaitMs ? { stopWaitMs } : {}),
      });
    await write(one);
    t.is(await treeHolders(tree), 0, "nothing runs yet");

    // Still shutting down when --replace starts: it waits, and only then swaps the tree.
    const stopping = machine(t, tree, `replace-wait-${process.pid}`, 3);
    await untilHeld(tree);
    t.is(await treeHolders(tree), 1);
    await write(two, 60_000);
    t.true(stopping.exited(), "the tree was replaced only after the machine running from it had exited");
    t.is(readFileSync(join(tree, "etc", "os-release"), "utf8"), "ID=two\n");

    // One that does not stop: refused, the tree left as it was.
    const running = machine(t, tree, `replace-stuck-${process.pid}`, 600);
    await untilHeld(tree);
    const refused = await t.throwsAsync(write(one, 500), { instanceOf: NiftyError });
    t.is(refused?.code, "NIFTY440");
    t.regex(refused!.message, /1 machine still runs from .*\/rootfs after 0\.5 s/);
    t.regex(refused!.hint!, /systemctl stop ssh\.target/);
    t.false(running.exited());
    t.is(readFileSync(join(tree, "etc", "os-release"), "utf8"), "ID=two\n", "nothing changed");
  },
);
