// systemd units that run the image with systemd-nspawn, modelled on systemd's
// own systemd-nspawn@.service: <name>.service for one machine and
// <name>@.service for many instances sharing one read-only tree.
import { NiftyError } from "../diagnostics/errors.ts";
import type { ImageConfig } from "../image/config.ts";
import { bindArg, bootMode, guardArgs, imageBindGuard, portSpec } from "./nspawn.ts";
import { unitWord } from "./quote.ts";
import { spellSignal } from "./signals.ts";

export interface UnitOptions {
  /** Where machines are unpacked: the root is <machinesDir>/<name>. */
  machinesDir: string;
  /** Own network namespace with EXPOSEd ports forwarded (single unit only). */
  privateNetwork?: boolean;
  /** Per-instance environment files live in <envDir>/<name>/<instance>.env (template only). */
  envDir?: string;
  /** The tree to boot, absolute; default <machinesDir>/<name>. */
  rootDir?: string;
  /** Per-instance environment file with %i, absolute; wins over envDir (template only). */
  envFile?: string;
  /** A target that starts and stops the instances together: PartOf= and WantedBy= it (template only). */
  target?: string;
  /**
   * One file for every instance, absolute (template only), with NIFTY_ARGS_<instance>= lines of
   * extra nspawn arguments (--setenv=PORT=2207): `$NIFTY_ARGS_%i` stands alone on the command
   * line, so systemd splits it into words, and into none for an instance without a line.
   * Replaces the per-instance file.
   */
  instancesEnvFile?: string;
  /**
   * Instances started by a connection (template only): each gets a network namespace of its own
   * (PrivateNetwork=, joined by its forwarder) and stops when its forwarder does (StopWhenUnneeded=).
   */
  onDemand?: boolean;
}

/** The variable of the instances file that carries an instance's extra nspawn arguments. */
export const INSTANCE_ARGS = "NIFTY_ARGS";

const MACHINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Machine name of template instance %i. A dash keeps "nifty" + "11" apart from "nifty1" + "1". */
export function instanceMachineName(name: string, instance: string): string {
  return `${name}-${instance}`;
}

function rootDir(config: ImageConfig, opts: UnitOptions): string {
  if (!MACHINE_NAME.test(config.name)) {
    throw new NiftyError(
      "NIFTY501",
      `${JSON.stringify(config.name)} is not a valid machine name`,
      "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 64 characters)",
    );
  }
  if (opts.rootDir !== undefined) {
    if (!opts.rootDir.startsWith("/"))
      throw new NiftyError("NIFTY502", `root directory must be absolute: ${opts.rootDir}`);
    return opts.rootDir.replace(/(.)\/+$/, "$1");
  }
  if (!opts.machinesDir.startsWith("/")) {
    throw new NiftyError("NIFTY502", `machines directory must be absolute: ${opts.machinesDir}`);
  }
  return `${opts.machinesDir.replace(/\/+$/, "")}/${config.name}`;
}

function header(config: ImageConfig, notifyReady: boolean): string[] {
  const signal = spellSignal(config.stopSignal, "unit");
  return [
    "# Stopping: systemd sends KillSignal=SIGTERM to systemd-nspawn only (KillMode=mixed);",
    `# nspawn turns SIGTERM into --kill-signal=${signal} for the container's init, which shuts`,
    "# down and exits; nspawn then exits. nspawn acts on SIGTERM/SIGINT only, so the image's",
    "# stop signal goes in --kill-signal=, not in KillSignal=. Exit 133 means the container",
    "# rebooted (init got SIGTERM or ran reboot): restart it, as systemd-nspawn@.service does.",
    notifyReady
      ? "# Type=notify with --notify-ready=yes: systemd as PID 1 reports READY=1, nspawn passes it on."
      : "# Type=notify with --notify-ready=no: nspawn reports READY=1 itself once init is started;\n# this init never sends sd_notify READY=1, so waiting for it would time out.",
  ];
}

function commonExec(
  config: ImageConfig,
  notifyReady: boolean,
): { boot: boolean; parameters: string[]; args: string[] } {
  const { boot, parameters } = bootMode(config);
  const args = ["systemd-nspawn", "--quiet", "--keep-unit"];
  if (boot) args.push("--boot");
  // nspawn's default (--timezone=auto) would replace the image's own /etc/localtime with the host's zone.
  if (config.ownTimezone) args.push("--timezone=off");
  return {
    boot,
    parameters,
    args: [
      ...args,
      `--notify-ready=${notifyReady ? "yes" : "no"}`,
      `--kill-signal=${spellSignal(config.stopSignal, "nspawn")}`,
    ],
  };
}

