import test from "ava";
import { execFile } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join, posix } from "node:path";
import { promisify } from "node:util";
import {
  listApplets,
  missingLibraries,
  readElfInfo,
  scanAppletTable,
  type ElfInfo,
  treeView,
  type ImageView,
} from "../../src/image/elf.ts";
import { Tree, type TreeNode } from "../../src/image/tree.ts";
import { checkSource } from "../../src/check/source.ts";
import { Reporter } from "../../src/diagnostics/reporter.ts";
import { verifyImage } from "../../src/pipeline/verify-image.ts";

const run = promisify(execFile);

/** What readelf (binutils) says about a file's run-time needs. */
async function readelf(file: string) {
  const { stdout } = await run("readelf", ["-dlW", file], { maxBuffer: 64 << 20 });
  const all = (tag: string) =>
    [...stdout.matchAll(new RegExp(`\\(${tag}\\)\\s+[^\\[]*\\[([^\\]]*)\\]`, "g"))].map((m) => m[1]!);
  const interp = /\[Requesting program interpreter: ([^\]]*)\]/.exec(stdout)?.[1];
  return {
    interpreter: interp,
    needed: all("NEEDED"),
    soname: all("SONAME")[0],
    rpath: all("RPATH")
      .flatMap((p) => p.split(":"))
      .filter((p) => p !== ""),
    runpath: all("RUNPATH")
      .flatMap((p) => p.split(":"))
      .filter((p) => p !== ""),
  };
}

/** The host's root directory as an image. */
const host: ImageView = { exists: (p) => existsSync(p), elfInfo: (p) => readElfInfo(p) };

test("static BusyBox: no interpreter, no libraries", async (t) => {
  const info = await readElfInfo("/bin/busybox");
  t.like(info, {
    class: 64,
    endian: "little",
    machine: 62,
    isStatic: true,
    needed: [],
    runpath: [],
    rpath: [],
  });
  t.is(info?.interpreter, undefined);
  t.deepEqual(await missingLibraries("/bin/busybox", info!, host), { missing: [] });
});

test("Debian's dropbear: loader and libraries as readelf reports them", async (t) => {
  const info = await readElfInfo("/usr/sbin/dropbear");
  const ref = await readelf("/usr/sbin/dropbear");
  t.truthy(info);
  t.is(info!.interpreter, "/lib64/ld-linux-x86-64.so.2");
  t.is(info!.interpreter, ref.interpreter);
  t.deepEqual(info!.needed, ref.needed);
  for (const lib of ["libtomcrypt.so.1", "libtommath.so.1", "libz.so.1", "libcrypt.so.1", "libc.so.6"]) {
    t.true(info!.needed.includes(lib), lib);
  }
  t.false(info!.isStatic);
  t.is(info!.type, "dyn");
});

test("reads the same from a Buffer as from a file", async (t) => {
  const buf = await readFile("/usr/sbin/dropbear");
  t.deepEqual(await readElfInfo(buf), await readElfInfo("/usr/sbin/dropbear"));
});

test("shared library: soname", async (t) => {
  const info = await readElfInfo("/lib/x86_64-linux-gnu/libtomcrypt.so.1");
  t.is(info?.soname, "libtomcrypt.so.1");
  t.true(info?.needed.includes("libgmp.so.10"));
  t.is((await readElfInfo("/lib/x86_64-linux-gnu/libc.so.6"))?.soname, "libc.so.6");
});

test("not ELF: null", async (t) => {
  t.is(await readElfInfo("/etc/passwd"), null);
  t.is(await readElfInfo(Buffer.alloc(0)), null);
  t.is(await readElfInfo(Buffer.from("\x7fEL")), null);
  t.is(await readElfInfo(Buffer.from("#!/bin/sh\necho hi\n")), null);
});

