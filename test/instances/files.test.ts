// What `niftyc instances` writes: the unit, target, env file and manifest as
// text; systemd-analyze accepts them; the shared tree is kept per digest and
// never clobbered; and the command line through main() with fake streams.
import test from "ava";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";
import { INSTANCES_HELP } from "../../src/cli/instances.ts";
import type { CliIo } from "../../src/cli/io.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { instanceCommand } from "../../src/instances/exec.ts";
import { planInstances } from "../../src/instances/plan.ts";
import { renderInstanceUnit, renderInstancesEnv, renderTarget } from "../../src/instances/render.ts";
import { writeInstances } from "../../src/instances/write.ts";
import { buildDir, sshConfig, temp } from "./helpers.ts";

const PLAN = () =>
  planInstances({ config: sshConfig(), count: 3, first: 7, sets: [{ name: "PORT", expr: "2200+i" }] });

test("the template boots <dir>/rootfs with a private overlay, reads <dir>/systemd/instances.env and is part of <name>.target", (t) => {
  const unit = renderInstanceUnit(sshConfig(), "/srv/fleet");
  t.regex(unit, /^PartOf=machines\.target\nPartOf=ssh\.target$/m);
  t.regex(unit, /^EnvironmentFile=-\/srv\/fleet\/systemd\/instances\.env$/m);
  t.regex(unit, /^Environment=PORT=2200$/m, "the recipe's value when the file has no line for an instance");
  t.regex(unit, /^RequiresMountsFor=\/srv\/fleet\/rootfs$/m);
  t.regex(unit, /^WantedBy=ssh\.target$/m);
  t.regex(
    unit,
    /^ExecStart=systemd-nspawn .* --volatile=overlay --machine=ssh-%i --setenv=PORT=\$\{PORT\} --setenv=WORKERS=\$\{WORKERS\} --setenv=GREETING=\$\{GREETING\} \$NIFTY_ARGS_%i .* -D \/srv\/fleet\/rootfs$/m,
  );
  t.notRegex(unit, /--bind(-ro)?=\/cbin/, "no shared binaries bound in: the whole tree is shared");
  t.throws(() => renderInstanceUnit(sshConfig(), "/srv/my fleet"), {
    instanceOf: NiftyError,
    message: /NIFTY410|characters unit files would change/,
  });
  t.throws(() => renderInstanceUnit(sshConfig(), "/srv/100%"), { instanceOf: NiftyError });

  const target = renderTarget(PLAN());
  t.deepEqual(
    target.split("\n").filter((l) => l.startsWith("Wants=")),
    ["Wants=ssh@7.service", "Wants=ssh@8.service", "Wants=ssh@9.service"],
  );
  t.regex(target, /^Description=3 instances of ssh \(niftyc\)$/m);
  t.deepEqual(
    renderInstancesEnv(PLAN())
      .split("\n")
      .filter((l) => l && !l.startsWith("#")),
    ["NIFTY_ARGS_7=--setenv=PORT=2207", "NIFTY_ARGS_8=--setenv=PORT=2208", "NIFTY_ARGS_9=--setenv=PORT=2209"],
  );
});

test("the template's command line for an instance, as systemd expands it", (t) => {
  const unit = renderInstanceUnit(sshConfig(), "/srv/fleet");
  const files: Record<string, string> = {
    "/srv/fleet/systemd/instances.env":
      "# instances\nNIFTY_ARGS_7=--setenv=PORT=2207\nNIFTY_ARGS_8=--setenv=PORT=2208 --setenv=WORKERS=8\n",
  };
  const eight = instanceCommand(unit, "8", (p) => files[p]);
  t.true(eight.argv.includes("--machine=ssh-8"));
  t.deepEqual(
    eight.argv.filter((a) => a.startsWith("--setenv=PORT=")),
    ["--setenv=PORT=2200", "--setenv=PORT=2208"],
    "the instance's value after the default: nspawn takes the last",
  );
  t.deepEqual(
    eight.argv.filter((a) => a.startsWith("--setenv=WORKERS=")),
    ["--setenv=WORKERS=4", "--setenv=WORKERS=8"],
  );
  t.true(eight.argv.includes("--setenv=GREETING=hello"));
  t.true(eight.argv.includes("--setenv=NIFTY_INSTANCE=8"));
  t.deepEqual(eight.argv.slice(-2), ["-D", "/srv/fleet/rootfs"]);
  const other = instanceCommand(unit, "slick", (p) => files[p]);
  t.deepEqual(
    other.argv.filter((a) => a.startsWith("--setenv=PORT=")),
    ["--setenv=PORT=2200"],
    "no line for the instance: the recipe's default",
  );
  t.false(
    other.argv.some((a) => a.includes("NIFTY_ARGS") || a === ""),
    "an unset $NIFTY_ARGS_slick leaves no word",
  );
  t.deepEqual(
    instanceCommand(unit, "8", () => undefined).argv.filter((a) => a.startsWith("--setenv=PORT=")),
    ["--setenv=PORT=2200"],
    "no file at all: the recipe's default",
  );
});

