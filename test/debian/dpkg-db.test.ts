// The dpkg database niftyc writes, read back by the real dpkg-query, and
// compared file for file with what the real dpkg writes when it installs the
// same packages (those without maintainer scripts, so nothing fetched runs).
import test from "ava";
import type { ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { openStore } from "../../src/cache/store.ts";
import type { Store } from "../../src/cache/store.ts";
import { readDeb } from "../../src/debian/deb.ts";
import {
  ADMIN_DIR,
  dpkgDatabase,
  formatRelations,
  installedFromDeb,
  statusStanza,
} from "../../src/debian/dpkg-db.ts";
import { installedNames, statusDFiles } from "../../src/debian/dpkg-db.ts";
import { sourcePackage } from "../../src/debian/fields.ts";
import { debPurl } from "../../src/emit/sbom.ts";
import { debianDistro } from "../../src/debian/releases.ts";
import type { InstalledPackage } from "../../src/debian/dpkg-db.ts";
import { buildSyntheticDeb, debianArchive, requireArchive } from "../support/debian-archive.ts";
import type { FixturePackage } from "../support/debian-archive.ts";
import { tempDir } from "../fetch/helpers/util.ts";

const run = promisify(execFile);

async function installed(s: Store, pkgs: FixturePackage[]): Promise<InstalledPackage[]> {
  const out: InstalledPackage[] = [];
  for (const p of pkgs) {
    const blob = await s.putFile(p.path, p.sha256);
    out.push(installedFromDeb(await readDeb(s, blob.digest, `${p.name} ${p.version}`)));
  }
  return out;
}

/** Write the database into `root` (an image tree on disk). */
async function writeDb(root: string, pkgs: InstalledPackage[]): Promise<void> {
  for (const e of dpkgDatabase(pkgs)) {
    const p = path.join(root, e.path);
    if (e.type === "dir") await fsp.mkdir(p, { recursive: true });
    else await fsp.writeFile(p, e.content);
  }
}

async function dpkgQuery(admindir: string, ...args: string[]): Promise<string> {
  return (await run("dpkg-query", [`--admindir=${admindir}`, ...args])).stdout;
}

test("dpkg-query reads back the database of real packages: names, versions, status, file lists", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const s = await openStore(await tempDir("niftyc-dpkgdb-"));
  const names = ["libc6", "busybox-static", "dropbear-bin", "nifty-base"];
  const pkgs = await installed(
    s,
    names.map((n) => a.pkg(n)),
  );
  const root = await tempDir("niftyc-dpkgdb-root-");
  await writeDb(root, pkgs);
  const admin = path.join(root, ADMIN_DIR);

  const listed = await dpkgQuery(admin, "-W", "-f=${Package} ${Version} ${Status}\\n");
  t.is(
    listed,
    [...names]
      .sort()
      .map((n) => `${n} ${a.pkg(n).version} install ok installed\n`)
      .join(""),
  );

  const libcFiles = (await dpkgQuery(admin, "-L", "libc6")).split("\n").filter(Boolean);
  t.is(libcFiles[0], "/.");
  t.true(libcFiles.includes("/lib/x86_64-linux-gnu/libc.so.6"));
  t.true(libcFiles.includes("/lib64/ld-linux-x86-64.so.2"));
  t.deepEqual((await dpkgQuery(admin, "-L", "busybox-static")).split("\n").filter(Boolean), [
    "/.",
    ...(await readDeb(s, a.pkg("busybox-static").sha256, "busybox-static")).entries.map((e) => `/${e.path}`),
  ]);
  // Multi-Arch: same is filed as name:arch, and dpkg-query finds it by either name.
  t.true((await fsp.readdir(path.join(admin, "info"))).includes("libc6:amd64.list"));
  t.is(
    await dpkgQuery(admin, "-W", "-f=${Package}:${Architecture} ${Conffiles}\\n", "libc6"),
    "libc6:amd64  /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab\n",
  );
  t.is((await dpkgQuery(admin, "-S", "/bin/busybox")).trim(), "busybox-static: /bin/busybox");
  // dpkg's own consistency check finds nothing missing (lists, md5sums).
  const audit = await run("dpkg", [`--admindir=${admin}`, "--audit"]);
  t.is(audit.stdout + audit.stderr, "");
});