test("agrees with readelf on every ELF file in /usr/bin, /usr/sbin and the system libraries", async (t) => {
  const files = new Set<string>();
  for (const dir of ["/usr/bin", "/usr/sbin", "/lib/x86_64-linux-gnu"]) {
    for (const name of await readdir(dir)) {
      if (dir.endsWith("gnu") && !/^lib.*\.so/.test(name)) continue;
      try {
        const real = realpathSync(join(dir, name));
        if ((await stat(real)).isFile()) files.add(real);
      } catch {
        // dangling symlink
      }
    }
  }
  let compared = 0;
  let withRunpath = 0;
  const list = [...files];
  const worker = async () => {
    for (let f = list.pop(); f !== undefined; f = list.pop()) {
      const info = await readElfInfo(f);
      if (!info) continue;
      const ref = await readelf(f);
      t.is(info.interpreter, ref.interpreter, f);
      t.deepEqual(info.needed, ref.needed, f);
      t.is(info.soname, ref.soname, f);
      t.deepEqual(info.rpath, ref.rpath, f);
      t.deepEqual(info.runpath, ref.runpath, f);
      compared++;
      if (info.runpath.length > 0) withRunpath++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  t.true(compared > 500, `compared ${compared}`);
  t.true(withRunpath > 0);
});

test("truncated and corrupted ELF: null, info or a clear Error, never a hang or a stray exception", async (t) => {
  const whole = await readFile("/usr/sbin/dropbear");
  const dynOffset = Number(
    /Dynamic section at offset (0x[0-9a-f]+)/.exec(
      (await run("readelf", ["-d", "/usr/sbin/dropbear"])).stdout,
    )![1],
  );
  let errors = 0;
  const check = async (buf: Buffer, what: string) => {
    const r = await readElfInfo(buf).catch((e: Error) => e);
    if (r instanceof Error) {
      errors++;
      t.regex(r.message, /^malformed ELF: /, `${what}: ${r.stack}`);
    } else if (r !== null) {
      t.is(typeof r.machine, "number", what);
    }
  };
  for (let len = 0; len < whole.length; len += len < 0x400 ? 1 : 61)
    await check(whole.subarray(0, len), `length ${len}`);
  t.true((await readElfInfo(whole.subarray(0, 100)).catch((e: Error) => e)) instanceof Error);
  // Overwrite a few bytes of the headers and strings, or of the dynamic section, deterministically.
  for (let i = 0; i < 3000; i++) {
    const h = createHash("sha256").update(`mutation ${i}`).digest();
    const copy = Buffer.from(whole);
    const [base, size] = i % 2 === 0 ? [0, 0x1000] : [dynOffset, 32 * 16];
    for (let k = 0; k < 1 + (h[0]! % 4); k++) copy[base + (h.readUInt16LE(2 + 2 * k) % size)] = h[20 + k]!;
    await check(copy, `mutation ${i}`);
  }
  t.true(errors > 0);
});

// A minimal ELF image built here: one PT_LOAD holding a dynamic string table, one PT_DYNAMIC.
function makeElf(opts: {
  klass: 32 | 64;
  big: boolean;
  needed: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
  interp?: string;
}): Buffer {
  const is64 = opts.klass === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phnum = 2 + (opts.interp ? 1 : 0);
  const strs: string[] = [];
  let strtab = Buffer.from([0]);
  const addStr = (s: string) => {
    const off = strtab.length;
    strtab = Buffer.concat([strtab, Buffer.from(s + "\0")]);
    strs.push(s);
    return off;
  };
  const dyn: Array<[number, number]> = opts.needed.map((n) => [1, addStr(n)]);
  if (opts.soname) dyn.push([14, addStr(opts.soname)]);
  if (opts.rpath) dyn.push([15, addStr(opts.rpath)]);
  if (opts.runpath) dyn.push([29, addStr(opts.runpath)]);
  const strOff = ehsize + phentsize * phnum;
  const vaddrBase = 0x400000;
  dyn.push([5, vaddrBase + strOff], [10, strtab.length], [0, 0]);
  const entSize = is64 ? 16 : 8;
  const dynOff = strOff + strtab.length;
  const interpOff = dynOff + dyn.length * entSize;
  const interp = Buffer.from((opts.interp ?? "") + "\0");
  const total = interpOff + (opts.interp ? interp.length : 0);
  const b = Buffer.alloc(total);
  const w16 = (o: number, v: number) => (opts.big ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o));
  const w32 = (o: number, v: number) => (opts.big ? b.writeUInt32BE(v, o) : b.writeUInt32LE(v, o));
  const wAddr = (o: number, v: number) =>
    is64 ? (opts.big ? b.writeBigUInt64BE(BigInt(v), o) : b.writeBigUInt64LE(BigInt(v), o)) : w32(o, v);
  b.write("\x7fELF", 0, "latin1");
  b[4] = is64 ? 2 : 1;
  b[5] = opts.big ? 2 : 1;
  b[6] = 1;
  w16(16, 3);
  w16(18, is64 ? 62 : 3);
  wAddr(is64 ? 32 : 28, ehsize);
  w16(is64 ? 54 : 42, phentsize);
  w16(is64 ? 56 : 44, phnum);
  const ph = (i: number, type: number, offset: number, size: number) => {
    const o = ehsize + i * phentsize;
    w32(o, type);
    if (is64) {
      wAddr(o + 8, offset);
      wAddr(o + 16, vaddrBase + offset);
      wAddr(o + 32, size);
    } else {
      w32(o + 4, offset);
      w32(o + 8, vaddrBase + offset);
      w32(o + 16, size);
    }
  };
  ph(0, 1, 0, total);
  ph(1, 2, dynOff, dyn.length * entSize);
  if (opts.interp) ph(2, 3, interpOff, interp.length);
  strtab.copy(b, strOff);
  dyn.forEach(([tag, val], i) => {
    wAddr(dynOff + i * entSize, tag);
    wAddr(dynOff + i * entSize + entSize / 2, val);
  });
  if (opts.interp) interp.copy(b, interpOff);
  return b;
}

test("32/64-bit, little/big-endian: soname, rpath and runpath", async (t) => {
  for (const klass of [32, 64] as const) {
    for (const big of [false, true]) {
      const buf = makeElf({
        klass,
        big,
        needed: ["liba.so.1", "libb.so.2"],
        soname: "libself.so.3",
        rpath: "/opt/r1:$ORIGIN/../r2",
        runpath: "/opt/run",
        interp: "/lib/ld.so.1",
      });
      const info = await readElfInfo(buf);
      t.like(
        info,
        {
          class: klass,
          endian: big ? "big" : "little",
          type: "dyn",
          interpreter: "/lib/ld.so.1",
          needed: ["liba.so.1", "libb.so.2"],
          soname: "libself.so.3",
          rpath: ["/opt/r1", "$ORIGIN/../r2"],
          runpath: ["/opt/run"],
          isStatic: false,
        },
        `${klass} ${big}`,
      );
    }
  }
});

test("missingLibraries: everything is found on the host", async (t) => {
  for (const prog of ["/usr/sbin/dropbear", "/usr/bin/ssh", "/usr/bin/openssl", "/usr/bin/busctl"]) {
    const info = await readElfInfo(prog);
    t.deepEqual(await missingLibraries(prog, info!, host), { missing: [] }, prog);
  }
});

test("missingLibraries: a removed library is reported with what needed it; a missing loader too", async (t) => {
  const hidden = new Set(["/lib/x86_64-linux-gnu/libgmp.so.10", "/usr/lib/x86_64-linux-gnu/libgmp.so.10"]);
  const image: ImageView = { exists: (p) => !hidden.has(p) && existsSync(p), elfInfo: (p) => readElfInfo(p) };
  const info = (await readElfInfo("/usr/sbin/dropbear"))!;
  t.deepEqual(await missingLibraries("/usr/sbin/dropbear", info, image), {
    missing: [{ library: "libgmp.so.10", neededBy: "/lib/x86_64-linux-gnu/libtomcrypt.so.1" }],
  });

  hidden
    .add("/lib64/ld-linux-x86-64.so.2")
    .add("/lib/x86_64-linux-gnu/libz.so.1")
    .add("/usr/lib/x86_64-linux-gnu/libz.so.1");
  const r = await missingLibraries("/usr/sbin/dropbear", info, image);
  t.is(r.interpreter, "/lib64/ld-linux-x86-64.so.2");
  t.deepEqual(r.missing, [
    { library: "libz.so.1", neededBy: "/usr/sbin/dropbear" },
    { library: "libgmp.so.10", neededBy: "/lib/x86_64-linux-gnu/libtomcrypt.so.1" },
  ]);

  // busctl finds its private library only through its DT_RUNPATH.
  const busctl = (await readElfInfo("/usr/bin/busctl"))!;
  const noRunpath = { ...busctl, runpath: [] };
  const r2 = await missingLibraries("/usr/bin/busctl", noRunpath, host);
  t.true(
    r2.missing.some((m) => m.library.startsWith("libsystemd-shared") && m.neededBy === "/usr/bin/busctl"),
  );
});

test("missingLibraries: search order, $ORIGIN, RPATH inheritance, skipping other machines", async (t) => {
  const lib = (needed: string[], extra: Partial<ElfInfo> = {}): ElfInfo => ({
    class: 64,
    endian: "little",
    machine: 62,
    type: "dyn",
    needed,
    runpath: [],
    rpath: [],
    isStatic: needed.length === 0,
    ...extra,
  });
  const files = new Map<string, ElfInfo | null>([
    ["/app/lib/libfoo.so.1", lib(["libbar.so.1"])],
    ["/app/private/libbar.so.1", lib([])],
    ["/usr/lib/libqux.so.1", lib([], { class: 32, machine: 3 })],
    ["/lib/libtext.so.1", null],
    ["/usr/lib/libtext.so.1", lib([])],
  ]);
  // A host without links: a path's `..` is its lexical parent.
  const image: ImageView = {
    exists: (p) => files.has(posix.normalize(p)),
    elfInfo: async (p) => files.get(posix.normalize(p)) ?? null,
  };

  // DT_RPATH of the program also serves its libraries' own DT_NEEDED.
  const prog = lib(["libfoo.so.1", "libtext.so.1"], {
    type: "exec",
    rpath: ["$ORIGIN/../lib", "${ORIGIN}/../private"],
  });
  t.deepEqual(await missingLibraries("/app/bin/prog", prog, image), { missing: [] });

  // DT_RUNPATH applies to the object's own needs only.
  const prog2 = lib(["libfoo.so.1"], { type: "exec", runpath: ["$ORIGIN/../lib", "$ORIGIN/../private"] });
  t.deepEqual(await missingLibraries("/app/bin/prog", prog2, image), {
    // The library is named by the path ld.so opened (as ldd shows it).
    missing: [{ library: "libbar.so.1", neededBy: "/app/bin/../lib/libfoo.so.1" }],
  });

  // A 32-bit file of the same name is passed over, as ld.so does.
  t.deepEqual(await missingLibraries("/bin/x", lib(["libqux.so.1"]), image), {
    missing: [{ library: "libqux.so.1", neededBy: "/bin/x" }],
  });
  // Names with a slash are paths.
  t.deepEqual(await missingLibraries("/bin/x", lib(["/app/private/libbar.so.1", "/nope/libz.so"]), image), {
    missing: [{ library: "/nope/libz.so", neededBy: "/bin/x" }],
  });
});

test("missingLibraries over a tree: the loader and libraries are found through the image's links (merged /usr, $ORIGIN/../lib after a linked directory); a loop is an error", async (t) => {
  const lib = (needed: string[], extra: Partial<ElfInfo> = {}): ElfInfo => ({
    class: 64,
    endian: "little",
    machine: 62,
    type: "dyn",
    needed,
    runpath: [],
    rpath: [],
    isStatic: false,
    ...extra,
  });
  const infos = new Map<string, ElfInfo>();
  const tree = new Tree();
  const dir: TreeNode = { type: "dir", mode: 0o755, uid: 0, gid: 0 };
  const link = (path: string, target: string) =>
    tree.set(path, { type: "symlink", mode: 0o777, uid: 0, gid: 0, target });
  const file = (path: string, info: ElfInfo) => {
    infos.set(path, info);
    tree.set(path, { type: "file", mode: 0o755, uid: 0, gid: 0, content: { digest: path, size: 0 } });
  };
  for (const d of [
    "/usr",
    "/usr/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
    "/srv",
    "/srv/app",
    "/srv/app/bin",
    "/srv/app/lib",
    "/opt",
  ])
    tree.set(d, dir);
  // Debian 13: /lib64 → usr/lib64, whose loader is a relative link into /usr/lib; /lib → usr/lib.
  link("/lib64", "usr/lib64");
  link("/lib", "usr/lib");
  link("/usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  file("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", lib([]));
  file("/usr/lib/x86_64-linux-gnu/libc.so.6", lib([]));
  // /opt/bin → /srv/app/bin: the kernel takes $ORIGIN/../lib from /srv/app/bin, to /srv/app/lib.
  link("/opt/bin", "/srv/app/bin");
  file("/srv/app/lib/libapp.so.1", lib(["libc.so.6"]));
  const image = treeView(tree, async (node) => infos.get(node.content.digest) ?? null);
  const prog = lib(["libapp.so.1"], {
    type: "exec",
    interpreter: "/lib64/ld-linux-x86-64.so.2",
    runpath: ["$ORIGIN/../lib"],
  });
  t.deepEqual(await missingLibraries("/opt/bin/prog", prog, image), { missing: [] });
  t.deepEqual(await missingLibraries("/srv/app/bin/prog", prog, image), { missing: [] });

  link("/lib64", "lib64");
  await t.throwsAsync(missingLibraries("/srv/app/bin/prog", prog, image), {
    message: /too many levels of symbolic links/,
  });
});

test("listApplets: the table read from the ELF equals busybox --list (269 applets)", async (t) => {
  const { stdout } = await run("/bin/busybox", ["--list"]);
  const expected = stdout.split("\n").filter((l) => l !== "");
  t.is(expected.length, 269);
  const fromElf = await listApplets("/bin/busybox", { method: "elf" });
  t.deepEqual(fromElf, expected);
  t.deepEqual(await listApplets("/bin/busybox"), expected);
  t.deepEqual(await listApplets("/bin/busybox", { method: "run" }), expected);
  t.is(fromElf[0], "[");
  t.is(fromElf[1], "[[");
});

test("listApplets: a program that is not BusyBox has no applet table", async (t) => {
  await t.throwsAsync(listApplets("/usr/sbin/dropbear", { method: "elf" }), {
    message: /no BusyBox applet name table/,
  });
  for (const f of ["/usr/sbin/dropbear", "/usr/bin/ssh", "/usr/bin/openssl", "/usr/bin/dropbearkey"]) {
    t.deepEqual(scanAppletTable(await readFile(f)), [], f);
  }
});

test("the image's checks: programs that miss the same libraries each report them, in path order", async (t) => {
  const source = { path: "r.nifty", text: "LABEL a=b\n" };
  const { recipe } = await checkSource(source, { args: new Map(), strict: false });
  const tree = new Tree();
  const elf = (needed: string[], interp = "/lib64/ld-linux-x86-64.so.2") =>
    ({
      type: "file",
      mode: 0o755,
      uid: 0,
      gid: 0,
      content: {
        digest: `sha256:${needed.join()}${interp}`,
        size: 0,
        inline: makeElf({ klass: 64, big: false, needed, interp }).toString("base64"),
      },
    }) as TreeNode;
  for (const d of ["/usr", "/usr/bin", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/lib64"])
    tree.set(d, { type: "dir", mode: 0o755, uid: 0, gid: 0 });
  tree.set("/lib", { type: "symlink", mode: 0o777, uid: 0, gid: 0, target: "usr/lib" });
  tree.set("/lib64/ld-linux-x86-64.so.2", elf([], ""));
  tree.set("/usr/lib/x86_64-linux-gnu/libshared.so.1", elf(["libgone.so.2"], ""));
  tree.set("/usr/bin/c", elf(["libgone.so.2", "libshared.so.1"]));
  tree.set("/usr/bin/a", elf(["libshared.so.1", "libnone.so.3"]));
  tree.set("/usr/bin/b", elf(["libnone.so.3"], "/lib/ld-missing.so.1"));
  const report = new Reporter(source);
  await verifyImage(recipe!, tree, new Map(), () => "/nonexistent", report);
  t.deepEqual(
    report
      .all()
      .filter((d) => d.severity === "error")
      .map((d) => `${d.code} ${d.message}`),
    [
      "NIFTY221 /usr/bin/a needs libnone.so.3, which is not in the image",
      "NIFTY221 /usr/bin/a needs libgone.so.2 (through /lib/x86_64-linux-gnu/libshared.so.1), which is not in the image",
      "NIFTY220 /usr/bin/b needs its program loader /lib/ld-missing.so.1, which is not in the image",
      "NIFTY221 /usr/bin/b needs libnone.so.3, which is not in the image",
      "NIFTY221 /usr/bin/c needs libgone.so.2, which is not in the image",
      "NIFTY221 /usr/bin/c needs libgone.so.2 (through /lib/x86_64-linux-gnu/libshared.so.1), which is not in the image",
      "NIFTY221 /usr/lib/x86_64-linux-gnu/libshared.so.1 needs libgone.so.2, which is not in the image",
    ],
  );
});
