// OCI runtime bundle (runtime-spec 1.x) for runc/crun, the rootfs unpacker it
// shares with `niftyc install`, and the install itself.
import { createReadStream, createWriteStream } from "node:fs";
import {
  chmod,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  rm,
  stat,
  symlink,
  unlink,
  utimes,
} from "node:fs/promises";
import { join, posix } from "node:path";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";
import type { Extract, Header } from "tar-stream";
import { NiftyError } from "../diagnostics/errors.ts";
import type { ImageConfig } from "../image/config.ts";
import { createStaging, replaceDir, stagingDir, writeExact, writeFileAtomic } from "../core/atomic.ts";

export interface RuntimeBundleInput {
  config: ImageConfig;
  /** The whole rootfs as one uncompressed tar. */
  rootfsTar: string;
  /** Own network namespace (no interfaces but lo); default: the host's network. */
  privateNetwork?: boolean;
}

/** What BusyBox init needs to boot on a read-only root (checked with runc here). */
const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_AUDIT_WRITE",
  "CAP_SYS_BOOT",
];

/** systemd's container interface: keep SYS_ADMIN and MKNOD, pass no CAP_AUDIT_*. */
function capabilities(config: ImageConfig): string[] {
  if (config.init.kind !== "systemd") return CAPABILITIES;
  return [...CAPABILITIES.filter((c) => !c.startsWith("CAP_AUDIT_")), "CAP_SYS_ADMIN", "CAP_MKNOD"];
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The config.json of the bundle; root is "rootfs", read-only. */
export function runtimeConfig(
  config: ImageConfig,
  opts: { privateNetwork?: boolean } = {},
): Record<string, unknown> {
  if (config.init.command.length === 0) {
    throw new NiftyError("NIFTY506", "the image has no command to run as PID 1");
  }
  const env = new Map<string, string>([
    ["PATH", DEFAULT_PATH.slice(5)],
    ["container", "oci"],
  ]);
  for (const [k, v] of config.env) env.set(k, v);
  const caps = capabilities(config);
  const systemd = config.init.kind === "systemd";
  const namespaces = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  if (opts.privateNetwork === true) namespaces.push({ type: "network" });
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [...config.init.command],
      // container= tells systemd (and scripts) they run in a container; BusyBox ignores it.
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps, ambient: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      // setuid programs (su) must keep working.
      noNewPrivileges: false,
    },
    // systemd's own services write the root (sysusers to /etc, logind and the journal to /var):
    // read-only, dbus and logind fail. The bundle's rootfs is its own unpacked copy.
    root: { path: "rootfs", readonly: !systemd },
    hostname: config.hostname ?? config.name,
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/dev/mqueue",
        type: "mqueue",
        source: "mqueue",
        options: ["nosuid", "noexec", "nodev"],
      },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      // systemd creates its own init.scope below its cgroup: read-only, it exits 255.
      {
        destination: "/sys/fs/cgroup",
        type: "cgroup",
        source: "cgroup",
        options: ["nosuid", "noexec", "nodev", "relatime", systemd ? "rw" : "ro"],
      },
      // init writes here, and the root is read-only.
      { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=755"] },
      ...(systemd
        ? [
            {
              destination: "/run/lock",
              type: "tmpfs",
              source: "tmpfs",
              options: ["nosuid", "nodev", "noexec", "mode=1777", "size=5120k"],
            },
          ]
        : []),
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    ],
    linux: {
      // systemd needs a cgroup of its own (only it is writable) to delegate below.
      ...(systemd ? { cgroupsPath: `/niftyc/${config.name}` } : {}),
      namespaces,
      maskedPaths: [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/sys/firmware",
        "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

/**
 * The directory above every tree niftyc unpacks (the unpack cache, an instances directory, the
 * machines directory of `install`, a bundle): created 0700, and made 0700 again when it is open
 * (an older niftyc made such directories 0755). A tree keeps the image's owners and modes, so a
 * setuid-root program in it would run as root for any local user who could reach it; behind this
 * directory only its owner (root, and the engines root runs: systemd-nspawn, runc, podman) can.
 * One the caller does not own is refused: its owner could open it again.
 */
export async function privateDir(dir: string): Promise<{ repaired: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid) {
    const what = st.isDirectory() ? `belongs to uid ${st.uid}, not to uid ${uid}` : "is not a directory";
    throw new NiftyError(
      "NIFTY522",
      `${dir} ${what}: the tree unpacked below it would not be private`,
      "give a directory of your own (or let niftyc create it); whoever owns it could open it to every user",
    );
  }
  if ((st.mode & 0o077) === 0) return { repaired: false };
  await chmod(dir, 0o700);
  return { repaired: true };
}

/** Write `dir/config.json` and `dir/rootfs/` (replacing a previous bundle as a whole); `dir` is 0700. */
export async function writeRuntimeBundle(dir: string, input: RuntimeBundleInput): Promise<void> {
  const json =
    JSON.stringify(runtimeConfig(input.config, { privateNetwork: input.privateNetwork ?? false }), null, 2) +
    "\n";
  // 0700, as mkdtemp makes it: the rootfs keeps the image's setuid programs (runc runs as root).
  const staging = await createStaging(dir);
  try {
    await unpackRootfs(input.rootfsTar, join(staging, "rootfs"));
    await writeExact(join(staging, "config.json"), json);
    await replaceDir(staging, dir, true);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

function unsafe(name: string, why: string): NiftyError {
  return new NiftyError(
    "NIFTY510",
    `refusing tar entry ${JSON.stringify(name)}: ${why}`,
    "the rootfs tar must hold relative paths inside the root only",
  );
}

/** "./a/b/" → "a/b"; refuses absolute names and "..". Returns "" for the root itself. */
function entryPath(name: string): string {
  if (name.startsWith("/")) throw unsafe(name, "absolute path");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw unsafe(name, "'..' component");
  return parts.join("/");
}

/** A uid or gid from a pax record, when it holds a whole number. */
function paxId(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}

/** Linux's limits on a path (PATH_MAX 4096 with its NUL) and a name (NAME_MAX 255 bytes): told, not ENAMETOOLONG. */
function refuseLongName(name: string, rel: string): void {
  const bytes = Buffer.byteLength(rel);
  const longest = Math.max(0, ...rel.split("/").map((p) => Buffer.byteLength(p)));
  if (bytes > 4000 || longest > 255) {
    throw new NiftyError(
      "NIFTY803",
      `tar entry ${JSON.stringify(name.length > 80 ? `${name.slice(0, 77)}...` : name)} is too long to unpack (${bytes > 4000 ? `${bytes} bytes of path` : `a name of ${longest} bytes`})`,
      "Linux allows names of 255 bytes and paths of 4095; shorten the path in the recipe",
    );
  }
}

function isCode(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as { code?: string }).code === code;
}

/**
 * Unpack a rootfs tar into `dir` (created, its parent must exist; removed again on failure) with exact owners,
 * modes, mtimes and symlinks. Nothing is written outside `dir`: names are
 * checked, no entry is written through a symlink the archive made, and hard
 * links must point at a regular file already unpacked.
 */
export async function unpackRootfs(tarPath: string, dir: string): Promise<void> {
  await mkdir(dir);
  await chmod(dir, 0o755); // unless the tar has an entry for the root
  const unpacking: Unpacking = { dir, symlinks: new Set(), files: new Set(), dirs: [] };
  await unpackEntries(tarPath, unpacking);
  // Children changed the directories' mtimes: set them last, deepest first.
  for (const { path, mtime } of unpacking.dirs.reverse()) await utimes(path, mtime, mtime);
}

/** One entry of the tar: its header and a stream of its bytes. */
type TarEntry = Extract extends AsyncIterable<infer S> ? S : never;

/** An entry's path, relative to the root and under it. */
interface EntryPlace {
  rel: string;
  abs: string;
}

/** What unpacking has made so far: the paths later entries are checked against. */
interface Unpacking {
  dir: string;
  symlinks: Set<string>;
  files: Set<string>;
  dirs: Array<{ path: string; mtime: Date }>;
}

/** Unpack every entry in order; on failure, stop reading and remove the half-unpacked tree. */
async function unpackEntries(tarPath: string, u: Unpacking): Promise<void> {
  const extract = tarStream.extract();
  const reading = pipeline(createReadStream(tarPath), extract);
  try {
    for await (const entry of extract) {
      const h = entryHeader(entry);
      await writeEntry(u, entry, h, await makeRoomFor(u, h));
    }
    await reading;
  } catch (error) {
    extract.destroy();
    await reading.catch(() => undefined);
    await rm(u.dir, { recursive: true, force: true }); // no half-unpacked tree
    throw error;
  }
}

/** The entry's header, with the owners pax records hold in place of ustar's. */
function entryHeader(entry: TarEntry): Header {
  const h = entry.header;
  // Owners beyond ustar's six octal digits travel in pax records.
  const pax = (h.pax ?? {}) as Record<string, string | undefined>;
  h.uid = paxId(pax["uid"]) ?? h.uid;
  h.gid = paxId(pax["gid"]) ?? h.gid;
  return h;
}

/** The entry's checked path in the tree, its parents made and an earlier entry of its name cleared. */
async function makeRoomFor(u: Unpacking, h: Header): Promise<EntryPlace> {
  const rel = entryPath(h.name);
  const abs = rel === "" ? u.dir : join(u.dir, rel);
  refuseLongName(h.name, rel);
  if (rel !== "" && throughSymlink(u, rel)) throw unsafe(h.name, "a parent directory is a symlink");
  if (rel !== "") {
    await ensureParent(u.dir, rel);
    await clear(u, abs, rel, h.type === "directory");
  }
  return { rel, abs };
}

function throughSymlink(u: Unpacking, rel: string): boolean {
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) if (u.symlinks.has(parts.slice(0, i).join("/"))) return true;
  return false;
}

async function ensureParent(dir: string, rel: string): Promise<void> {
  const parent = posix.dirname(rel);
  if (parent !== ".") await mkdir(join(dir, parent), { recursive: true, mode: 0o755 });
}

async function clear(u: Unpacking, abs: string, rel: string, directory: boolean): Promise<void> {
  // A later entry of the same name replaces the earlier one (directories merge).
  try {
    const st = await lstat(abs);
    if (st.isDirectory() && !directory) {
      throw new NiftyError(
        "NIFTY803",
        `tar entry ${JSON.stringify(rel)} would replace the directory of the same name unpacked before it`,
        "a rootfs tar names each path once, or only as directories; rebuild it with niftyc",
      );
    }
    if (!st.isDirectory()) await unlink(abs);
  } catch (error) {
    if (!isCode(error, "ENOENT")) throw error;
  }
  u.symlinks.delete(rel);
  u.files.delete(rel);
}

/** Write one entry at its place with its exact owner, mode and mtime. */
async function writeEntry(u: Unpacking, entry: TarEntry, h: Header, at: EntryPlace): Promise<void> {
  const { rel, abs } = at;
  const mtime = h.mtime ?? new Date(0);
  switch (h.type) {
    case "directory":
      await mkdir(abs, { recursive: true, mode: 0o700 });
      await lchown(abs, h.uid, h.gid);
      await chmod(abs, h.mode);
      u.dirs.push({ path: abs, mtime });
      entry.resume();
      break;
    case "file":
    case "contiguous-file":
      await pipeline(entry, createWriteStream(abs, { flags: "wx", mode: 0o600 }));
      await lchown(abs, h.uid, h.gid);
      await chmod(abs, h.mode); // after chown, which clears setuid bits
      await utimes(abs, mtime, mtime);
      u.files.add(rel);
      break;
    case "symlink":
      await symlink(h.linkname, abs);
      await lchown(abs, h.uid, h.gid);
      await lutimes(abs, mtime, mtime);
      u.symlinks.add(rel);
      entry.resume();
      break;
    case "link": {
      const target = entryPath(h.linkname ?? "");
      if (target === "" || !u.files.has(target) || throughSymlink(u, target)) {
        throw unsafe(
          h.name,
          `hard link to ${JSON.stringify(h.linkname)}, which is no regular file unpacked before it`,
        );
      }
      await link(join(u.dir, target), abs);
      u.files.add(rel);
      entry.resume();
      break;
    }
    default:
      throw new NiftyError(
        "NIFTY511",
        `tar entry ${JSON.stringify(h.name)} has unsupported type ${h.type}`,
        "a niftyc rootfs holds only directories, files, symlinks and hard links",
      );
  }
}

export interface InstallInput {
  rootfsTar: string;
  /** The rendered <name>.nspawn text. */
  nspawnText: string;
  name: string;
  machinesDir: string;
  settingsDir?: string;
  /** Replace an installed machine of the same name. */
  replace?: boolean;
}

/** `niftyc install`: unpack to <machinesDir>/<name> and put <name>.nspawn in settingsDir. */
export async function installMachine(input: InstallInput): Promise<{ root: string; settingsFile: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(input.name)) {
    throw new NiftyError("NIFTY520", `${JSON.stringify(input.name)} is not a valid machine name`);
  }
  const root = join(input.machinesDir, input.name);
  const settingsFile = join(input.settingsDir ?? "/etc/systemd/nspawn", `${input.name}.nspawn`);
  if (input.replace !== true) {
    try {
      await lstat(root);
      throw new NiftyError(
        "NIFTY521",
        `machine ${input.name} already exists at ${root}`,
        "remove it first, or run niftyc install --replace",
      );
    } catch (error) {
      if (!isCode(error, "ENOENT")) throw error;
    }
  }
  await privateDir(input.machinesDir);
  const staging = await stagingDir(root);
  try {
    await unpackRootfs(input.rootfsTar, join(staging, "root"));
    await replaceDir(join(staging, "root"), root, input.replace === true);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  await writeFileAtomic(settingsFile, input.nspawnText);
  return { root, settingsFile };
}