function requireRoot(t: ExecutionContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI) t.fail("comparing with dpkg --root -i needs root");
  else {
    t.log("SKIPPED outside CI: comparing with dpkg --root -i needs root");
    t.pass();
  }
  return false;
}

/** Packages without maintainer scripts: the real dpkg can install them here without running anything of theirs. */
const SCRIPTLESS = [
  "dropbear-bin",
  "gcc-12-base",
  "nifty-app",
  "nifty-awk",
  "nifty-data",
  "nifty-essential",
  "nifty-lib",
  "nifty-mta-b",
];

test("the database is what the real dpkg writes for the same packages, byte for byte", async (t) => {
  if (!requireArchive(t) || !requireRoot(t)) return;
  const a = await debianArchive();
  const s = await openStore(await tempDir("niftyc-dpkgdb-"));
  const pkgs = SCRIPTLESS.map((n) => (n === "nifty-lib" ? a.pkg(n, "1.0-1") : a.pkg(n)));
  const ref = await tempDir("niftyc-dpkgdb-ref-");
  await fsp.mkdir(path.join(ref, ADMIN_DIR), { recursive: true });
  await run("dpkg", [
    `--root=${ref}`,
    "--force-depends",
    "--force-not-root",
    "--no-triggers",
    "-i",
    ...pkgs.map((p) => p.path),
  ]);

  const ours = dpkgDatabase(await installed(s, pkgs));
  for (const e of ours) {
    if (e.type !== "file") {
      t.true((await fsp.stat(path.join(ref, e.path))).isDirectory(), e.path);
      continue;
    }
    if (e.path === `${ADMIN_DIR}/available`) continue; // dpkg -i leaves it absent; dpkg-query and dselect want it present
    t.is(e.content, await fsp.readFile(path.join(ref, e.path), "utf8"), e.path);
  }
  // Every info file dpkg wrote, ours wrote too.
  const theirs = (await fsp.readdir(path.join(ref, ADMIN_DIR, "info"))).sort();
  t.deepEqual(
    ours.filter((e) => e.path.startsWith(`${ADMIN_DIR}/info/`)).map((e) => path.basename(e.path)),
    theirs,
  );
});

test("a package without md5sums: its md5sums made from every file's MD5, and its conffile's in Conffiles, as the real dpkg writes them", async (t) => {
  if (!requireArchive(t)) return;
  const work = await tempDir("niftyc-dpkgdb-nosums-");
  const conf = "answer = 42\n";
  const deb = await buildSyntheticDeb(
    {
      name: "nifty-nosums",
      version: "1.0-1",
      fields: [["Description", "niftyc fixture: no md5sums member"]],
      files: [
        { path: "/etc/nifty-nosums.conf", content: conf },
        { path: "/usr/bin/nifty-nosums", content: "#!/bin/sh\necho nosums\n", mode: 0o755 },
        { path: "/usr/share/doc/nifty-nosums/README", content: "no sums\n" },
      ],
      hardlinks: [{ path: "/usr/bin/nifty-nosums-again", target: "/usr/bin/nifty-nosums" }],
      conffiles: ["/etc/nifty-nosums.conf"],
      md5sums: false,
    },
    path.join(work, "build"),
    path.join(work, "debs"),
  );
  const s = await openStore(path.join(work, "store"));
  const blob = await s.putFile(deb);
  const contents = await readDeb(s, blob.digest, "nifty-nosums 1.0-1");
  t.false(contents.controlFiles.includes("md5sums"));
  const db = dpkgDatabase([installedFromDeb(contents)]);
  const file = (p: string) =>
    (db.find((e) => e.path === p && e.type === "file") as { content: string })?.content;
  const md5 = (text: string) => createHash("md5").update(text).digest("hex");
  const sums = file(`${ADMIN_DIR}/info/nifty-nosums.md5sums`)?.split("\n").filter(Boolean).sort();
  t.deepEqual(
    sums,
    [
      `${md5(conf)}  etc/nifty-nosums.conf`,
      `${md5("#!/bin/sh\necho nosums\n")}  usr/bin/nifty-nosums`,
      `${md5("#!/bin/sh\necho nosums\n")}  usr/bin/nifty-nosums-again`,
      `${md5("no sums\n")}  usr/share/doc/nifty-nosums/README`,
    ].sort(),
  );
  t.true(file(`${ADMIN_DIR}/status`)?.includes(`Conffiles:\n /etc/nifty-nosums.conf ${md5(conf)}\n`));
  if (process.getuid?.() !== 0) return;
  // The real dpkg makes the same files for it.
  const ref = await tempDir("niftyc-dpkgdb-nosums-ref-");
  await fsp.mkdir(path.join(ref, ADMIN_DIR), { recursive: true });
  await run("dpkg", [`--root=${ref}`, "--force-not-root", "--no-triggers", "-i", deb]);
  for (const p of [`${ADMIN_DIR}/status`, `${ADMIN_DIR}/info/nifty-nosums.md5sums`])
    t.is(file(p), await fsp.readFile(path.join(ref, p), "utf8"), p);
});