const SERVICE_SETTINGS = [
  "KillMode=mixed",
  "KillSignal=SIGTERM",
  "Type=notify",
  "RestartForceExitStatus=133",
  "SuccessExitStatus=133",
  "Slice=machine.slice",
  "Delegate=yes",
  "TasksMax=16384",
  "DevicePolicy=closed",
  "DeviceAllow=char-pts rw",
];

function execLine(args: string[]): string {
  return `ExecStart=${args.map((a) => unitWord(a, true)).join(" ")}`;
}

function isNotifyReady(config: ImageConfig): boolean {
  return config.init.kind === "systemd";
}

/** <name>.service: one machine booted from <machinesDir>/<name>. */
export function renderServiceUnit(config: ImageConfig, opts: UnitOptions): string {
  const dir = rootDir(config, opts);
  const notifyReady = isNotifyReady(config);
  const { boot, parameters, args } = commonExec(config, notifyReady);
  args.push("--link-journal=try-guest", "--settings=override", `--machine=${config.name}`);
  if (config.hostname !== undefined) args.push(`--hostname=${config.hostname}`);
  for (const [key, value] of config.env) args.push(`--setenv=${key}=${value}`);
  const guard = imageBindGuard(config);
  args.push(...guardArgs(guard));
  for (const bind of config.binds) args.push(bindArg(bind, guard));
  if (opts.privateNetwork === true) {
    args.push("--network-veth");
    for (const port of config.exposedPorts) args.push(`--port=${portSpec(port)}`);
  }
  args.push("-D", dir);
  if (boot) args.push(...parameters);
  else args.push("--", ...parameters);
  return [
    `# ${config.name}.service, generated by niftyc: boots machine ${config.name} from ${dir}.`,
    `# Settings in /etc/systemd/nspawn/${config.name}.nspawn, if present, win over this command line.`,
    ...header(config, notifyReady),
    "[Unit]",
    `Description=Container ${unitWord(config.name, false)} (niftyc)`,
    "Documentation=man:systemd-nspawn(1)",
    "PartOf=machines.target",
    "Before=machines.target",
    "After=network.target",
    `RequiresMountsFor=${unitWord(dir, false)}`,
    "",
    "[Service]",
    execLine(args),
    ...SERVICE_SETTINGS,
    "",
    "[Install]",
    "WantedBy=machines.target",
    "",
  ].join("\n");
}

/**
 * <name>@.service: instance %i runs as machine <name>-%i on the shared tree
 * <machinesDir>/<name>, each with a private writable overlay (--volatile=overlay)
 * so any number of instances can share the directory. Every ENV of the recipe
 * can be set per instance in <envDir>/<name>/%i.env; NIFTY_INSTANCE=%i is always set.
 */
export function renderTemplateUnit(config: ImageConfig, opts: UnitOptions): string {
  const dir = rootDir(config, opts);
  const { envFile, shared } = templateEnvFile(config, opts);
  const notifyReady = isNotifyReady(config);
  const exec = commonExec(config, notifyReady);
  const env = templateEnvironment(config);
  const execStart = templateExecStart(config, dir, shared, exec);
  return [
    ...templateComments(config, opts, dir, envFile, shared, exec.boot),
    ...header(config, notifyReady),
    "[Unit]",
    `Description=Container ${unitWord(config.name, false)}-%i (niftyc)`,
    "Documentation=man:systemd-nspawn(1)",
    "PartOf=machines.target",
    ...(opts.target === undefined ? [] : [`PartOf=${unitWord(opts.target, false)}`]),
    ...(opts.onDemand === true ? ["StopWhenUnneeded=yes"] : []),
    "Before=machines.target",
    "After=network.target",
    `RequiresMountsFor=${unitWord(dir, false)}`,
    "",
    "[Service]",
    ...(opts.onDemand === true ? ["PrivateNetwork=yes"] : []),
    ...env,
    `EnvironmentFile=-${envFile}`,
    execStart,
    ...SERVICE_SETTINGS,
    "",
    "[Install]",
    opts.target === undefined ? "WantedBy=machines.target" : `WantedBy=${unitWord(opts.target, false)}`,
    "",
  ].join("\n");
}