test("writeInstances: the layout, a manifest, and systemd-analyze verify accepts the units", async (t) => {
  const build = await buildDir(t);
  const dir = join(temp(t), "fleet");
  const result = await writeInstances({
    dir,
    config: sshConfig(),
    plan: PLAN(),
    rootfsTar: join(build.dir, "rootfs.tar"),
    digest: build.digest,
    version: "test",
  });
  t.false(result.reusedRootfs);
  t.deepEqual(readdirSync(dir).sort(), ["instances.json", "rootfs", "systemd"], "no staging left behind");
  t.deepEqual(readdirSync(join(dir, "systemd")).sort(), ["instances.env", "ssh.target", "ssh@.service"]);
  t.regex(
    readFileSync(join(dir, "systemd", "instances.env"), "utf8"),
    /^NIFTY_ARGS_7=--setenv=PORT=2207\nNIFTY_ARGS_8=--setenv=PORT=2208\nNIFTY_ARGS_9=--setenv=PORT=2209\n$/m,
  );
  t.is(readFileSync(join(dir, "rootfs", "etc", "os-release"), "utf8"), "ID=one\n");
  const manifest = JSON.parse(readFileSync(join(dir, "instances.json"), "utf8"));
  t.like(manifest, {
    name: "ssh",
    digest: build.digest,
    count: 3,
    first: 7,
    sets: { PORT: "2200+i" },
    rootfs: "rootfs",
    unit: "systemd/ssh@.service",
    target: "systemd/ssh.target",
  });
  t.deepEqual(manifest.instances[0], {
    instance: 7,
    machine: "ssh-7",
    env: { PORT: "2207" },
    unit: "ssh@7.service",
  });

  const verify = spawnSync(
    "systemd-analyze",
    ["verify", join(dir, "systemd", "ssh@7.service"), join(dir, "systemd", "ssh.target")],
    { encoding: "utf8" },
  );
  t.is(verify.status, 0, verify.stderr);
  t.is(
    verify.stderr
      .split("\n")
      .filter((l) => l && !/ssh@[89]\.service/.test(l))
      .join("\n"),
    "",
  );
});

test("the shared tree is kept for the same digest, refused for another without --replace, and foreign directories are left alone", async (t) => {
  const one = await buildDir(t, "one");
  const two = await buildDir(t, "two");
  const dir = join(temp(t), "fleet");
  const write = (build: { dir: string; digest: string }, extra: { replace?: boolean; count?: number } = {}) =>
    writeInstances({
      dir,
      config: sshConfig(),
      plan: planInstances({
        config: sshConfig(),
        count: extra.count ?? 3,
        sets: [{ name: "PORT", expr: "2200+i" }],
      }),
      rootfsTar: join(build.dir, "rootfs.tar"),
      digest: build.digest,
      version: "test",
      ...(extra.replace ? { replace: true } : {}),
    });
  await write(one);
  const inode = statSync(join(dir, "rootfs", "etc", "os-release")).ino;
  const again = await write(one, { count: 5 });
  t.true(again.reusedRootfs);
  t.is(
    statSync(join(dir, "rootfs", "etc", "os-release")).ino,
    inode,
    "same files: running instances keep their tree",
  );
  t.regex(
    readFileSync(join(dir, "systemd", "instances.env"), "utf8"),
    /\nNIFTY_ARGS_5=--setenv=PORT=2205\n$/,
  );

  const refused = await t.throwsAsync(write(two), { instanceOf: NiftyError });
  t.is(refused.code, "NIFTY421");
  t.regex(refused.hint!, /systemctl stop ssh\.target/);
  t.is(readFileSync(join(dir, "rootfs", "etc", "os-release"), "utf8"), "ID=one\n", "nothing changed");
  const replaced = await write(two, { replace: true });
  t.false(replaced.reusedRootfs);
  t.is(readFileSync(join(dir, "rootfs", "etc", "os-release"), "utf8"), "ID=two\n");

  const foreign = join(temp(t), "home");
  mkdirSync(foreign);
  writeFileSync(join(foreign, "notes.txt"), "mine\n");
  const clobber = await t.throwsAsync(
    writeInstances({
      dir: foreign,
      config: sshConfig(),
      plan: PLAN(),
      rootfsTar: join(one.dir, "rootfs.tar"),
      digest: one.digest,
      version: "test",
    }),
    { instanceOf: NiftyError },
  );
  t.is(clobber.code, "NIFTY422");
  t.deepEqual(readdirSync(foreign), ["notes.txt"]);

  writeFileSync(join(one.dir, "rootfs.tar"), "changed after the build");
  const changed = await t.throwsAsync(
    writeInstances({
      dir: join(temp(t), "x"),
      config: sshConfig(),
      plan: PLAN(),
      rootfsTar: join(one.dir, "rootfs.tar"),
      digest: one.digest,
      version: "test",
    }),
    { instanceOf: NiftyError },
  );
  t.is(changed.code, "NIFTY423");
});