test("the real dpkg takes the database as its own: it installs another package on top", async (t) => {
  if (!requireArchive(t) || !requireRoot(t)) return;
  const a = await debianArchive();
  const s = await openStore(await tempDir("niftyc-dpkgdb-"));
  const root = await tempDir("niftyc-dpkgdb-root-");
  await writeDb(root, await installed(s, [a.pkg("libc6"), a.pkg("nifty-base"), a.pkg("nifty-app")]));
  await run("dpkg", [`--root=${root}`, "--force-depends", "--no-triggers", "-i", a.pkg("nifty-pager").path]);
  const admin = path.join(root, ADMIN_DIR);
  t.is(
    await dpkgQuery(admin, "-W", "-f=${Package} ${db:Status-Abbrev}\\n"),
    "libc6 ii \nnifty-app ii \nnifty-base ii \nnifty-pager ii \n",
  );
  const status = await fsp.readFile(path.join(admin, "status"), "utf8");
  t.true(
    status.includes(
      "Package: nifty-app\nStatus: install ok installed\nPriority: optional\nSection: utils\nInstalled-Size: 12\nOrigin: niftyc\n",
    ),
  );
});

test("status stanzas: dpkg's field order, booleans only when yes, relations respelt, Conffiles with their MD5", (t) => {
  const field = (name: string, value: string) => ({ name, value });
  const pkg: InstalledPackage = {
    control: [
      field("Package", "p"),
      field("Version", "1"),
      field("Architecture", "amd64"),
      field("Homepage", "https://x.invalid"),
      field("Description", "short\n long"),
      field("Essential", "no"),
      field("Depends", "a(>=1),b|c (<2)"),
      field("Maintainer", "m <m@x>"),
      field("Multi-Arch", "same"),
      field("Built-Using", "s (= 1)"),
    ],
    paths: ["etc", "etc/p.conf"],
    fileMd5s: [{ path: "etc/p.conf", md5: "0".repeat(32) }],
    conffiles: [{ path: "/etc/p.conf", md5: "0".repeat(32), flags: ["remove-on-upgrade"] }],
    conffilesText: "remove-on-upgrade /etc/p.conf\n",
  };
  t.is(
    statusStanza(pkg),
    "Package: p\nStatus: install ok installed\nMaintainer: m <m@x>\nArchitecture: amd64\nMulti-Arch: same\nVersion: 1\nDepends: a (>= 1), b | c (<= 2)\n" +
      `Conffiles:\n /etc/p.conf ${"0".repeat(32)} remove-on-upgrade\nDescription: short\n long\nHomepage: https://x.invalid\nBuilt-Using: s (= 1)\n`,
  );
  const db = dpkgDatabase([pkg]);
  t.deepEqual(
    db.map((e) => e.path),
    [
      "/var",
      "/var/lib",
      "/var/lib/dpkg",
      "/var/lib/dpkg/available",
      "/var/lib/dpkg/info",
      "/var/lib/dpkg/info/format",
      "/var/lib/dpkg/info/p:amd64.conffiles",
      "/var/lib/dpkg/info/p:amd64.list",
      "/var/lib/dpkg/info/p:amd64.md5sums",
      "/var/lib/dpkg/status",
      "/var/lib/dpkg/triggers",
      "/var/lib/dpkg/triggers/Unincorp",
      "/var/lib/dpkg/updates",
    ],
  );
  const file = (p: string) =>
    db.find((e) => e.path === p && e.type === "file") as { content: string } | undefined;
  t.is(file("/var/lib/dpkg/info/p:amd64.list")?.content, "/.\n/etc\n/etc/p.conf\n");
  t.is(file("/var/lib/dpkg/info/p:amd64.md5sums")?.content, `${"0".repeat(32)}  etc/p.conf\n`);
  t.is(formatRelations("x:any  (  >>  2 )"), "x:any (>> 2)");
  t.is(formatRelations("weird [amd64]"), "weird [amd64]");
  t.throws(() => dpkgDatabase([pkg, pkg]), { message: "the package p:amd64 is installed twice" });
});

