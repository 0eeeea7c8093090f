// A bootable BusyBox rootfs for the emit tests: the host's static busybox, a
// link per applet, an inittab that prints markers, written as two layer tars
// (binaries; everything else) and their union, deterministically.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { lstat, readFile, readdir, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import type { ImageConfig, LayerFile } from "../../src/image/config.ts";

export const BUSYBOX = "/bin/busybox";

export const OS_RELEASE = 'NAME="Nifty fixture"\nID=nifty-fixture\nPRETTY_NAME="Nifty fixture rootfs"\n';

export const INITTAB = [
  "::sysinit:/bin/echo NIFTY-SYSINIT-REACHED",
  "::sysinit:/bin/cat /etc/os-release",
  `::sysinit:/bin/sh -c 'echo "NIFTY-ENV GREETING=[$GREETING] INSTANCE=[$NIFTY_INSTANCE] HOST=[$(hostname)]"'`,
  `::sysinit:/bin/sh -c 'cat /mnt/bind/marker 2>/dev/null || true'`,
  "::shutdown:/bin/echo NIFTY-SHUTDOWN",
  "",
].join("\n");

interface FixtureEntry {
  name: string;
  type: "directory" | "file" | "symlink";
  mode: number;
  linkname?: string;
  /** Inline content, or the host file to copy. */
  text?: string;
  hostFile?: string;
}

export interface Fixture {
  layers: LayerFile[];
  rootfsTar: string;
  rootfsDigest: string;
}

function dir(name: string, mode = 0o755): FixtureEntry {
  return { name: `${name}/`, type: "directory", mode };
}

function file(name: string, text: string, mode = 0o644): FixtureEntry {
  return { name, type: "file", mode, text };
}

export function fixtureEntries(): { binaries: FixtureEntry[]; rest: FixtureEntry[] } {
  const applets = execFileSync(BUSYBOX, ["--list"], { encoding: "utf8" })
    .split("\n")
    .filter((a) => a !== "" && a !== "busybox");
  const binaries: FixtureEntry[] = [
    dir("bin"),
    { name: "bin/busybox", type: "file", mode: 0o755, hostFile: BUSYBOX },
    ...applets.map(
      (a): FixtureEntry => ({ name: `bin/${a}`, type: "symlink", mode: 0o777, linkname: "busybox" }),
    ),
    dir("sbin"),
    { name: "sbin/init", type: "symlink", mode: 0o777, linkname: "../bin/busybox" },
  ];
  const rest: FixtureEntry[] = [
    dir("dev"),
    dir("etc"),
    file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    file("etc/inittab", INITTAB),
    file("etc/os-release", OS_RELEASE),
    file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
    dir("proc", 0o555),
    dir("root", 0o700),
    dir("run"),
    dir("sys", 0o555),
    dir("tmp", 0o1777),
  ];
  return { binaries, rest };
}

function bytewise(a: FixtureEntry, b: FixtureEntry): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

export async function writeFixtureTar(path: string, entries: FixtureEntry[]): Promise<LayerFile> {
  const sorted = [...entries].sort(bytewise);
  const pack = tarStream.pack();
  const done = pipeline(pack, createWriteStream(path));
  for (const e of sorted) {
    const header = { name: e.name, type: e.type, mode: e.mode, uid: 0, gid: 0, mtime: new Date(0) } as const;
    if (e.type === "file" && e.hostFile !== undefined) {
      const size = (await stat(e.hostFile)).size;
      await pipeline(createReadStream(e.hostFile), pack.entry({ ...header, size }));
    } else {
      const body = e.type === "file" ? Buffer.from(e.text ?? "") : undefined;
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
        if (body === undefined)
          pack.entry({ ...header, ...(e.linkname === undefined ? {} : { linkname: e.linkname }) }, cb);
        else pack.entry(header, body, cb);
      });
    }
  }
  pack.finalize();
  await done;
  const bytes = await readFile(path);
  return {
    path,
    digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`,
    size: bytes.length,
    comment: "",
  };
}

/** Write layer-1.tar, layer-2.tar and rootfs.tar into `dir`. */
export async function makeFixture(dirPath: string): Promise<Fixture> {
  const { binaries, rest } = fixtureEntries();
  const l1 = await writeFixtureTar(join(dirPath, "layer-1.tar"), binaries);
  const l2 = await writeFixtureTar(join(dirPath, "layer-2.tar"), rest);
  const all = await writeFixtureTar(join(dirPath, "rootfs.tar"), [...binaries, ...rest]);
  return {
    layers: [
      { ...l1, comment: "busybox and applet links" },
      { ...l2, comment: "configuration and mount points" },
    ],
    rootfsTar: all.path,
    rootfsDigest: all.digest,
  };
}

export function fixtureConfig(overrides: Partial<ImageConfig> = {}): ImageConfig {
  return {
    name: "nifty",
    env: [
      ["GREETING", "hello world"],
      ["PORT", "2200"],
    ],
    hostname: "nifty-host",
    exposedPorts: [{ port: 22, protocol: "tcp" }],
    binds: [],
    labels: [
      ["org.opencontainers.image.title", "nifty"],
      ["maintainer", "niftyc tests"],
    ],
    stopSignal: { name: "SIGUSR2", number: 12, source: "init" },
    init: { kind: "busybox", command: ["/sbin/init"] },
    architecture: "amd64",
    os: "linux",
    created: 1700000000,
    ...overrides,
  };
}

export interface TreeItem {
  type: "dir" | "file" | "symlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  link?: string;
  sha256?: string;
}

/** Every path under `root` with its type, permission bits, owner, link target and content hash. */
export async function listTree(root: string): Promise<Map<string, TreeItem>> {
  const out = new Map<string, TreeItem>();
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? root : join(root, rel);
    const st = await lstat(abs);
    const item: TreeItem = {
      type: st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "symlink" : "other",
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
    };
    if (item.type === "symlink") {
      item.link = await readlink(abs);
      item.mode = 0o777;
    }
    if (item.type === "file")
      item.sha256 = createHash("sha256")
        .update(await readFile(abs))
        .digest("hex");
    if (rel !== "") out.set(rel, item);
    if (item.type === "dir")
      for (const name of (await readdir(abs)).sort()) await walk(rel === "" ? name : `${rel}/${name}`);
  };
  await walk("");
  return out;
}

/** The tree the fixture describes, in listTree's shape. */
export async function expectedTree(): Promise<Map<string, TreeItem>> {
  const { binaries, rest } = fixtureEntries();
  const out = new Map<string, TreeItem>();
  for (const e of [...binaries, ...rest].sort(bytewise)) {
    const name = e.name.replace(/\/$/, "");
    const base = { mode: e.mode, uid: 0, gid: 0 };
    if (e.type === "directory") out.set(name, { type: "dir", ...base });
    else if (e.type === "symlink") out.set(name, { type: "symlink", ...base, link: e.linkname as string });
    else {
      const bytes = e.hostFile !== undefined ? await readFile(e.hostFile) : Buffer.from(e.text ?? "");
      out.set(name, { type: "file", ...base, sha256: createHash("sha256").update(bytes).digest("hex") });
    }
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
