// PACKAGE end to end against a local signed Debian archive on loopback (real
// .debs, apt-ftparchive indices, an InRelease signed with a throwaway key):
// closure, lockfile, --locked, offline rebuilds, FILES with the libraries
// programs load, the dpkg database read back by dpkg-query, what fails and
// how it says so, and niftyc outdated.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { baseEnv, NIFTYC, NODE, ROOT } from "./helpers.ts";
import { parseLock } from "../../src/debian/lockfile.ts";
import { CANARY, debianArchive, requireArchive, mirrorFlags } from "../support/debian-archive.ts";
import { buildAppRootfs, scratchDir, twoSuiteProject } from "../support/package-project.ts";

const niftyc = (dir: string, argv: string[]) => runMain(argv, dir);

/** The two suites' project, its recipe starting with an os-release FILE (so `body` begins at line 6). */
const project = (t: import("ava").ExecutionContext, body: string) =>
  twoSuiteProject(t, "niftyc-packages-", `FILE /etc/os-release <<EOF\nID=test\nEOF\n${body}`);

function listing(dir: string, out = "o"): string[] {
  return execFileSync("tar", ["-tf", join(dir, out, "rootfs.tar")], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean);
}

test("whole packages: the closure (Pre-Depends, a virtual package, an alternative, a version from the security suite) is locked, installed, and listed by dpkg-query; no maintainer script runs", async (t) => {
  if (!requireArchive(t)) return;
  rmSync(CANARY, { force: true });
  const { dir } = await project(t, "PACKAGE nifty-app\n");
  const view = (await debianArchive()).view();
  const r = await buildAppRootfs(dir, view);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /wrote app\.nifty\.lock: 5 packages/);
  t.regex(r.stderr, /maintainer scripts not run .*nifty-base \(postinst, prerm\)/);
  const lock = parseLock(readFileSync(join(dir, "app.nifty.lock"), "utf8"));
  t.true(lock.ok);
  const pinned = lock.ok
    ? Object.fromEntries(lock.lock.packages.map((p) => [p.name, `${p.version} ${p.from.suite}`]))
    : {};
  t.deepEqual(pinned, {
    "nifty-app": "1.0-1 bookworm",
    "nifty-base": "1.0-1 bookworm",
    "nifty-lib": "1.1-1 bookworm-security",
    "nifty-mta-a": "1.0-1 bookworm",
    "nifty-pager": "1.0-1 bookworm",
  });
  const buildJson = JSON.parse(readFileSync(join(dir, "o", "build.json"), "utf8")) as {
    packages: Array<{ name: string; sha256: string }>;
  };
  t.deepEqual(
    buildJson.packages.map((p) => p.name),
    Object.keys(pinned),
    "build.json lists the locked packages",
  );
  const files = listing(dir);
  for (const path of [
    "usr/bin/nifty-app",
    "etc/nifty-app/app.conf",
    "usr/bin/nb",
    "usr/bin/nifty-base-again",
    "var/lib/dpkg/status",
    "var/lib/dpkg/info/nifty-lib:amd64.list",
  ])
    t.true(files.includes(path), path);
  const root = join(dir, "root");
  mkdirSync(root);
  execFileSync("tar", ["-xf", join(dir, "o", "rootfs.tar"), "-C", root]);
  const status = execFileSync(
    "dpkg-query",
    [`--admindir=${root}/var/lib/dpkg`, "-W", "-f=${Package} ${Version} ${Status}\n"],
    { encoding: "utf8" },
  );
  t.is(
    status,
    ["nifty-app 1.0-1", "nifty-base 1.0-1", "nifty-lib 1.1-1", "nifty-mta-a 1.0-1", "nifty-pager 1.0-1"]
      .map((p) => `${p} install ok installed\n`)
      .join(""),
  );
  t.regex(
    execFileSync("dpkg-query", [`--admindir=${root}/var/lib/dpkg`, "-L", "nifty-base"], { encoding: "utf8" }),
    /^\/usr\/bin\/nifty-base-again$/m,
  );
  t.false(existsSync(CANARY), "a maintainer script ran");
});