/** The instances' environment: one file for all (`shared`), or one per instance; absolute. */
function templateEnvFile(
  config: ImageConfig,
  opts: UnitOptions,
): { envFile: string; shared: string | undefined } {
  const envDir = (opts.envDir ?? "/etc/niftyc").replace(/\/+$/, "");
  const shared = opts.instancesEnvFile;
  const envFile = shared ?? opts.envFile ?? `${envDir}/${config.name}/%i.env`;
  if (!envFile.startsWith("/"))
    throw new NiftyError("NIFTY502", `environment file must be absolute: ${envFile}`);
  return { envFile, shared };
}

/** Environment= lines: the recipe's ENV as defaults an instance's file may override. */
function templateEnvironment(config: ImageConfig): string[] {
  const env: string[] = [];
  for (const [key, value] of config.env) {
    if (!ENV_NAME.test(key)) {
      throw new NiftyError(
        "NIFTY503",
        `ENV name ${JSON.stringify(key)} cannot be passed through a unit file`,
        "use letters, digits and underscores, not starting with a digit",
      );
    }
    env.push(`Environment=${unitWord(`${key}=${value}`, false)}`);
  }
  return env;
}

/** The ExecStart= line of instance %i: machine <name>-%i on the shared tree, through a private overlay. */
function templateExecStart(
  config: ImageConfig,
  dir: string,
  shared: string | undefined,
  exec: ReturnType<typeof commonExec>,
): string {
  const { boot, parameters, args } = exec;
  const machine = instanceMachineName(config.name, "%i");
  // Instances would share one guest journal directory (same machine-id): do not link it.
  args.push("--link-journal=no", "--settings=override", "--volatile=overlay");
  // The unit's environment is expanded here: ${KEY} takes the default above or the instance's file.
  const out: string[] = [];
  for (const arg of args) out.push(unitWord(arg, true));
  out.push(`--machine=${machine}`);
  for (const [key] of config.env) out.push(`--setenv=${key}=\${${key}}`);
  // Later --setenv= wins in nspawn: the instance's own values come after the defaults.
  if (shared !== undefined) out.push(`$${INSTANCE_ARGS}_%i`);
  out.push("--setenv=NIFTY_INSTANCE=%i");
  const guard = imageBindGuard(config);
  for (const arg of guardArgs(guard)) out.push(arg);
  for (const bind of config.binds) out.push(unitWord(bindArg(bind, guard), true));
  out.push("-D", unitWord(dir, true));
  if (!boot) out.push("--");
  for (const p of parameters) out.push(unitWord(p, true));
  // systemd sets the hostname from the shared tree's /etc/hostname at boot, over nspawn's
  // machine name; systemd.hostname= on its command line wins over that file.
  if (boot && config.init.kind === "systemd") out.push(`systemd.hostname=${machine}`);
  return `ExecStart=${out.join(" ")}`;
}

/** The comments at the top: what the template boots, where instances' settings go, how ports work. */
function templateComments(
  config: ImageConfig,
  opts: UnitOptions,
  dir: string,
  envFile: string,
  shared: string | undefined,
  boot: boolean,
): string[] {
  return [
    `# ${config.name}@.service, generated by niftyc: instance %i boots machine ${config.name}-%i`,
    `# from the shared tree ${dir}, writable through a private overlay (--volatile=overlay:`,
    "# nspawn takes a shared lock, so instances only coexist when all are read-only or volatile).",
    shared === undefined
      ? `# Per-instance settings: ${envFile.replace("%i", "<instance>")} (KEY=value lines), e.g.`
      : `# Per-instance settings: ${envFile} (${INSTANCE_ARGS}_<instance>=--setenv=KEY=value lines), e.g.`,
    `#   systemctl start ${config.name}@1 ${config.name}@2`,
    ...(opts.onDemand === true
      ? [
          "# On demand: %i is the instance's host port. <name>-listen@%i.socket listens on it and starts",
          "# <name>-listen@%i.service, which starts this unit and forwards connections into it. The",
          "# instance has a network namespace of its own (PrivateNetwork=, shared with the forwarder),",
          "# so every instance listens on the recipe's port inside; it stops when the forwarder exits.",
        ]
      : [
          "# The hostname is the machine name, so each instance reports its own. Ports are the host's:",
          "# give each instance its own (for example through an ENV read by the service it starts).",
        ]),
    ...(boot && config.init.kind === "systemd"
      ? ["# systemd.hostname= at the end: systemd would otherwise set the shared tree's /etc/hostname."]
      : []),
  ];
}

