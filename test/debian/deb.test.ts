// Reading whole .debs: every entry checked against what `dpkg-deb -x`
// unpacks from the same file, control members against `dpkg-deb -e`.
import test from "ava";
import type { ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import type { Header } from "tar-stream";
import { buildTar } from "../support/tar-stream.ts";
import { openStore } from "../../src/cache/store.ts";
import type { Store } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { readDeb } from "../../src/debian/deb.ts";
import type { DebContents, DebEntry } from "../../src/debian/deb.ts";
import { fieldValue } from "../../src/debian/fields.ts";
import { CANARY, debianArchive, requireArchive } from "../support/debian-archive.ts";
import { tempDir } from "../fetch/helpers/util.ts";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

async function readPackage(
  name: string,
  s?: Store,
): Promise<{ store: Store; contents: DebContents & { fromCache: boolean }; deb: string }> {
  const a = await debianArchive();
  const store = s ?? (await openStore(await tempDir("niftyc-deb-")));
  const p = a.pkg(name, name === "nifty-lib" ? "1.0-1" : undefined);
  const blob = await store.putFile(p.path, p.sha256);
  return { store, contents: await readDeb(store, blob.digest, `${p.name} ${p.version}`), deb: p.path };
}

/** What dpkg-deb -x unpacked, as DebEntry-like records, in path order. */
async function unpacked(deb: string): Promise<
  Map<
    string,
    {
      type: DebEntry["type"];
      mode: number;
      uid: number;
      gid: number;
      size?: number;
      target?: string;
      sha256?: string;
      ino: number;
    }
  >
> {
  const dir = await tempDir("niftyc-deb-x-");
  await run("dpkg-deb", ["-x", deb, dir]);
  const out = new Map<
    string,
    {
      type: DebEntry["type"];
      mode: number;
      uid: number;
      gid: number;
      size?: number;
      target?: string;
      sha256?: string;
      ino: number;
    }
  >();
  const walk = async (rel: string) => {
    for (const name of (await fsp.readdir(path.join(dir, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await fsp.lstat(path.join(dir, p));
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, ino: st.ino };
      if (st.isDirectory()) {
        out.set(p, { ...base, type: "dir" });
        await walk(p);
      } else if (st.isSymbolicLink())
        out.set(p, { ...base, type: "symlink", target: await fsp.readlink(path.join(dir, p)) });
      else
        out.set(p, {
          ...base,
          type: "file",
          size: st.size,
          sha256: `sha256:${createHash("sha256")
            .update(await fsp.readFile(path.join(dir, p)))
            .digest("hex")}`,
        });
    }
  };
  await walk("");
  return out;
}

async function checkAgainstDpkgDeb(t: ExecutionContext, name: string): Promise<DebEntry[]> {
  const { store, contents, deb } = await readPackage(name);
  const disk = await unpacked(deb);
  t.deepEqual(contents.entries.map((e) => e.path).sort(), [...disk.keys()].sort(), `${name}: the same paths`);
  for (const e of contents.entries) {
    const d = disk.get(e.path)!;
    t.is(e.mode, e.type === "symlink" ? 0o777 : d.mode, `${name}: mode of ${e.path}`);
    if (isRoot) t.deepEqual([e.uid, e.gid], [d.uid, d.gid], `${name}: owner of ${e.path}`);
    if (e.type === "hardlink") {
      t.is(d.type, "file");
      t.is(disk.get(e.target!)!.ino, d.ino, `${name}: ${e.path} is a hard link to ${e.target}`);
      t.is(e.digest, d.sha256);
    } else t.is<string, string>(e.type, d.type, `${name}: type of ${e.path}`);
    if (e.type === "symlink") t.is(e.target, d.target);
    if (e.type === "file") {
      t.is(e.size, d.size);
      t.is(e.digest, d.sha256, `${name}: bytes of ${e.path}`);
      t.true(await store.has(e.digest!));
    }
  }
  return contents.entries;
}

for (const name of ["busybox-static", "dropbear-bin", "libc6", "nifty-base"]) {
  test(`${name}: every data.tar entry matches what dpkg-deb -x unpacks, file bytes in the store`, async (t) => {
    if (!requireArchive(t)) return;
    const entries = await checkAgainstDpkgDeb(t, name);
    const types = new Set(entries.map((e) => e.type));
    t.true(types.has("file") && types.has("dir"));
  });
}

test("libc6 holds its loader and libc.so.6 under lib/ (bookworm is not usr-merged in packages) and the lib64 link", async (t) => {
  if (!requireArchive(t)) return;
  const { contents } = await readPackage("libc6");
  const at = (p: string) => contents.entries.find((e) => e.path === p);
  t.like(at("lib/x86_64-linux-gnu/libc.so.6"), { type: "file", mode: 0o755, uid: 0, gid: 0 });
  t.like(at("lib64/ld-linux-x86-64.so.2"), {
    type: "symlink",
    target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  });
  t.is(fieldValue(contents.control, "Multi-Arch"), "same");
  t.deepEqual(contents.conffiles, [{ path: "/etc/ld.so.conf.d/x86_64-linux-gnu.conf", flags: [] }]);
});

test("control members: the stanza, conffiles, md5sums as dpkg-deb -e gives them, and the maintainer scripts present", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const expected: Record<string, { scripts: string[]; triggers: boolean }> = {
    "busybox-static": { scripts: [], triggers: true },
    "dropbear-bin": { scripts: [], triggers: false },
    gawk: { scripts: ["postinst", "prerm"], triggers: false },
    libc6: { scripts: ["preinst", "postinst", "postrm"], triggers: true },
    "nifty-base": { scripts: ["postinst", "prerm"], triggers: false },
    "nifty-app": { scripts: [], triggers: false },
  };
  for (const [name, want] of Object.entries(expected)) {
    const { contents, deb, store } = await readPackage(name);
    const dir = await tempDir("niftyc-deb-e-");
    await run("dpkg-deb", ["-e", deb, dir]);
    const members = (await fsp.readdir(dir)).sort();
    t.deepEqual(contents.controlFiles, members, name);
    t.deepEqual(contents.scripts, want.scripts, name);
    t.is(contents.triggers, want.triggers, name);
    const p = a.pkg(name);
    t.is(fieldValue(contents.control, "Package"), p.name);
    t.is(fieldValue(contents.control, "Version"), p.version);
    t.is(
      contents.md5sumsText,
      members.includes("md5sums") ? await fsp.readFile(path.join(dir, "md5sums"), "utf8") : undefined,
    );
    t.is(
      contents.conffilesText,
      members.includes("conffiles") ? await fsp.readFile(path.join(dir, "conffiles"), "utf8") : undefined,
    );
    // MD5 only where the dpkg database needs it: a conffile's, of its bytes; none for what md5sums lists.
    const conffiles = new Set(contents.conffiles.map((c) => c.path.slice(1)));
    for (const e of contents.entries.filter((e) => e.type === "file")) {
      if (!conffiles.has(e.path)) t.is(e.md5, undefined, `${name}: ${e.path}`);
      else {
        const bytes = await fsp.readFile(store.blobPath(e.digest!));
        t.is(e.md5, createHash("md5").update(bytes).digest("hex"), `${name}: ${e.path}`);
      }
    }
  }
  const { contents } = await readPackage("nifty-base");
  t.is(
    fieldValue(contents.control, "Description"),
    "niftyc fixture: a base package with maintainer scripts\n Its postinst and prerm fail loudly if anything runs them.\n .\n The line above is an empty paragraph line.",
  );
  t.like(
    contents.entries.find((e) => e.path === "usr/bin/nifty-base-again"),
    { type: "hardlink", target: "usr/bin/nifty-base" },
  );
  t.false(existsSync(CANARY), "no maintainer script ran");
});

test("the entry list is cached under the .deb's digest, and read again when a file blob has gone", async (t) => {
  if (!requireArchive(t)) return;
  const { store, contents } = await readPackage("dropbear-bin");
  t.false(contents.fromCache);
  const again = await readPackage("dropbear-bin", store);
  t.true(again.contents.fromCache);
  t.deepEqual({ ...again.contents, fromCache: false }, contents);
  const victim = contents.entries.find((e) => e.type === "file")!;
  await fsp.rm(store.blobPath(victim.digest!), { force: true });
  const reread = await readPackage("dropbear-bin", store);
  t.false(reread.contents.fromCache);
  t.true(await store.has(victim.digest!));
});

// ---------------------------------------------------------------------------
// Hand-made hostile packages

async function tarGz(
  entries: { header: Partial<Header> & { name: string }; body?: string }[],
): Promise<Buffer> {
  return gzipSync(await buildTar(entries.map((e) => ({ ...e, header: { mode: 0o644, ...e.header } }))));
}

function ar(members: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [Buffer.from("!<arch>\n")];
  for (const [name, data] of members) {
    const h = `${name.padEnd(16)}${"0".padEnd(12)}${"0".padEnd(6)}${"0".padEnd(6)}${"100644".padEnd(8)}${String(data.length).padEnd(10)}\`\n`;
    parts.push(Buffer.from(h, "latin1"), data);
    if (data.length % 2) parts.push(Buffer.from("\n"));
  }
  return Buffer.concat(parts);
}

const CONTROL =
  "Package: hostile\nVersion: 1\nArchitecture: all\nMaintainer: x <x@invalid>\nDescription: x\n";

async function hostile(
  data: { header: Partial<Header> & { name: string }; body?: string }[],
  control: string | null,
) {
  const store = await openStore(await tempDir("niftyc-deb-"));
  const controlTar = await tarGz(
    control === null
      ? [{ header: { name: "./", type: "directory", mode: 0o755 } }]
      : [{ header: { name: "./control" }, body: control }],
  );
  const deb = ar([
    ["debian-binary", Buffer.from("2.0\n")],
    ["control.tar.gz", controlTar],
    ["data.tar.gz", await tarGz(data)],
  ]);
  const blob = await store.putBuffer(deb);
  return readDeb(store, blob.digest, "hostile 1");
}

test("hostile or unsupported packages are refused with a clear error", async (t) => {
  const cases: [
    string,
    { header: Partial<Header> & { name: string }; body?: string }[],
    string | null,
    string,
    RegExp,
  ][] = [
    [
      "climbing name",
      [{ header: { name: "./../../etc/evil" }, body: "x" }],
      CONTROL,
      "NIFTY122",
      /refusing archive member "\.\/\.\.\/\.\.\/etc\/evil" in hostile 1: its name contains "\.\."/,
    ],
    [
      "absolute name",
      [{ header: { name: "/etc/evil" }, body: "x" }],
      CONTROL,
      "NIFTY122",
      /its name is absolute/,
    ],
    [
      "device",
      [{ header: { name: "./dev/null", type: "character-device", devmajor: 1, devminor: 3 } }],
      CONTROL,
      "NIFTY627",
      /^cannot install hostile 1: its data\.tar entry dev\/null is a character-device/,
    ],
    [
      "dangling hard link",
      [{ header: { name: "./a", type: "link", linkname: "./b" } }],
      CONTROL,
      "NIFTY627",
      /its hard link a names b, which is not an earlier regular file/,
    ],
    ["no control file", [{ header: { name: "./a" }, body: "x" }], null, "NIFTY627", /it has no control file/],
    [
      "twice the same path",
      [
        { header: { name: "./a" }, body: "x" },
        { header: { name: "./a" }, body: "y" },
      ],
      CONTROL,
      "NIFTY627",
      /its data\.tar has a twice/,
    ],
    // A newline would split dpkg's .list line in two (the second a path the package never had); ESC drives terminals.
    [
      "newline in a file name",
      [{ header: { name: "./usr/a\n/etc/shadow" }, body: "x" }],
      CONTROL,
      "NIFTY627",
      /its data\.tar has a path with a control character: "usr\/a\\n\/etc\/shadow"/,
    ],
    [
      "ESC in a directory name",
      [{ header: { name: "./usr/\u001b[2J/", type: "directory", mode: 0o755 } }],
      CONTROL,
      "NIFTY627",
      /a path with a control character: "usr\/\\u001b\[2J"/,
    ],
  ];
  for (const [what, data, control, code, message] of cases) {
    const err = await t.throwsAsync(hostile(data, control), { instanceOf: NiftyError }, what);
    t.is(err?.code as string | undefined, code, what);
    t.regex(err?.message ?? "", message, what);
  }
  const ok = await hostile(
    [
      { header: { name: "./", type: "directory", mode: 0o755 } },
      { header: { name: "./usr/", type: "directory", mode: 0o755 } },
      { header: { name: "./usr/a", mode: 0o4755, uid: 5, gid: 6, uname: "u", gname: "g" }, body: "hi" },
    ],
    CONTROL,
  );
  t.deepEqual(ok.entries, [
    { path: "usr", type: "dir", mode: 0o755, uid: 0, gid: 0 },
    {
      path: "usr/a",
      type: "file",
      mode: 0o4755,
      uid: 5,
      gid: 6,
      uname: "u",
      gname: "g",
      digest: `sha256:${createHash("sha256").update("hi").digest("hex")}`,
      size: 2,
      md5: createHash("md5").update("hi").digest("hex"),
    },
  ]);
});

/** A tar of these files, xz-compressed by the xz tool, as dpkg-deb writes data.tar.xz. */
async function tarXz(dir: string, files: Record<string, string>): Promise<Buffer> {
  const root = await fsp.mkdtemp(path.join(dir, "t-"));
  for (const [name, body] of Object.entries(files)) await fsp.writeFile(path.join(root, name), body);
  const archive = path.join(dir, `${path.basename(root)}.tar`);
  await run("tar", ["-C", root, "--owner=0", "--group=0", "-cf", archive, ...Object.keys(files)]);
  await run("xz", ["-6", archive]);
  return fsp.readFile(`${archive}.xz`);
}

test("a .deb whose data.tar.xz is corrupt mid-stream is a decompression error naming the package, and no contents record names its files", async (t) => {
  const dir = await tempDir("niftyc-deb-xz-");
  const store = await openStore(path.join(dir, "store"));
  // Incompressible bytes, so the damage lands inside the second file's data, after the first is stored.
  const noise = (seed: string) =>
    Array.from({ length: 4096 }, (_, i) => createHash("sha256").update(`${seed}${i}`).digest("hex")).join("");
  const data = await tarXz(dir, { a: noise("a"), b: noise("b") });
  const bad = Buffer.from(data);
  bad[Math.floor(bad.length * 0.75)]! ^= 0x55;
  const controlTar = await tarGz([{ header: { name: "./control" }, body: CONTROL }]);
  const deb = (member: Buffer) =>
    ar([
      ["debian-binary", Buffer.from("2.0\n")],
      ["control.tar.gz", controlTar],
      ["data.tar.xz", member],
    ]);
  const good = await store.putBuffer(deb(data));
  t.is((await readDeb(store, good.digest, "hostile 1")).entries.length, 2);
  const broken = await store.putBuffer(deb(bad));
  const err = await t.throwsAsync(readDeb(store, broken.digest, "hostile 1"), { instanceOf: NiftyError });
  t.is(err?.code, "NIFTY114", err?.message);
  t.regex(err!.message, /^cannot decompress the \.deb of hostile 1 \(\S+\): xz: Compressed data is corrupt$/);
  t.is(await store.readRecord("deb-contents", broken.digest.slice(7)), undefined);
});