test("FILES: only the programs asked for, their loader and the libraries they load, followed through the packages' symlinks", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE dropbear-bin FILES /usr/sbin/dropbear /usr/bin/dropbearkey\n");
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 0, r.stderr);
  const files = listing(dir);
  for (const path of [
    "usr/sbin/dropbear",
    "usr/bin/dropbearkey",
    "lib64/ld-linux-x86-64.so.2",
    "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libtomcrypt.so.1",
    "lib/x86_64-linux-gnu/libz.so.1",
  ]) {
    t.true(files.includes(path), path);
  }
  // Nothing the programs do not load: no dbclient, no other libc6 library, no docs, no dpkg database.
  for (const path of [
    "usr/bin/dbclient",
    "lib/x86_64-linux-gnu/libm.so.6",
    "usr/share/doc/libc6/copyright",
    "var/lib/dpkg/status",
  ])
    t.false(files.includes(path), path);
  // The packages they come from are listed the distroless way instead (test/pipeline/status-d.test.ts).
  const outside = files.filter((p) => !p.startsWith("var/"));
  t.true(outside.length < 40, `${outside.length} entries`);
  t.true(files.includes("var/lib/dpkg/status.d/dropbear-bin.md5sums"));
});

test("whole packages in a merged-/usr tree: the links made before PACKAGE stay links, and the packages' /lib and /bin files land under /usr", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(
    t,
    "SYMLINK /bin usr/bin\nSYMLINK /sbin usr/sbin\nSYMLINK /lib usr/lib\nSYMLINK /lib64 usr/lib64\nPACKAGE dropbear-bin\n",
  );
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 0, r.stderr);
  const verbose = execFileSync("tar", ["-tvf", join(dir, "o", "rootfs.tar")], { encoding: "utf8" });
  for (const [link, target] of [
    ["bin", "usr/bin"],
    ["sbin", "usr/sbin"],
    ["lib", "usr/lib"],
    ["lib64", "usr/lib64"],
  ]) {
    t.regex(verbose, new RegExp(`^l.* ${link} -> ${target}$`, "m"), `${link} is still a link`);
  }
  const files = listing(dir);
  t.true(files.includes("usr/lib/x86_64-linux-gnu/libc.so.6"), "libc6's /lib files under /usr/lib");
  t.false(
    files.some((p) => /^(bin|sbin|lib|lib64)\//.test(p)),
    "nothing below the links themselves",
  );
});

test("a FILES path the packages do not ship is NIFTY605 at its word, with the path they ship that is close", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE dropbear-bin FILES /usr/bin/dropbearkey /usr/sbin/dropbaer\n");
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    /app\.nifty:6:49: error: \/usr\/sbin\/dropbaer is in none of dropbear-bin \[NIFTY605\]\n.*\n {6}\| +\^~{17}\n {2}hint: did you mean \/usr\/sbin\/dropbear\?/,
  );
});

test("FILES in a merged-/usr tree: the programs, their loader and libraries land under /usr through the image's links, which stay links", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(
    t,
    "SYMLINK /bin usr/bin\nSYMLINK /sbin usr/sbin\nSYMLINK /lib usr/lib\nSYMLINK /lib64 usr/lib64\nPACKAGE dropbear-bin FILES /sbin/dropbear /usr/bin/dropbearkey\n",
  );
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 0, r.stderr);
  const files = listing(dir);
  for (const path of [
    "usr/sbin/dropbear",
    "usr/bin/dropbearkey",
    "usr/lib64/ld-linux-x86-64.so.2",
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libz.so.1",
  ]) {
    t.true(files.includes(path), path);
  }
  t.false(
    files.some((p) => /^(bin|sbin|lib|lib64)\//.test(p)),
    "nothing below the links themselves",
  );
});

test("a program whose loader is behind a link loop of the image is NIFTY250 at the line that wrote it, not a hang", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(
    t,
    "PACKAGE dropbear-bin FILES /usr/bin/dropbearkey\nSYMLINK /lib64/ld-linux-x86-64.so.2 ld-linux-x86-64.so.2\n",
  );
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    /app\.nifty:6:1: error: \/usr\/bin\/dropbearkey: too many levels of symbolic links in \/lib64\/ld-linux-x86-64\.so\.2 \[NIFTY250\]/,
  );
  t.notRegex(r.stderr, /internal error/);
  // A loop met while the FILES closure places libc6's /lib64 is an error at the PACKAGE line.
  const looped = await project(t, "SYMLINK /lib64 lib64\nPACKAGE dropbear-bin FILES /usr/bin/dropbearkey\n");
  const r2 = await buildAppRootfs(looped.dir, (await debianArchive()).view());
  t.is(r2.code, 1, r2.stderr);
  t.regex(r2.stderr, /app\.nifty:7:1: error: too many levels of symbolic links in \/lib64 \[NIFTY204\]/);
  t.regex(r2.stderr, /hint: a link here leads back to itself/);
  t.notRegex(r2.stderr, /internal error/);
});

