// The engines `niftyc run` drives, and the exact command line each gets. Pure:
// a run's description in, argv out; nothing here starts a process. niftyc
// never builds namespaces itself: root gets systemd-nspawn (with the settings
// of the build's .nspawn file), an ordinary user bubblewrap or rootless podman.
import { bindArg, bindGuard, bootMode, guardArgs, type BindGuard } from "../emit/nspawn.ts";
import { spellSignal } from "../emit/signals.ts";
import type { ImageConfig } from "../image/config.ts";
import { inUserNamespace, type Privilege } from "./privilege.ts";

export const ENGINE_NAMES = ["nspawn", "bwrap", "podman"] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export interface EngineInfo {
  /** The program that must be on PATH, and what else it needs there (their packages: TOOL_PACKAGES). */
  tools: readonly string[];
  /** Runs as an ordinary user. */
  unprivileged: boolean;
  /** Has a network of its own, so --publish can forward host ports into it. */
  ownNetwork: boolean;
  /** How each run may write without changing the shared tree. */
  writable: string;
}

export const ENGINES: Readonly<Record<EngineName, EngineInfo>> = {
  nspawn: {
    tools: ["systemd-nspawn", "unshare"],
    unprivileged: false,
    ownNetwork: true,
    writable: "an overlay (--volatile=overlay: writes go to a tmpfs)",
  },
  // bubblewrap 0.8 has no overlay option: each run gets a copy of the tree, removed after.
  bwrap: {
    tools: ["bwrap", "unshare", "newuidmap"],
    unprivileged: true,
    ownNetwork: false,
    writable: "a throw-away copy (bwrap 0.8 has no overlay), removed when it ends",
  },
  podman: {
    tools: ["podman", "newuidmap"],
    unprivileged: true,
    ownNetwork: true,
    writable: "an overlay (--rootfs DIR:O)",
  },
};

/** The Debian package each program an engine needs comes from (unshare is util-linux's, not systemd's). */
export const TOOL_PACKAGES: Readonly<Record<string, string>> = {
  "systemd-nspawn": "systemd-container",
  unshare: "util-linux",
  bwrap: "bubblewrap",
  newuidmap: "uidmap",
  podman: "podman",
};

/** Order in which an engine is picked when none is named. */
export function engineOrder(privilege: Privilege): EngineName[] {
  return privilege.root ? ["nspawn"] : ["bwrap", "podman"];
}

