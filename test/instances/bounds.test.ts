// What a user's flags may make `niftyc instances` do: write only under --root, and hold
// a bounded amount of --set values however many instances they are multiplied by.
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../boot/harness.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { planInstances } from "../../src/instances/plan.ts";
import { writeInstances } from "../../src/instances/write.ts";
import { runMain } from "../support/cli.ts";
import { buildDir, sshConfig, temp } from "./helpers.ts";

test("--root R --out /var/lib/../../../x is refused, and nothing is written outside R", async (t) => {
  const build = await buildDir(t);
  const parent = temp(t);
  const root = join(parent, "root");
  mkdirSync(root);
  const outside = "/var/lib/../../../escaped";
  const argv = [
    "instances",
    build.dir,
    "--root",
    root,
    "--count",
    "2",
    "--set",
    "PORT=2200+i",
    "--out",
    outside,
  ];
  const run = await runMain(argv, parent);
  t.is(run.code, 2, run.stderr);
  t.regex(run.stderr, /--out takes a plain path of that machine, without '\.\.' or '\.'/);
  t.false(existsSync(join(parent, "escaped")), "nothing at R/../escaped");
  t.false(existsSync(join(root, "escaped")));

  // niftyc install shares --root's paths: its --machines-dir cannot climb out either.
  const install = await runMain(
    ["install", build.dir, "--root", root, "--machines-dir", "/../machines"],
    parent,
  );
  t.is(install.code, 2, install.stderr);
  t.false(existsSync(join(parent, "machines")));

  // The library refuses it too, whoever calls it.
  const plan = planInstances({ config: sshConfig(), count: 1, sets: [] });
  const rootfsTar = join(build.dir, "rootfs.tar");
  const digest = build.digest;
  const writing = writeInstances({
    dir: outside,
    root,
    config: sshConfig(),
    plan,
    rootfsTar,
    digest,
    version: "test",
  });
  const refused = await t.throwsAsync(writing, { instanceOf: NiftyError });
  t.is(refused?.code, "NIFTY436");
  t.false(existsSync(join(parent, "escaped")));
});

test("100,000 instances of a 100 KB --set value: a clear error, not out of memory", async (t) => {
  const build = await buildDir(t);
  const cwd = temp(t);
  const value = `"${"x".repeat(100_000)}{i}"`;
  // A heap of 512 MB: the plan alone would need 10 GB before the values were bounded.
  const sets = ["--set", `GREETING=${value}`, "--set", "PORT=0+i"];
  const argv = ["instances", build.dir, "--count", "100000", ...sets, "--out", "fleet"];
  const env = { ...process.env, NODE_OPTIONS: "--max-old-space-size=512" };
  const run = spawnSync(process.execPath, [join(ROOT, "bin", "niftyc"), ...argv], {
    cwd,
    encoding: "utf8",
    env,
    timeout: 300_000,
    killSignal: "SIGKILL",
  });
  t.is(run.status, 1, `${run.signal ?? ""} ${run.stderr.slice(-2000)}`);
  t.regex(run.stderr, /--set: the values of 100000 instances come to over 64 MiB characters .*\[NIFTY435\]/s);
  t.false(existsSync(join(cwd, "fleet")), "nothing written");
});