async function cli(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
    cwd,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

test("the command line: help, usage mistakes (exit 2), input mistakes (exit 1), and a run from a build directory", async (t) => {
  const build = await buildDir(t);
  const cwd = temp(t);
  const help = await cli(["instances", "--help"], cwd);
  t.is(help.code, 0);
  t.is(help.stdout, INSTANCES_HELP + "\n");
  t.regex((await cli(["--help"], cwd)).stdout, /niftyc instances /);
  t.regex((await cli(["instance"], cwd)).stderr, /did you mean instances\?/);

  const noCount = await cli(["instances", build.dir], cwd);
  t.is(noCount.code, 2);
  t.regex(noCount.stderr, /--count is required/);
  t.is((await cli(["instances", build.dir, "--count", "many"], cwd)).code, 2);
  t.is((await cli(["instances", build.dir, "--count", "2", "--set", "PORT"], cwd)).code, 2);
  t.is((await cli(["instances"], cwd)).code, 2);

  const zero = await cli(["instances", build.dir, "--count", "0"], cwd);
  t.is(zero.code, 2);
  t.regex(zero.stderr, /^niftyc: --count takes a whole number from 1 to 100000, got "0"$/m);
  const clash = await cli(["instances", build.dir, "--count", "2"], cwd);
  t.regex(clash.stderr, /\[NIFTY408\]\n  hint: .*--set PORT=2200\+i/);
  const notBuild = await cli(["instances", cwd, "--count", "2"], cwd);
  t.regex(notBuild.stderr, /not a build directory .*\[NIFTY420\]/);
  t.regex((await cli(["instances", join(cwd, "missing"), "--count", "2"], cwd)).stderr, /\[NIFTY420\]/);

  const ok = await cli(
    [
      "instances",
      build.dir,
      "--count",
      "4",
      "--first",
      "0",
      "--set",
      "PORT=3000+i",
      "--out",
      "fleet",
      "--json",
    ],
    cwd,
  );
  t.is(ok.code, 0, ok.stderr);
  const result = JSON.parse(ok.stdout);
  t.like(result, {
    name: "ssh",
    digest: build.digest,
    dir: join(cwd, "fleet"),
    count: 4,
    first: 0,
    reusedRootfs: false,
  });
  t.regex(
    readFileSync(join(cwd, "fleet", "systemd", "instances.env"), "utf8"),
    /^NIFTY_ARGS_3=--setenv=PORT=3003$/m,
  );
  // -q as build takes it (a recipe's build shows no progress then).
  t.is(
    (await cli(["instances", build.dir, "--count", "2", "--set", "PORT=3000+i", "--out", "fleet", "-q"], cwd))
      .code,
    0,
  );
  const text = await cli(
    ["instances", build.dir, "--count", "2", "--set", "PORT=3000+i", "--out", "fleet"],
    cwd,
  );
  t.regex(text.stdout, /^wrote 2 instances of ssh \(ssh-1 … ssh-2\) in fleet; shared tree kept\n/);
  t.regex(text.stdout, /systemctl start ssh\.target/);
});

test("--count or --first out of range, not a number or not whole: a usage mistake (exit 2) that says the range", async (t) => {
  const build = await buildDir(t);
  const cwd = temp(t);
  for (const value of ["0", "100001", "-1", "1.5", "abc", "1e3", ""]) {
    const r = await cli(["instances", build.dir, `--count=${value}`], cwd);
    t.is(r.code, 2, `--count=${value}`);
    t.is(
      r.stderr.split("\n")[0],
      `niftyc: --count takes a whole number from 1 to 100000, got ${JSON.stringify(value)}`,
    );
    t.regex(r.stderr, /^Usage: niftyc instances /m);
    t.is(r.stdout, "");
  }
  for (const value of ["-1", "0.5", "x"]) {
    const r = await cli(["instances", build.dir, "--count", "2", `--first=${value}`], cwd);
    t.is(r.code, 2, `--first=${value}`);
    t.is(
      r.stderr.split("\n")[0],
      `niftyc: --first takes a whole number from 0 up, got ${JSON.stringify(value)}`,
    );
  }
  t.deepEqual(readdirSync(cwd), [], "nothing written");
});

test("a shared tree a writable boot wrote into is still the image's: refused with what changed (NIFTY424), unpacked again with --replace", async (t) => {
  const one = await buildDir(t, "one");
  const dir = join(temp(t), "fleet");
  const write = (replace = false) =>
    writeInstances({
      dir,
      config: sshConfig(),
      plan: PLAN(),
      rootfsTar: join(one.dir, "rootfs.tar"),
      digest: one.digest,
      version: "test",
      ...(replace ? { replace: true } : {}),
    });
  await write();
  const manifest = JSON.parse(readFileSync(join(dir, "instances.json"), "utf8")) as { tree?: string };
  t.regex(manifest.tree ?? "", /^sha256:[0-9a-f]{64}$/);
  t.true((await write()).reusedRootfs, "an untouched tree is kept");

  // What systemd-nspawn writes on a boot without --volatile, and a machine-id systemd would write.
  writeFileSync(join(dir, "rootfs", "etc", "resolv.conf"), "nameserver 192.0.2.1\n");
  writeFileSync(join(dir, "rootfs", "etc", "machine-id"), "0123456789abcdef0123456789abcdef\n");
  const refused = await t.throwsAsync(write(), { instanceOf: NiftyError });
  t.is(refused.code, "NIFTY424");
  t.regex(
    refused.message,
    /rootfs is no longer the image it was unpacked from: etc\/machine-id, etc\/resolv\.conf changed$/,
  );
  t.regex(refused.hint!, /systemctl stop ssh\.target\), then pass --replace/);
  t.true(statSync(join(dir, "rootfs", "etc", "resolv.conf")).isFile(), "nothing touched");

  const again = await write(true);
  t.false(again.reusedRootfs);
  t.deepEqual(readdirSync(join(dir, "rootfs", "etc")).sort(), ["os-release"], "the image's files only");
  t.true((await write()).reusedRootfs);
});