export interface Publish {
  host: number;
  container: number;
  protocol: "tcp" | "udp";
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface RunSpec {
  engine: EngineName;
  privilege: Privilege;
  config: ImageConfig;
  /** Machine (and podman container) name. */
  name: string;
  /** The cached tree (read-only lower layer), or for bwrap the run's copy. */
  root: string;
  /** The build's <name>.nspawn, installed where nspawn trusts it. */
  nspawnFile?: string;
  /** `-- command…`; without it the image's init boots. */
  command?: readonly string[];
  /** Every ENV the container gets: the recipe's, overridden by --set. */
  env: ReadonlyArray<readonly [string, string]>;
  publish: readonly Publish[];
  /** The recipe's BIND lines and, with --bind-host-tools, the host's /usr, /lib, /bin…. */
  mounts: readonly Mount[];
  detached: boolean;
  /** niftyc's output is a terminal (so nspawn gives the container one; else a command's output passes unchanged). */
  terminal: boolean;
  /** podman needs runc on these hosts (crun cannot run with hybrid cgroups). */
  runc?: boolean;
}

/** What PID 1 is: the image's init booted, or the command given. */
export function pid1(spec: Pick<RunSpec, "config" | "command">): { boot: boolean; argv: string[] } {
  if (spec.command !== undefined && spec.command.length > 0) return { boot: false, argv: [...spec.command] };
  return { boot: true, argv: [...spec.config.init.command] };
}

/**
 * How root inside is kept from remounting a read-only mount writable (a BIND RO line, the host's
 * tools): the rule of the build's own .nspawn file and units (nspawn.ts), for what this run boots.
 * bwrap and podman have no user namespace to offer systemd here, so they only ever drop.
 */
export function runGuard(spec: Pick<RunSpec, "engine" | "config" | "command" | "mounts">): BindGuard {
  const guard = bindGuard(
    spec.config,
    spec.mounts.some((m) => m.readOnly),
    pid1(spec).boot,
  );
  return spec.engine !== "nspawn" && guard === "userns" ? "drop" : guard;
}

/** The full command line of a run. */
export function engineArgv(spec: RunSpec): string[] {
  switch (spec.engine) {
    case "nspawn":
      return nspawnArgv(spec);
    case "bwrap":
      return bwrapArgv(spec);
    case "podman":
      return podmanArgv(spec);
  }
}

/**
 * nspawn inside a private mount namespace with a tmpfs /run (no systemd as PID 1 here to register
 * with), the build's .nspawn copied to /run/systemd/nspawn/ where it is trusted. Settings given on
 * the command line mask the file's of the same kind (nspawn's rule), so the environment, binds and
 * stop signal are passed in full here too.
 */
function nspawnArgv(spec: RunSpec): string[] {
  const args = [
    "--register=no",
    "--keep-unit",
    `--machine=${spec.name}`,
    `--directory=${spec.root}`,
    "--volatile=overlay",
  ];
  args.push(`--kill-signal=${spellSignal(spec.config.stopSignal, "nspawn")}`);
  if (spec.config.hostname !== undefined) args.push(`--hostname=${spec.config.hostname}`);
  if (spec.config.ownTimezone) args.push("--timezone=off");
  for (const [key, value] of spec.env) args.push(`--setenv=${key}=${value}`);
  const guard = runGuard(spec);
  args.push(...guardArgs(guard));
  for (const m of spec.mounts)
    args.push(bindArg({ readOnly: m.readOnly, hostPath: m.source, containerPath: m.target }, guard));
  if (spec.publish.length > 0) {
    args.push("--network-veth");
    for (const p of spec.publish) args.push(`--port=${p.protocol}:${p.host}:${p.container}`);
  }
  const { boot, argv } = pid1(spec);
  // A command's output through a pipe stays byte for byte (a console pty would turn \n into \r\n).
  if (spec.detached) args.push("--console=read-only");
  else if (!boot && !spec.terminal) args.push("--console=pipe");
  if (boot) {
    const mode = bootMode(spec.config);
    if (mode.boot) args.push("--boot", "--", ...mode.parameters);
    else args.push("--", ...mode.parameters);
  } else args.push("--quiet", "--", ...argv);
  const install =
    spec.nspawnFile === undefined
      ? ""
      : `mkdir -p /run/systemd/nspawn && cp -- "$1" "/run/systemd/nspawn/$2.nspawn" && `;
  const script = `mount -t tmpfs tmpfs /run && ${install}shift 2 && exec systemd-nspawn "$@"`;
  return [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    script,
    "niftyc-run",
    spec.nspawnFile ?? "",
    spec.name,
    ...args,
  ];
}

/**
 * bubblewrap as root of a user namespace that maps the user's subordinate ids (so an image that
 * switches users, as Dropbear does for a login, can), sharing the host's network as nspawn does
 * by default. PID 1 is the image's init (--as-pid-1); `--info-fd 3` reports its host PID, which
 * is what a stop signals. The environment is the image's, not niftyc's.
 */
function bwrapArgv(spec: RunSpec): string[] {
  const args = [
    "bwrap",
    "--info-fd",
    "3",
    "--die-with-parent",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
  ];
  args.push("--hostname", spec.config.hostname ?? spec.name);
  args.push(
    "--bind",
    spec.root,
    "/",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/run",
    "--ro-bind",
    "/sys",
    "/sys",
  );
  for (const m of spec.mounts) args.push(m.readOnly ? "--ro-bind" : "--bind", m.source, m.target);
  if (runGuard(spec) !== "none") args.push("--cap-drop", "CAP_SYS_ADMIN");
  args.push(
    "--clearenv",
    "--setenv",
    "PATH",
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--setenv",
    "HOME",
    "/root",
    "--setenv",
    "container",
    "bwrap",
  );
  for (const [key, value] of spec.env) args.push("--setenv", key, value);
  args.push("--chdir", "/");
  const { boot, argv } = pid1(spec);
  if (boot) args.push("--as-pid-1");
  args.push("--", ...argv);
  if (!boot) return inUserNamespace(spec.privilege, args);
  // Ctrl-C reaches the terminal's whole process group. bwrap would die of it and take the
  // container with it (--die-with-parent); ignoring SIGINT (inherited through exec) leaves the
  // stop to niftyc, which sends the image's stop signal. BusyBox and systemd set their own.
  return ignoringInterrupt(inUserNamespace(spec.privilege, args));
}

/**
 * podman on the cached tree with an overlay of its own (`--rootfs DIR:O`), host network (its
 * default network needs /dev/net/tun, root-only here) unless ports are published, and the limits
 * these hosts allow (podman asks for more nofile/nproc than the hard limits).
 */
function podmanArgv(spec: RunSpec): string[] {
  const args = [
    "podman",
    ...(spec.runc ? ["--runtime", "runc"] : []),
    "run",
    "--rm",
    "--name",
    podmanName(spec.name),
  ];
  args.push("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096");
  args.push(
    "--stop-signal",
    spellSignal(spec.config.stopSignal, "docker-run"),
    "--hostname",
    spec.config.hostname ?? spec.name,
  );
  if (spec.publish.length > 0)
    for (const p of spec.publish) args.push("--publish", `${p.host}:${p.container}/${p.protocol}`);
  else args.push("--network=host");
  args.push("--tmpfs", "/run");
  for (const [key, value] of spec.env) args.push("--env", `${key}=${value}`);
  for (const m of spec.mounts) args.push("--volume", `${m.source}:${m.target}${m.readOnly ? ":ro" : ""}`);
  if (runGuard(spec) !== "none") args.push("--cap-drop", "SYS_ADMIN");
  args.push("--rootfs", `${spec.root}:O`, ...pid1(spec).argv);
  return args;
}

/**
 * podman exits on SIGINT (leaving the container running), ignored or not, so it is started in a
 * session of its own: a terminal's Ctrl-C reaches only niftyc, which runs podman stop. podman
 * gets no terminal (no -t), so it loses nothing by it.
 */
export function ownSession(engine: EngineName): boolean {
  return engine === "podman";
}

/** argv with SIGINT ignored (inherited through exec), so a terminal's Ctrl-C reaches only niftyc. */
function ignoringInterrupt(argv: readonly string[]): string[] {
  return ["sh", "-c", 'trap "" INT; exec "$@"', "niftyc-run", ...argv];
}

export function podmanName(name: string): string {
  return `niftyc-${name}`;
}

/**
 * The container's exit status. bwrap and podman report an init that powered off as killed by
 * SIGINT (the kernel's answer to reboot(2) in a PID namespace: SIGINT for halt and poweroff,
 * SIGHUP for reboot); nspawn reports those as 0 and 133, and so does niftyc for a booted image.
 */
export function containerStatus(engine: EngineName, boot: boolean, status: number): number {
  if (engine === "nspawn" || !boot) return status;
  if (status === 128 + 2) return 0;
  if (status === 128 + 1) return 133;
  return status;
}
