// The rootfs tarball of a recipe using every instruction, read back by GNU tar
// and by tar-stream, against the plan: the tree the recorded steps describe.
import test from "ava";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import tarStream from "tar-stream";
import { openStore } from "../../src/cache/store.ts";
import { Tree, type TreeChange, type TreeNode } from "../../src/image/tree.ts";
import {
  dropbearLines,
  execFileP,
  jsonOf,
  niftyc,
  readBuildJson,
  startFixture,
  tempDir,
  writeRecipe,
  type Fixture,
} from "./helpers.ts";

const LONG_DIR = `/srv/${"deep-directory-name-".repeat(3)}a/${"another-long-directory-".repeat(2)}b`;
const LONG_NAME = `${"n".repeat(120)}.txt`;
const LONG_TARGET = `/usr/share/nifty/${"t".repeat(110)}`;
const PASSWORD = "correct horse battery staple";

function everyInstruction(f: Fixture): string {
  return `# every instruction of the language, once at least
ARG BASE=${f.url}/files
FETCH busybox \${BASE}/busybox ${f.busybox.digest} TO /bin/busybox
LINK /bin/busybox APPLETS
LINK /bin/busybox true false IN /opt/tools
SYMLINK /sbin bin
SYMLINK /usr/bin ../bin
${dropbearLines(f)}FETCH greeting \${BASE}/nifty-hello.deb ${f.deb.digest} EXTRACT usr/share/nifty/greeting.txt TO /usr/share/nifty/greeting.txt
FETCH hello debian:${f.debianPath} ${f.deb.digest} EXTRACT usr/bin/nifty-hello TO /usr/local/bin/nifty-hello MODE 0755
SYMLINK /etc/long-link ${LONG_TARGET}
GROUP wheel GID 10
GROUP big GID 300001
USER root LOCKED
USER luser UID 1000 SHELL /bin/sh GROUPS wheel PASSWORD secret:luser-password
USER huge UID 300000 GID 300001 HOME /home/huge
DIR /tmp /var/tmp MODE 1777
DIR /srv/data MODE 0750 OWNER huge:big
DIR /proc /sys /dev /run
FILE /etc/os-release <<EOF
NAME="Nifty every"
ID=nifty
EOF
FILE ${LONG_DIR}/note.txt MODE 0640 OWNER 300000:300001 <<EOF
a path longer than one hundred bytes
EOF
COPY files /opt/files
COPY files/run.sh /usr/local/bin/ MODE 0700 OWNER luser:luser
ENV PORT=2200
KEYGEN dropbear ed25519
INITTAB sysinit /bin/syslogd
INITTAB respawn /bin/dropbear -F -w -p \${PORT}
INITTAB respawn TTY console /bin/getty 38400 console
HOSTNAME nifty
EXPOSE 2200/tcp
BIND RO /usr/share/zoneinfo
LABEL org.opencontainers.image.title=every
STOPSIGNAL SIGUSR2
`;
}

interface Entry {
  path: string;
  type: "dir" | "file" | "symlink" | "link";
  mode: number;
  uid: number;
  gid: number;
  target?: string;
  digest?: string;
  mtime?: number;
  uname?: string;
  gname?: string;
}

/** The plan: the tree that the build's recorded steps describe, replayed from the store. */
async function planOf(cacheDir: string, keys: readonly string[]): Promise<Map<string, TreeNode>> {
  const store = await openStore(cacheDir);
  const tree = new Tree();
  for (const key of keys) {
    const record = await store.readRecord<{ changes: TreeChange[] }>("steps", key);
    if (record === undefined) throw new Error(`step ${key} has no record`);
    tree.apply(record.changes);
  }
  return tree.nodes;
}