test("suites chosen by an --arg have a lock of their own: switching suites never rewrites the other's lock", async (t) => {
  if (!requireArchive(t)) return;
  const archive = await debianArchive();
  const dir = scratchDir(t, "niftyc-packages-");
  // The default suite is bookworm; --arg ROOT=debian-security --arg SUITE=bookworm-security chooses the other.
  writeFileSync(
    join(dir, "app.nifty"),
    `ARG ROOT=debian\nARG SUITE=bookworm\nARCHIVE \${ROOT} \${SUITE} KEYRING ${archive.keyring}\nFILE /etc/os-release <<EOF\nID=test\nEOF\nPACKAGE nifty-lib\n`,
  );
  const security = ["--arg", "ROOT=debian-security", "--arg", "SUITE=bookworm-security"];
  const first = await buildAppRootfs(dir, archive.view());
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /wrote app\.nifty\.lock: 1 package from bookworm\b/);
  const bookworm = readFileSync(join(dir, "app.nifty.lock"), "utf8");
  const second = await buildAppRootfs(dir, archive.view(), ...security);
  t.is(second.code, 0, second.stderr);
  t.regex(second.stderr, /wrote app\.nifty\.bookworm-security\.lock: 1 package from bookworm-security/);
  t.is(readFileSync(join(dir, "app.nifty.lock"), "utf8"), bookworm, "the default suites' lock is untouched");
  const pinned = parseLock(readFileSync(join(dir, "app.nifty.bookworm-security.lock"), "utf8"));
  t.deepEqual(pinned.ok ? pinned.lock.packages.map((p) => `${p.name} ${p.version}`) : [], [
    "nifty-lib 1.1-1",
  ]);
  // Each lock serves its suites as it is, with --locked, and fetches no index.
  for (const extra of [[], security]) {
    const view = archive.view();
    const again = await buildAppRootfs(dir, view, "--locked", ...extra);
    t.is(again.code, 0, again.stderr);
    t.deepEqual(
      view.requests().filter((p) => /InRelease|Packages/.test(p)),
      [],
    );
  }
  // --arg values that name the default suites use the default lock.
  const same = await buildAppRootfs(dir, archive.view(), "--locked", "--arg", "SUITE=bookworm");
  t.is(same.code, 0, same.stderr);
  t.false(existsSync(join(dir, "app.nifty.bookworm.lock")));
});

test("SERVICE after a whole PACKAGE is checked at build: a unit the packages do not ship is an error at its word, with the image's units to choose from", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(
    t,
    "PACKAGE dropbear-bin\nFILE /etc/systemd/system/web.service <<EOF\n[Install]\nWantedBy=multi-user.target\nEOF\nSERVICE enable wbe.service\n",
  );
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 1, r.stderr);
  // Line 11: two ARCHIVE lines, the os-release FILE (3), PACKAGE and the unit's FILE (4) come first.
  t.regex(
    r.stderr,
    /app\.nifty:11:16: error: cannot enable wbe\.service: it is not in the image \[NIFTY229\]/,
  );
  t.regex(r.stderr, /did you mean web\.service\?/);
});

