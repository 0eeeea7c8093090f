// main(argv, io) in this process with io.cwd other than the process's: every
// path is resolved against the injected cwd, never process.cwd(). And a blob
// damaged in the store after a build gives a clear error with what to do,
// not an internal error.
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  mkdirSync,
  existsSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import test from "ava";
import { runMain } from "../support/cli.ts";

const run = (argv: string[], cwd: string) => runMain(argv, cwd);

function project(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-inproc-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "files"));
  // Larger than the inline limit, so it lives in the store as a blob.
  writeFileSync(join(dir, "files", "big.txt"), "x".repeat(10_000));
  writeFileSync(join(dir, "files", "a.txt"), "hello\n");
  writeFileSync(
    join(dir, "app.nifty"),
    "FILE /etc/os-release <<EOF\nID=t\nEOF\nCOPY files/a.txt /srv/a.txt\nCOPY files/big.txt /srv/big.txt\n",
  );
  return dir;
}

test("build and check resolve the recipe, COPY sources, --out and --cache against io.cwd", async (t) => {
  const dir = project(t);
  t.not(process.cwd(), dir);
  const checked = await run(["check", "app.nifty"], dir);
  t.is(checked.code, 0, checked.stderr);
  const built = await run(["build", "app.nifty", "--cache", "c", "--out", "o", "--format", "rootfs"], dir);
  t.is(built.code, 0, built.stderr);
  t.true(existsSync(join(dir, "o", "rootfs.tar")));
  t.true(statSync(join(dir, "c", "blobs", "sha256")).isDirectory());
  const listing = execFileSync("tar", ["-tf", join(dir, "o", "rootfs.tar")], { encoding: "utf8" });
  t.regex(listing, /srv\/a\.txt/);
  t.regex(listing, /srv\/big\.txt/);
  // A directory stands for its one recipe.
  const byDir = await run(["build", ".", "--cache", "c", "--out", "d", "--format", "rootfs"], dir);
  t.is(byDir.code, 0, byDir.stderr);
  t.regex(byDir.stdout, /built app: sha256:/);
  // The default output directory is out/<name> under io.cwd.
  const defaults = await run(["build", "app.nifty", "--cache", "c", "--format", "rootfs"], dir);
  t.is(defaults.code, 0, defaults.stderr);
  t.true(existsSync(join(dir, "out", "app", "rootfs.tar")));
});

test("a blob truncated in the store after a build is reported as a damaged store, with the command that repairs it", async (t) => {
  const dir = project(t);
  t.is((await run(["build", "app.nifty", "--cache", "c", "--out", "o", "--format", "rootfs"], dir)).code, 0);
  const blobs = join(dir, "c", "blobs", "sha256");
  const big = readdirSync(blobs).find((name) => statSync(join(blobs, name)).size === 10_000);
  t.truthy(big, "the 10,000-byte file is a blob");
  truncateSync(join(blobs, big!), 100);
  // Drop the tarballs so the next build writes them again from the (damaged) step records.
  for (const name of readdirSync(blobs))
    if (statSync(join(blobs, name)).size > 10_000) rmSync(join(blobs, name), { force: true });
  const again = await run(["build", "app.nifty", "--cache", "c", "--out", "o2", "--format", "rootfs"], dir);
  t.is(again.code, 1, again.stderr);
  t.regex(again.stderr, /damaged/);
  t.regex(again.stderr, /niftyc cache verify/);
  t.notRegex(again.stderr, /internal error/);
  t.false(existsSync(join(dir, "o2")), "nothing published");
});

test("COPY of a directory with MODE gives directories the matching execute bits", async (t) => {
  const dir = project(t);
  mkdirSync(join(dir, "files", "sub"));
  writeFileSync(join(dir, "files", "sub", "b.txt"), "b\n");
  writeFileSync(
    join(dir, "modes.nifty"),
    "FILE /etc/os-release <<EOF\nID=t\nEOF\nCOPY files /srv/files MODE 0640\n",
  );
  const built = await run(["build", "modes.nifty", "--cache", "c", "--out", "m", "--format", "rootfs"], dir);
  t.is(built.code, 0, built.stderr);
  const lines = execFileSync("tar", ["-tvf", join(dir, "m", "rootfs.tar")], { encoding: "utf8" }).split("\n");
  const mode = (path: string) =>
    lines.find((l) => l.endsWith(` ${path}`) || l.endsWith(` ${path}/`))?.split(" ")[0];
  t.is(mode("srv/files"), "drwxr-x---");
  t.is(mode("srv/files/sub"), "drwxr-x---");
  t.is(mode("srv/files/sub/b.txt"), "-rw-r-----");
});

test("a --secret whose file or variable is missing says so in one line, without the usage text", async (t) => {
  const dir = project(t);
  const file = await run(["build", "app.nifty", "--secret", "pw=missing.txt"], dir);
  t.is(file.code, 1);
  t.is(file.stderr.split("\n")[0], "niftyc: error: --secret pw: cannot read missing.txt: ENOENT [NIFTY212]");
  t.notRegex(file.stderr, /Usage:/);
  const env = await run(["build", "app.nifty", "--secret", "pw=env:NIFTY_NOT_SET"], dir);
  t.is(env.code, 1);
  t.regex(env.stderr, /environment variable NIFTY_NOT_SET is not set \[NIFTY212\]/);
  t.notRegex(env.stderr, /Usage:/);
});