test("--root: the files land under the root, the units and the printed commands name the paths that machine sees", async (t) => {
  const one = await buildDir(t);
  const root = temp(t);
  const relative = await cli(
    ["instances", one.dir, "--count", "2", "--set", "PORT=2200+i", "--root", root, "--out", "srv/ssh"],
    one.dir,
  );
  t.is(relative.code, 2);
  t.regex(relative.stderr, /with --root, --out takes a path as that machine sees it, starting with \//);
  const missing = await cli(
    ["instances", one.dir, "--count", "2", "--set", "PORT=2200+i", "--root", join(root, "nope")],
    one.dir,
  );
  t.is(missing.code, 1);
  t.regex(missing.stderr, /the root directory .*nope does not exist or is not a directory \[NIFTY302\]/);

  const ok = await cli(
    ["instances", one.dir, "--count", "2", "--set", "PORT=2200+i", "--root", root],
    one.dir,
  );
  t.is(ok.code, 0, ok.stderr);
  t.regex(
    ok.stdout,
    /in \/var\/lib\/niftyc\/ssh of the machine at .*\nthen, on that machine:\n  systemctl link \/var\/lib\/niftyc\/ssh\/systemd\/ssh@\.service \/var\/lib\/niftyc\/ssh\/systemd\/ssh\.target\n/,
  );
  const unit = readFileSync(join(root, "var/lib/niftyc/ssh/systemd/ssh@.service"), "utf8");
  t.regex(unit, / -D \/var\/lib\/niftyc\/ssh\/rootfs(\s|$)/m);
  t.regex(unit, /^EnvironmentFile=-\/var\/lib\/niftyc\/ssh\/systemd\/instances\.env$/m);
  t.false(unit.includes(root), "no path of this machine in the unit");
  t.is(readFileSync(join(root, "var/lib/niftyc/ssh/rootfs/etc/os-release"), "utf8"), "ID=one\n");
});