test("status.d: the stanza, md5sums merged with an earlier list by path and sorted; a name that is not a package name is refused", (t) => {
  const control = [
    { name: "Package", value: "libfoo1" },
    { name: "Version", value: "1:2.0-1" },
    { name: "Architecture", value: "amd64" },
    { name: "Source", value: "foo" },
  ];
  const [a, b, c, d] = ["a", "b", "c", "d"].map((x) => x.repeat(32));
  const files = statusDFiles(
    control,
    new Map([
      ["/usr/lib/libfoo.so.1", b!],
      ["/bin/foo", c!],
    ]),
    `${a}  usr/lib/libfoo.so.1\n${d}  etc/foo\n`,
  );
  t.is(files.stanzaPath, "/var/lib/dpkg/status.d/libfoo1");
  const stanza =
    "Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nSource: foo\nVersion: 1:2.0-1\n\n";
  t.is(files.stanza, stanza);
  t.is(files.md5sumsPath, "/var/lib/dpkg/status.d/libfoo1.md5sums");
  t.is(files.md5sums, `${c}  bin/foo\n${d}  etc/foo\n${b}  usr/lib/libfoo.so.1\n`);
  for (const name of ["../../etc/passwd", "a/b", "..", "x"]) {
    const named = [
      { name: "Package", value: name },
      { name: "Architecture", value: "amd64" },
    ];
    t.throws(() => statusDFiles(named, new Map()), { message: /control stanza names it/ }, name);
  }
});

test("the installed packages read back from status and status.d: installed ones only, each once, sorted; a file that is no deb822 names none", (t) => {
  const stanza = (name: string, status = "install ok installed") =>
    statusDFiles(
      [
        { name: "Package", value: name },
        { name: "Version", value: "1" },
        { name: "Architecture", value: "amd64" },
      ],
      new Map(),
    ).stanza.replace("install ok installed", status);
  const status = `${stanza("zlib1g")}${stanza("gone", "deinstall ok config-files")}${stanza("libc6")}`;
  const names = installedNames([
    { path: `${ADMIN_DIR}/status`, text: status },
    { path: `${ADMIN_DIR}/status.d/libc6`, text: stanza("libc6") },
    { path: `${ADMIN_DIR}/status.d/busybox-static`, text: stanza("busybox-static") },
    { path: `${ADMIN_DIR}/status.d/junk`, text: "not a stanza\n" },
  ]);
  t.deepEqual(
    names.map((p) => `${p.name}:${p.architecture}`),
    ["busybox-static:amd64", "libc6:amd64", "zlib1g:amd64"],
  );
});

test("a suite's Debian release as package URLs name it: debian-<version>, whatever pocket", (t) => {
  t.is(debianDistro("bookworm"), "debian-12");
  t.is(debianDistro("bookworm-security"), "debian-12");
  t.is(debianDistro("bookworm-updates"), "debian-12");
  t.is(debianDistro("bookworm-backports"), "debian-12");
  t.is(debianDistro("trixie-proposed-updates"), "debian-13");
  t.is(debianDistro("buster/updates"), "debian-10");
  t.is(debianDistro("sid"), "debian-sid", "a release with no number keeps its name");
});

test("a package's source for the SBOM's purl: name, name and version, or nothing; anything else is ignored", (t) => {
  const purl = (source: string | undefined) =>
    debPurl({
      name: "libssl3",
      version: "3.0.15-1~deb12u1",
      architecture: "amd64",
      suite: "bookworm-security",
      ...((s) => (s ? { source: s } : {}))(
        sourcePackage(source === undefined ? [] : [{ name: "Source", value: source }]),
      ),
    });
  const base = "pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12";
  t.is(purl(undefined), base);
  t.is(purl("openssl"), `${base}&upstream=openssl`);
  t.is(purl("busybox (1:1.35.0-4+deb12u1)"), `${base}&upstream=busybox%401%3A1.35.0-4%2Bdeb12u1`);
  // A value no Debian tool writes never becomes a qualifier of its own.
  t.is(purl("openssl&distro=debian-99"), base);
  t.is(purl("openssl (1.0) extra"), base);
  t.is(purl("OpenSSL"), base);
});
