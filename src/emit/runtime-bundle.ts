// OCI runtime bundle (runtime-spec 1.x) for runc/crun: config.json beside the unpacked rootfs.
import { join } from "node:path";
import { rm } from "node:fs/promises";
import { NiftyError } from "../diagnostics/errors.ts";
import type { BindSpec, ImageConfig } from "../image/config.ts";
import { createStaging, replaceDir, writeExact } from "../core/atomic.ts";
import { unpackRootfs } from "./unpack.ts";

export interface RuntimeBundleInput {
  config: ImageConfig;
  /** The whole rootfs as one uncompressed tar. */
  rootfsTar: string;
  /** Own network namespace (no interfaces but lo); default: the host's network. */
  privateNetwork?: boolean;
}

/** What BusyBox init needs to boot (checked with runc here). */
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

/**
 * systemd's container interface: keep SYS_ADMIN and MKNOD, pass no CAP_AUDIT_*. With a read-only
 * bind, no init gets SYS_ADMIN: with it root inside could remount the bind writable (or unmount
 * it, or bind it again and remount that), and runc, unlike nspawn's PrivateUsers=, offers no user
 * namespace in which the bind would be locked. So systemd goes without it, as under niftyc run's
 * podman and bwrap (runGuard); it still boots to running (test/boot/systemd.test.ts).
 */
function capabilities(config: ImageConfig): string[] {
  if (config.init.kind !== "systemd") return CAPABILITIES;
  const systemd = [...CAPABILITIES.filter((c) => !c.startsWith("CAP_AUDIT_")), "CAP_MKNOD"];
  return config.binds.some((b) => b.readOnly) ? systemd : [...systemd, "CAP_SYS_ADMIN"];
}

/**
 * One bind mount per BIND, after the others, so a bind below /run or /tmp lands on their tmpfs.
 * Read-only is recursive ("rro": mount_setattr, runc 1.1 on Linux 5.12 or later), as nspawn's
 * BindReadOnly= is: "ro" alone leaves every mount below the host path writable. Neither kind
 * honours the host's setuid bits or device nodes inside.
 */
function bindMounts(binds: readonly BindSpec[]): Array<Record<string, unknown>> {
  return binds.map((bind) => ({
    destination: bind.containerPath,
    type: "bind",
    source: bind.hostPath,
    options: bind.readOnly ? ["rbind", "ro", "rro", "nosuid", "nodev"] : ["rbind", "rw", "nosuid", "nodev"],
  }));
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The config.json of the bundle; root is "rootfs", writable. */
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
    // Writable, as every other output boots the image (nspawn and the units boot the tree itself,
    // docker and podman add a writable layer): the boot writes the root. KEYGEN AT boot's
    // dropbearkey writes /etc/dropbear, syslogd /var/log, systemd's services /etc and /var;
    // read-only, Dropbear has no host key and dbus and logind fail. The bundle's rootfs is its
    // own unpacked copy, so nothing the container writes reaches the store or rootfs.tar.
    root: { path: "rootfs", readonly: false },
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
      // Fresh at every boot, as under docker-run.sh: nothing of a previous run's /run is left.
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
      ...bindMounts(config.binds),
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