test("the lock is used as it is: no index is fetched, --offline rebuilds from the store, --locked refuses a lock that no longer covers the recipe", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  const first = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(first.code, 0, first.stderr);
  const lockText = readFileSync(join(dir, "app.nifty.lock"), "utf8");
  // A fresh store and out/: only the locked .deb is downloaded, no InRelease, no Packages.
  const view = (await debianArchive()).view();
  const again = await niftyc(dir, [
    "build",
    "app.nifty",
    "--cache",
    "c2",
    "--out",
    "o2",
    "--format",
    "rootfs",
    "--json",
    ...mirrorFlags(view),
  ]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(
    view.requests().filter((p) => /InRelease|Packages/.test(p)),
    [],
  );
  t.true(view.requests().some((p) => p.endsWith(".deb")));
  t.is(
    JSON.parse(again.stdout).digest,
    JSON.parse((await buildAppRootfs(dir, view, "--json")).stdout).digest,
  );
  const offline = await niftyc(dir, [
    "build",
    "app.nifty",
    "--cache",
    "c2",
    "--out",
    "o3",
    "--format",
    "rootfs",
    "--offline",
    ...mirrorFlags(view),
  ]);
  t.is(offline.code, 0, offline.stderr);
  t.is(readFileSync(join(dir, "app.nifty.lock"), "utf8"), lockText, "the lock is unchanged");
  // The recipe asks for more: --locked refuses, pointing at the PACKAGE line; without it the lock is updated.
  writeFileSync(
    join(dir, "app.nifty"),
    readFileSync(join(dir, "app.nifty"), "utf8") + "PACKAGE nifty-data\n",
  );
  const locked = await buildAppRootfs(dir, view, "--locked");
  t.is(locked.code, 1);
  t.regex(
    locked.stderr,
    /app\.nifty:7:1: error: --locked, but app\.nifty\.lock lacks nifty-data \[NIFTY603\]/,
  );
  t.regex(locked.stderr, /niftyc lock app\.nifty/);
  t.is(readFileSync(join(dir, "app.nifty.lock"), "utf8"), lockText, "--locked wrote nothing");
  // With --quiet: no progress, but the rewritten lock is still named.
  const updated = await buildAppRootfs(dir, view, "--quiet");
  t.is(updated.code, 0, updated.stderr);
  t.regex(updated.stderr, /^note: updated app\.nifty\.lock: 2 packages/m);
  t.notRegex(updated.stderr, /^\[ ?\d+\/\d+\]|maintainer scripts not run/m, "no progress or other note");
  t.true(
    listing(dir).includes("usr/share/nifty-data/data.txt") ||
      listing(dir).some((p) => p.startsWith("usr/share/nifty-data")),
  );
});

test("an unknown package is an error at its word with what the index has that is close", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-base nifty-ap\n");
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /app\.nifty:6:20: error: unknown package 'nifty-ap': no suite offers it or provides it \[NIFTY600\]\n.*\n {6}\| +\^~{7}\n {2}hint: did you mean nifty-app/,
  );
  t.false(existsSync(join(dir, "app.nifty.lock")));
});

for (const [variant, code] of [
  ["bad-signature", "NIFTY611"],
  ["unknown-key", "NIFTY612"],
  ["expired", "NIFTY618"],
  ["tampered-packages", "NIFTY623"],
] as const) {
  test(`a ${variant} archive stops the build with ${code} and writes no lock`, async (t) => {
    if (!requireArchive(t)) return;
    const { dir } = await project(t, "PACKAGE nifty-pager\n");
    const r = await buildAppRootfs(dir, (await debianArchive()).view(variant));
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, new RegExp(`\\[${code}\\]`));
    t.notRegex(r.stderr, /internal error/);
    t.false(existsSync(join(dir, "app.nifty.lock")));
    t.false(existsSync(join(dir, "o")));
  });
}

test("a tampered .deb is refused by its digest from the lock, naming the package", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  t.is(
    (await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags((await debianArchive()).view())]))
      .code,
    0,
  );
  const r = await buildAppRootfs(dir, (await debianArchive()).view("tampered-deb"));
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /nifty-pager.*\[NIFTY625\]/);
  t.false(existsSync(join(dir, "o")));
});

test("niftyc outdated names the newer version from the security suite and exits 3; lock --update moves the lock", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-lib=1.0-1\n");
  const view = (await debianArchive()).view();
  const locked = await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags(view)]);
  t.is(locked.code, 0, locked.stderr);
  t.regex(locked.stdout, /nifty-lib 1\.0-1 \(debian bookworm\)/);
  const report = await niftyc(dir, ["outdated", "app.nifty", "--cache", "c", ...mirrorFlags(view)]);
  t.is(report.code, 3, report.stderr);
  t.regex(
    report.stdout,
    /^nifty-lib 1\.0-1 → 1\.1-1 \(debian-security bookworm-security\)\s+SECURITY 1\.1-1/m,
  );
  const json = JSON.parse(
    (await niftyc(dir, ["outdated", "app.nifty", "--cache", "c", "--json", ...mirrorFlags(view)])).stdout,
  );
  t.is(json.summary.status, "security-updates");
  // The recipe pins 1.0-1, so moving it forward is a recipe change: unpinned, --update takes 1.1-1.
  writeFileSync(
    join(dir, "app.nifty"),
    readFileSync(join(dir, "app.nifty"), "utf8").replace("nifty-lib=1.0-1", "nifty-lib"),
  );
  const moved = await niftyc(dir, [
    "lock",
    "app.nifty",
    "--update",
    "nifty-lib",
    "--cache",
    "c",
    ...mirrorFlags(view),
  ]);
  t.is(moved.code, 0, moved.stderr);
  t.regex(readFileSync(join(dir, "app.nifty.lock"), "utf8"), /Package: nifty-lib\nVersion: 1\.1-1/);
  const after = await niftyc(dir, ["outdated", "app.nifty", "--cache", "c", ...mirrorFlags(view)]);
  t.is(after.code, 0, after.stdout);
  t.regex(after.stdout, /the 1 locked package is current/);
});