/** An archive name as an image path: the root is written "./". */
function imagePathOf(name: string): string {
  const clean = name.replace(/^\.\//, "").replace(/\/$/, "");
  return clean === "" || clean === "." ? "/" : "/" + clean;
}

function modeOf(text: string): number {
  const bits = text.slice(1);
  let mode = 0;
  const perm = (c: string, bit: number): number => (c !== "-" && c !== "S" && c !== "T" ? bit : 0);
  for (let i = 0; i < 3; i++) {
    const [r, w, x] = bits.slice(i * 3, i * 3 + 3);
    const shift = (2 - i) * 3;
    mode |= perm(r!, 4 << shift) | perm(w!, 2 << shift) | perm(x!, 1 << shift);
  }
  if ("sS".includes(bits[2]!)) mode |= 0o4000;
  if ("sS".includes(bits[5]!)) mode |= 0o2000;
  if ("tT".includes(bits[8]!)) mode |= 0o1000;
  return mode;
}

/** `tar -tvf --numeric-owner --full-time`, parsed. */
async function gnuListing(tarball: string): Promise<Entry[]> {
  const { stdout } = await execFileP(
    "tar",
    ["--numeric-owner", "--full-time", "--quoting-style=literal", "-tvf", tarball],
    { env: { ...process.env, TZ: "UTC", LC_ALL: "C" }, maxBuffer: 64 << 20 },
  );
  return stdout
    .trimEnd()
    .split("\n")
    .map((line) => {
      const m = /^(\S{10}) (\d+)\/(\d+)\s+(\d+) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$/.exec(line);
      if (!m) throw new Error(`unexpected tar listing line: ${line}`);
      const [, perms, uid, gid, , when, rest] = m as unknown as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      const kind = perms[0];
      let name = rest;
      let target: string | undefined;
      if (kind === "l") [name, target] = rest.split(" -> ") as [string, string];
      else if (kind === "h" || rest.includes(" link to "))
        [name, target] = rest.split(" link to ") as [string, string];
      const type = kind === "d" ? "dir" : kind === "l" ? "symlink" : target !== undefined ? "link" : "file";
      return {
        path: imagePathOf(name),
        type,
        mode: modeOf(perms),
        uid: Number(uid),
        gid: Number(gid),
        ...(target !== undefined ? { target } : {}),
        mtime: Date.parse(when.replace(" ", "T") + "Z") / 1000,
      } satisfies Entry;
    });
}

/** Every entry as tar-stream reads it, with file contents hashed as they stream by. */
async function streamListing(tarball: string): Promise<Entry[]> {
  const extract = tarStream.extract();
  const entries: Entry[] = [];
  createReadStream(tarball).pipe(extract);
  for await (const entry of extract) {
    const h = entry.header;
    const pax = (h.pax ?? {}) as Record<string, string | undefined>;
    const hash = createHash("sha256");
    for await (const chunk of entry) hash.update(chunk as Buffer);
    const type =
      h.type === "directory" ? "dir" : h.type === "symlink" ? "symlink" : h.type === "link" ? "link" : "file";
    entries.push({
      path: imagePathOf(h.name),
      type,
      mode: h.mode ?? -1,
      // tar-stream hands pax records over as they are; ids beyond ustar live there.
      uid: pax.uid !== undefined ? Number(pax.uid) : (h.uid ?? -1),
      gid: pax.gid !== undefined ? Number(pax.gid) : (h.gid ?? -1),
      ...(h.linkname ? { target: h.linkname } : {}),
      ...(type === "file" ? { digest: `sha256:${hash.digest("hex")}` } : {}),
      mtime: h.mtime ? h.mtime.getTime() / 1000 : -1,
      uname: h.uname ?? "",
      gname: h.gname ?? "",
    });
  }
  return entries;
}

let fixture: Fixture;
let work: string;
let tarball: string;
let plan: Map<string, TreeNode>;
let gnu: Entry[];
let streamed: Entry[];
let raw: Buffer;

test.before(async () => {
  fixture = await startFixture();
  work = await tempDir();
  const recipeDir = path.join(work, "recipe");
  await fsp.mkdir(path.join(recipeDir, "files/nested/deeper"), { recursive: true });
  await fsp.writeFile(path.join(recipeDir, "files/readme.txt"), "plain file\n", { mode: 0o600 });
  await fsp.writeFile(path.join(recipeDir, "files/run.sh"), "#!/bin/sh\necho run\n", { mode: 0o700 });
  await fsp.writeFile(
    path.join(recipeDir, "files/nested/deeper", LONG_NAME),
    "a name longer than one hundred bytes\n",
  );
  await fsp.link(path.join(recipeDir, "files/readme.txt"), path.join(recipeDir, "files/nested/hardlink.txt"));
  await fsp.symlink("../readme.txt", path.join(recipeDir, "files/nested/readme-link"));
  const recipe = await writeRecipe(recipeDir, "every", everyInstruction(fixture));
  await fsp.writeFile(path.join(work, "password"), PASSWORD + "\n");
  const cache = path.join(work, "cache");
  const out = path.join(work, "out");
  const result = await niftyc(
    [
      "build",
      recipe,
      "--cache",
      cache,
      "--out",
      out,
      "--secret",
      `luser-password=${path.join(work, "password")}`,
      "--mirror",
      fixture.mirror,
      "--json",
    ],
    { env: { SOURCE_DATE_EPOCH: "1700000000" } },
  );
  if (result.code !== 0) throw new Error(`build failed (${result.code}):\n${result.stderr}`);
  const json = jsonOf(result);
  tarball = path.resolve(json.rootfs);
  const buildJson = await readBuildJson(out);
  plan = await planOf(
    cache,
    buildJson.steps.map((s) => s.key),
  );
  gnu = await gnuListing(tarball);
  streamed = await streamListing(tarball);
  raw = await fsp.readFile(tarball);
});

test.after.always(async () => {
  await fixture?.close();
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

test("GNU tar and tar-stream list every planned path, the root first as ./, in bytewise order, parents first", (t) => {
  t.is(gnu[0]?.path, "/");
  t.like(plan.get("/"), { type: "dir", mode: 0o755, uid: 0, gid: 0 });
  const planned = [...plan.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  t.deepEqual(
    gnu.map((e) => e.path),
    planned,
  );
  t.deepEqual(
    streamed.map((e) => e.path),
    planned,
  );
  const seen = new Set<string>(["/"]);
  for (const e of streamed.slice(1)) {
    t.true(seen.has(path.posix.dirname(e.path)), `${e.path} comes before its directory`);
    seen.add(e.path);
  }
});

test("every entry has the planned type, mode, owner, link target and content", (t) => {
  for (const listing of [gnu, streamed]) {
    for (const e of listing) {
      const node = plan.get(e.path)!;
      t.is(e.type, node.type, e.path);
      t.is(e.mode, node.type === "symlink" ? 0o777 : node.mode, `mode of ${e.path}`);
      t.is(e.uid, node.uid, `uid of ${e.path}`);
      t.is(e.gid, node.gid, `gid of ${e.path}`);
      t.is(e.target, node.type === "symlink" ? node.target : undefined, `target of ${e.path}`);
      t.is(e.mtime, 1700000000, `mtime of ${e.path}`);
    }
  }
  for (const e of streamed) {
    const node = plan.get(e.path)!;
    if (node.type === "file") t.is(e.digest, node.content.digest, `content of ${e.path}`);
    t.is(e.uname, "", `user name of ${e.path}`);
    t.is(e.gname, "", `group name of ${e.path}`);
  }
});

test("the plan holds what the recipe asked for", async (t) => {
  const at = (p: string): TreeNode => {
    const node = plan.get(p);
    if (node === undefined) throw new Error(`${p} is not in the image`);
    return node;
  };
  t.like(at("/bin/busybox"), {
    type: "file",
    mode: 0o755,
    uid: 0,
    gid: 0,
    content: { digest: fixture.busybox.digest },
  });
  t.like(at("/bin/sh"), { type: "symlink", target: "busybox" });
  t.like(at("/opt/tools/true"), { type: "symlink" });
  t.like(at("/sbin"), { type: "symlink", target: "bin" });
  t.like(at("/bin/dropbear"), { type: "file", content: { digest: fixture.dropbear.digest } });
  for (const [soname, s] of fixture.libs)
    t.like(at(`/lib/x86_64-linux-gnu/${soname}`), { type: "file", content: { digest: s.digest } }, soname);
  t.like(at("/lib64/ld-linux-x86-64.so.2"), {
    type: "symlink",
    target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  });
  t.like(at("/usr/share/nifty/greeting.txt"), {
    type: "file",
    content: { digest: `sha256:${createHash("sha256").update("hello from a .deb\n").digest("hex")}` },
  });
  t.like(at("/usr/local/bin/nifty-hello"), { type: "file", mode: 0o755 });
  t.like(at("/etc/long-link"), { type: "symlink", target: LONG_TARGET });
  t.like(at("/tmp"), { type: "dir", mode: 0o1777 });
  t.like(at("/var/tmp"), { type: "dir", mode: 0o1777 });
  t.like(at("/srv/data"), { type: "dir", mode: 0o750, uid: 300000, gid: 300001 });
  t.like(at("/home/huge"), { type: "dir", uid: 300000, gid: 300001 });
  t.like(at(`${LONG_DIR}/note.txt`), { type: "file", mode: 0o640, uid: 300000, gid: 300001 });
  t.true(`${LONG_DIR}/note.txt`.length > 100);
  // COPY: modes normalised, hard links become files of equal content, symlinks kept.
  t.like(at("/opt/files/readme.txt"), { type: "file", mode: 0o644 });
  t.like(at("/opt/files/run.sh"), { type: "file", mode: 0o755 });
  t.like(at("/opt/files/nested/readme-link"), { type: "symlink", target: "../readme.txt" });
  const hard = at("/opt/files/nested/hardlink.txt");
  t.like(hard, { type: "file", mode: 0o644 });
  t.is(
    hard.type === "file" ? hard.content.digest : "",
    (at("/opt/files/readme.txt") as { content: { digest: string } }).content.digest,
  );
  t.like(at(`/opt/files/nested/deeper/${LONG_NAME}`), { type: "file" });
  t.like(at("/usr/local/bin/run.sh"), { type: "file", mode: 0o700, uid: 1000, gid: 1000 });
  t.like(at("/etc/dropbear"), { type: "dir", mode: 0o700 });
  t.like(at("/etc/hostname"), { type: "file" });
  for (const p of ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/inittab", "/etc/shells"])
    t.like(at(p), { type: "file" }, p);
  // No private host key in the image: KEYGEN makes them at first boot.
  t.false([...plan.keys()].some((p) => p.startsWith("/etc/dropbear/")));
});

test("uid and gid beyond ustar's 6 octal digits are carried by pax records", (t) => {
  const big = streamed.filter((e) => e.uid > 0o777777 || e.gid > 0o777777).map((e) => e.path);
  t.true(big.includes("/srv/data"));
  t.true(big.includes(`${LONG_DIR}/note.txt`));
  t.true(raw.includes("uid=300000\n"));
  t.true(raw.includes("gid=300001\n"));
});

test("no atime or ctime records, no trailing garbage, and a whole number of blocks", (t) => {
  t.false(raw.includes(" atime="));
  t.false(raw.includes(" ctime="));
  t.is(raw.length % 512, 0);
  t.true(raw.subarray(-1024).every((b) => b === 0));
});

test("long names and long link targets survive both readers", (t) => {
  const names = new Set(gnu.map((e) => e.path));
  t.true(names.has(`/opt/files/nested/deeper/${LONG_NAME}`));
  t.true(names.has(`${LONG_DIR}/note.txt`));
  t.is(gnu.find((e) => e.path === "/etc/long-link")?.target, LONG_TARGET);
  t.is(streamed.find((e) => e.path === "/etc/long-link")?.target, LONG_TARGET);
});

test("GNU tar extracts it without complaint and the files read back", async (t) => {
  const dir = path.join(work, "extracted");
  await fsp.mkdir(dir);
  await execFileP("tar", ["--numeric-owner", "-xpf", tarball, "-C", dir]);
  const st = await fsp.stat(path.join(dir, "srv/data"));
  t.is(st.uid, 300000);
  t.is(st.gid, 300001);
  t.is((await fsp.stat(path.join(dir, "tmp"))).mode & 0o7777, 0o1777);
  t.is(await fsp.readFile(path.join(dir, "usr/share/nifty/greeting.txt"), "utf8"), "hello from a .deb\n");
  t.is(await fsp.readlink(path.join(dir, "etc/long-link")), LONG_TARGET);
  const { stdout } = await execFileP(path.join(dir, "bin/busybox"), ["echo", "runs"]);
  t.is(stdout, "runs\n");
});