/** The listener and forwarder of on-demand instances: <name>-listen@<port>.socket and .service. */
export function listenerUnit(name: string, suffix: "socket" | "service", instance = ""): string {
  return `${name}-listen@${instance}.${suffix}`;
}

export interface OnDemandOptions {
  /** Starts and stops every listener together: PartOf= and WantedBy= it. */
  target: string;
  /** The port the image listens on, inside every instance's own network namespace. */
  innerPort: number;
  /** A systemd time span: how long the forwarder waits without a connection before it exits. */
  idleStop: string;
  /** How long the forwarder waits for the instance to listen on its first start, in seconds. */
  startTimeout?: number;
  /** The forwarder's command: `<node> <niftyc> forward`. */
  forwarder: Forwarder;
}

/** Node and niftyc's entry point (bin/niftyc), absolute paths on the machine that runs the units. */
export interface Forwarder {
  node: string;
  niftyc: string;
}

/** <name>-listen@.socket: instance %i listens on host port %i; the first connection starts the forwarder. */
export function renderListenSocket(config: ImageConfig, opts: OnDemandOptions): string {
  const name = config.name;
  return [
    `# ${listenerUnit(name, "socket")}, generated by niftyc: instance %i listens on host port %i, on every`,
    `# address. The first connection starts ${listenerUnit(name, "service", "%i")}, which boots ${name}@%i; the`,
    "# connection waits in the socket's queue meanwhile, so the client's first bytes are not lost.",
    `#   systemctl start ${listenerUnit(name, "socket", "2201")}    or all: systemctl start ${opts.target}`,
    "[Unit]",
    `Description=Listener for ${unitWord(name, false)} on port %i (niftyc)`,
    `PartOf=${unitWord(opts.target, false)}`,
    "",
    "[Socket]",
    "ListenStream=%i",
    "",
    "[Install]",
    `WantedBy=${unitWord(opts.target, false)}`,
    "",
  ].join("\n");
}

/**
 * <name>-listen@.service: started by its socket, it starts instance %i, joins its network
 * namespace, waits until the image listens, then forwards with `niftyc forward` (each client
 * from a loopback address of its own) until it has been idle for opts.idleStop; its exit leaves the instance unneeded, so systemd stops it.
 */
export function renderForwarder(config: ImageConfig, opts: OnDemandOptions): string {
  const name = config.name;
  const instance = `${name}@%i.service`;
  const tries = Math.max(1, Math.round((opts.startTimeout ?? 60) * 10));
  // bash's /dev/tcp connects, and its arithmetic loop counts, with no tool but sleep; unitWord doubles $ and % for the unit.
  const wait = `for ((t = 0; t < ${tries}; t++)); do (exec 3<>/dev/tcp/127.0.0.1/${opts.innerPort}) 2>/dev/null && exit 0; sleep 0.1; done; echo "the instance did not listen on port ${opts.innerPort} within ${opts.startTimeout ?? 60} s" >&2; exit 1`;
  return [
    `# ${listenerUnit(name, "service")}, generated by niftyc: forwards host port %i to port ${opts.innerPort} of`,
    `# ${instance}, in the network namespace the two share (JoinsNamespaceOf=). It exits after`,
    `# ${opts.idleStop} without a connection; ${instance} then has no unit needing it and stops.`,
    "[Unit]",
    `Description=Forwarder to ${unitWord(name, false)}-%i (niftyc)`,
    `Requires=${instance}`,
    `After=${instance}`,
    `JoinsNamespaceOf=${instance}`,
    `PartOf=${unitWord(opts.target, false)}`,
    "",
    "[Service]",
    "PrivateNetwork=yes",
    `ExecStartPre=/bin/bash -c ${unitWord(wait, true)}`,
    // niftyc forward connects from a loopback address of each client's own: the image sees one per client.
    `ExecStart=${unitWord(opts.forwarder.node, true)} ${unitWord(opts.forwarder.niftyc, true)} forward --exit-idle-time=${opts.idleStop} 127.0.0.1:${opts.innerPort}`,
    "",
  ].join("\n");
}