test("a lock edited by hand into nonsense is an error at its line", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  writeFileSync(
    join(dir, "app.nifty.lock"),
    "Lock-Format: 1\nArchitecture: amd64\nSuites:\n debian bookworm main nonsense\n",
  );
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 1);
  t.regex(r.stderr, /app\.nifty\.lock:\d+:1: error: .* \[NIFTY604\]/);
});

test("a lock that is a link to /dev/zero, a FIFO, a directory or just over 16 MiB is NIFTY604 at once, naming it; an honest lock, and one of exactly 16 MiB, still build", async (t) => {
  if (!requireArchive(t)) return;
  t.timeout(180_000);
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  const view = (await debianArchive()).view();
  const first = await buildAppRootfs(dir, view);
  t.is(first.code, 0, first.stderr);
  const lock = join(dir, "app.nifty.lock");
  const honest = readFileSync(lock, "utf8");
  // The honest lock padded with comment lines (which the lock's syntax skips) to `size` bytes.
  const padded = (size: number) => {
    const line = `#${"x".repeat(1023)}\n`;
    const fill = size - Buffer.byteLength(honest);
    return honest + line.repeat(Math.floor(fill / line.length)) + "#".repeat(fill % line.length);
  };
  const MiB16 = 16 * 1024 * 1024;
  const cases: Array<[string, () => void, RegExp]> = [
    ["a link to /dev/zero", () => symlinkSync("/dev/zero", lock), /it is a device, not a regular file/],
    ["a FIFO", () => execFileSync("mkfifo", [lock]), /it is a FIFO, not a regular file/],
    ["a directory", () => mkdirSync(lock), /it is a directory, not a regular file/],
    [
      "a file of 16 MiB and a byte",
      () => writeFileSync(lock, padded(MiB16 + 1)),
      /has more than 16,777,216 bytes/,
    ],
  ];
  for (const [what, make, message] of cases) {
    rmSync(lock, { recursive: true, force: true });
    make();
    // The real CLI in a child, killed if it hangs: a FIFO once held the open forever.
    const r = spawnSync(
      NODE,
      [NIFTYC, "build", "app.nifty", "--cache", "c", "--out", "o", ...mirrorFlags(view)],
      {
        cwd: dir,
        env: baseEnv(),
        encoding: "utf8",
        timeout: 30_000,
        killSignal: "SIGKILL",
      },
    );
    t.is(r.status, 1, `${what}: ${r.stderr}`);
    t.regex(r.stderr, /niftyc: error: .*app\.nifty\.lock.* \[NIFTY604\]/, what);
    t.regex(r.stderr, message, what);
    t.regex(r.stderr, /hint: the lock is written by niftyc: delete it and run `niftyc lock` again/, what);
  }
  rmSync(lock, { recursive: true, force: true });
  writeFileSync(lock, padded(MiB16));
  const atCap = await buildAppRootfs(dir, view, "--locked", "--offline");
  t.is(atCap.code, 0, atCap.stderr);
  writeFileSync(lock, honest);
  const again = await buildAppRootfs(dir, view, "--locked", "--offline");
  t.is(again.code, 0, again.stderr);
});

test("two whole-package lines: the dpkg status lists the packages of both", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\nPACKAGE nifty-data\n");
  const r = await buildAppRootfs(dir, (await debianArchive()).view());
  t.is(r.code, 0, r.stderr);
  const root = join(dir, "root");
  mkdirSync(root);
  execFileSync("tar", ["-xf", join(dir, "o", "rootfs.tar"), "-C", root]);
  const listed = execFileSync("dpkg-query", [`--admindir=${root}/var/lib/dpkg`, "-W", "-f=${Package}\n"], {
    encoding: "utf8",
  });
  t.is(listed, "nifty-data\nnifty-pager\n");
});