test("at a terminal a missing password secret is asked for, twice, and the build goes on; without one it is NIFTY210", async (t) => {
  const dir = project(t);
  writeFileSync(
    join(dir, "pw.nifty"),
    "FILE /etc/os-release <<EOF\nID=t\nEOF\nFILE /bin/sh MODE 0755 <<EOF\nnot a shell\nEOF\nUSER luser UID 1000 SHELL /bin/sh PASSWORD secret:luser-password\n",
  );
  const asked: string[] = [];
  const answers = ["one", "two", "hunter2", "hunter2"];
  let stderr = "";
  const io = {
    stdout: { write: () => true },
    stderr: { write: (s: string) => (stderr += s) },
    env: { SOURCE_DATE_EPOCH: "0" },
    cwd: dir,
    askSecret: async (prompt: string) => (asked.push(prompt), answers.shift()!),
  };
  const { main } = await import("../../src/cli/main.ts");
  const code = await main(
    ["build", "pw.nifty", "--cache", "c", "--out", "p", "--format", "rootfs", "-q"],
    io,
  );
  t.is(code, 0, stderr);
  t.deepEqual(asked, [
    'Password for the secret "luser-password": ',
    "Again: ",
    'Password for the secret "luser-password": ',
    "Again: ",
  ]);
  t.regex(stderr, /the passwords do not match\n/);
  t.regex(stderr, /next time, without a terminal: --secret luser-password=FILE/);
  const shadow = execFileSync("tar", ["-xOf", join(dir, "p", "rootfs.tar"), "etc/shadow"], {
    encoding: "utf8",
  });
  const hash = /^luser:([^:]+):/m.exec(shadow)![1]!;
  t.is(
    execFileSync("openssl", ["passwd", "-6", "-salt", hash.split("$")[2]!, "hunter2"], {
      encoding: "utf8",
    }).trim(),
    hash,
  );
  const batch = await run(["build", "pw.nifty", "--cache", "c", "--out", "q", "--format", "rootfs"], dir);
  t.is(batch.code, 1);
  t.regex(batch.stderr, /the password secret "luser-password" was not given \[NIFTY210\]/);
});

test("build - reads the recipe from standard input, named stdin, with COPY sources in the working directory", async (t) => {
  const dir = project(t);
  const recipe = "FILE /etc/os-release <<EOF\nID=t\nEOF\nCOPY files/a.txt /srv/a.txt\n";
  const run = spawnSync(
    join(import.meta.dirname, "../../node_modules/.bin/node"),
    [
      join(import.meta.dirname, "../../bin/niftyc"),
      "build",
      "-",
      "--cache",
      "c",
      "--format",
      "rootfs",
      "--json",
      "-q",
    ],
    { cwd: dir, input: recipe, encoding: "utf8" },
  );
  t.is(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { outDir: string; rootfs: string };
  t.is(result.outDir, join(dir, "out", "stdin"));
  t.regex(execFileSync("tar", ["-tf", result.rootfs], { encoding: "utf8" }), /srv\/a\.txt/);
  const broken = spawnSync(
    join(import.meta.dirname, "../../node_modules/.bin/node"),
    [join(import.meta.dirname, "../../bin/niftyc"), "build", "-"],
    { cwd: dir, input: "FECTH x\n", encoding: "utf8" },
  );
  t.is(broken.status, 1);
  t.regex(broken.stderr, /^stdin:1:1: error: unknown instruction FECTH/m);
});

test("install into another machines directory says how to boot from there, not machinectl", async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI) t.fail("install keeps the image's owners: it needs root");
    else t.log("SKIPPED outside CI: install needs root");
    t.pass();
    return;
  }
  const dir = project(t);
  t.is(
    (await run(["build", "app.nifty", "--cache", "c", "--out", "o", "--format", "rootfs,nspawn"], dir)).code,
    0,
  );
  const installed = await run(
    ["install", "o", "--machines-dir", "machines", "--settings-dir", "nspawn"],
    dir,
  );
  t.is(installed.code, 0, installed.stderr);
  t.regex(
    installed.stdout,
    new RegExp(
      `start it with: systemd-nspawn --boot --directory=${join(dir, "machines", "app")} --machine=app\\n$`,
    ),
  );
  t.notRegex(installed.stdout, /machinectl/);
  t.regex(installed.stderr, /note: systemd-nspawn never reads .*nspawn\/app\.nspawn/);
});

test("an image with its own /etc/localtime gets Timezone=off in .nspawn and --timezone=off in its units; one without, neither", async (t) => {
  const dir = project(t);
  writeFileSync(
    join(dir, "tz.nifty"),
    "FILE /etc/os-release <<EOF\nID=t\nEOF\nSYMLINK /etc/localtime /usr/share/zoneinfo/Asia/Tokyo\n",
  );
  t.is(
    (await run(["build", "tz.nifty", "--cache", "c", "--out", "tz", "--format", "nspawn,systemd"], dir)).code,
    0,
  );
  t.regex(readFileSync(join(dir, "tz", "tz.nspawn"), "utf8"), /^Timezone=off$/m);
  t.regex(readFileSync(join(dir, "tz", "tz.service"), "utf8"), / --timezone=off /);
  t.regex(readFileSync(join(dir, "tz", "tz@.service"), "utf8"), / --timezone=off /);
  t.is(
    (await run(["build", "app.nifty", "--cache", "c", "--out", "plain", "--format", "nspawn,systemd"], dir))
      .code,
    0,
  );
  t.notRegex(readFileSync(join(dir, "plain", "app.nspawn"), "utf8"), /Timezone/);
  t.notRegex(readFileSync(join(dir, "plain", "app.service"), "utf8"), /--timezone/);
});