test("a warm build into a fresh --out restores the SBOM without reading a package, and says the steps' notes again; with the kept outputs gone the same SBOM is made anew", async (t) => {
  if (!requireArchive(t)) return;
  t.timeout(120_000);
  const { dir } = await project(t, "PACKAGE nifty-app\n");
  const view = (await debianArchive()).view();
  const sbomBuild = (out: string, ...extra: string[]) =>
    niftyc(dir, [
      "build",
      "app.nifty",
      "--cache",
      "c",
      "--out",
      out,
      "--format",
      "rootfs,oci,sbom",
      ...mirrorFlags(view),
      ...extra,
    ]);
  const cold = await sbomBuild("o");
  t.is(cold.code, 0, cold.stderr);
  const sbom = readFileSync(join(dir, "o", "sbom.spdx.json"), "utf8");
  t.regex(sbom, /nifty-base/, "the SBOM names the packages");
  const notes = (stderr: string) =>
    stderr.split("\n").filter((l) => l.startsWith("note: ") && l.includes("maintainer scripts not run"));
  t.is(notes(cold.stderr).length, 1);

  // In a child process, to see which modules it loads.
  const loads = join(dir, "loads.txt");
  const warm = spawnSync(
    NODE,
    [
      "--import",
      join(ROOT, "test/pipeline/record-loads.ts"),
      NIFTYC,
      "build",
      "app.nifty",
      "--cache",
      "c",
      "--out",
      "o2",
      "--format",
      "rootfs,oci,sbom",
      ...mirrorFlags(view),
    ],
    {
      cwd: dir,
      env: baseEnv({ NIFTY_TEST_LOADS: loads }),
      encoding: "utf8",
      timeout: 60_000,
      killSignal: "SIGKILL",
    },
  );
  t.is(warm.status, 0, warm.stderr);
  t.deepEqual(notes(warm.stderr), notes(cold.stderr), "the step's note is said again");
  t.is(readFileSync(join(dir, "o2", "sbom.spdx.json"), "utf8"), sbom);
  const warmLoads = readFileSync(loads, "utf8");
  t.notRegex(warmLoads, /src\/debian\/deb\.ts/, "no package's contents were read");
  t.notRegex(warmLoads, /tar-stream/);

  // Without the assembled outputs the steps replay and the SBOM is collected again: the same bytes.
  rmSync(join(dir, "c", "assembled"), { recursive: true });
  const again = await sbomBuild("o3");
  t.is(again.code, 0, again.stderr);
  t.deepEqual(notes(again.stderr), notes(cold.stderr));
  t.is(readFileSync(join(dir, "o3", "sbom.spdx.json"), "utf8"), sbom);
  t.deepEqual(listing(dir, "o3"), listing(dir, "o"));
});

test("lock -q: no progress, only the note that the lock was written", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  const r = await niftyc(dir, [
    "lock",
    "app.nifty",
    "-q",
    "--cache",
    "c",
    ...mirrorFlags((await debianArchive()).view()),
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /^note: wrote app\.nifty\.lock/m);
  t.is(r.stderr.split("\n").filter((l) => l.startsWith("note:")).length, 1, r.stderr);
  t.true(existsSync(join(dir, "app.nifty.lock")));
});

test("--locked after the ARCHIVE lines changed: NIFTY603 at the ARCHIVE line, not at a PACKAGE line", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  const view = (await debianArchive()).view();
  t.is((await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags(view)])).code, 0);
  // One suite dropped: the lock was resolved against both.
  const text = readFileSync(join(dir, "app.nifty"), "utf8").split("\n");
  writeFileSync(join(dir, "app.nifty"), [text[0], ...text.slice(2)].join("\n"));
  const r = await buildAppRootfs(dir, view, "--locked");
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    /^app\.nifty:1:1: error: --locked, but app\.nifty\.lock was resolved against other suites than the recipe's ARCHIVE lines \[NIFTY603\]/m,
  );
});

test("--offline for a platform the lock has no section for: NIFTY603 says so, and the lock command to run names the platform", async (t) => {
  if (!requireArchive(t)) return;
  const { dir } = await project(t, "PACKAGE nifty-pager\n");
  const view = (await debianArchive()).view();
  t.is((await niftyc(dir, ["lock", "app.nifty", "--cache", "c", ...mirrorFlags(view)])).code, 0);
  const r = await buildAppRootfs(dir, view, "--offline", "--platform", "linux/arm64");
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    /--offline, but the lock has no section for linux\/arm64, so the archive's indices are needed \[NIFTY603\]/,
  );
  t.regex(r.stderr, /hint: resolve once with the network: `niftyc lock app\.nifty --platform linux\/arm64`/);
});
