// Everything before a run starts, in order: pick the engine (refusing what
// cannot work here, before anything is unpacked), the values of --set, the
// mounts, the cached tree, the run directory and the copy, then the command
// line. Each refusal is a NiftyError that says why and what to do.
import { spawnSync } from "node:child_process";
import { accessSync, constants, lstatSync, realpathSync, statfsSync, existsSync } from "node:fs";
import { join } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import type { ImageConfig } from "../image/config.ts";
import { planInstances, type InstanceSetting } from "../instances/plan.ts";
import {
  ENGINES,
  ENGINE_NAMES,
  engineArgv,
  engineOrder,
  pid1,
  type EngineName,
  type Mount,
  type Publish,
  type RunSpec,
  TOOL_PACKAGES,
} from "./engines.ts";
import { findTool, inUserNamespace, type Privilege } from "./privilege.ts";
import { FILES, claimRun, removeRun, type RunRecord } from "./rundir.ts";
import { saveRecord } from "./start.ts";
import { ensureTree } from "./trees.ts";
import { systemBindProblem } from "../instructions/bind.ts";
import { redirectableBy } from "../core/owned-path.ts";

export interface RunInput {
  config: ImageConfig;
  digest: string;
  rootfsTar: string;
  /** The build's <name>.nspawn, if it wrote one. */
  nspawnFile?: string;
  /** Absolute path of the recipe or build directory, to find the run again. */
  input: string;
  name: string;
  engine?: EngineName;
  command?: readonly string[];
  sets: readonly InstanceSetting[];
  publish: readonly Publish[];
  bindHostTools: boolean;
  /** --allow-system-binds: a BIND that leads to the host's / or a system directory is let through. */
  allowSystemBinds?: boolean;
  detached: boolean;
  /** niftyc's output is a terminal. */
  terminal: boolean;
  privilege: Privilege;
  /** PATH, to find the engines. */
  path: string;
  treeCache: string;
  runsBase: string;
}

export interface PreparedRun {
  engine: EngineName;
  dir: string;
  record: RunRecord;
  argv: string[];
  tree: string;
  unpacked: boolean;
  /** What to tell the user before it starts. */
  notes: string[];
}

/** The host's directories of programs and libraries, bound read-only with --bind-host-tools. */
export const HOST_TOOLS = ["/usr", "/bin", "/sbin", "/lib", "/lib64"] as const;

function missingTools(engine: EngineName, path: string): string[] {
  return ENGINES[engine].tools.filter((tool) => findTool(tool, path) === undefined);
}

/** The engine to use: the one named, or the first of the order whose tools are here. */
export function chooseEngine(named: EngineName | undefined, privilege: Privilege, path: string): EngineName {
  if (named !== undefined) {
    if (!ENGINE_NAMES.includes(named))
      throw new NiftyError(
        "NIFTY756",
        `unknown engine ${JSON.stringify(named)}`,
        `engines: ${ENGINE_NAMES.join(", ")}`,
      );
    if (!privilege.root && !ENGINES[named].unprivileged) {
      throw new NiftyError(
        "NIFTY756",
        `${named} needs root`,
        `as an ordinary user, use --engine ${ENGINE_NAMES.filter((e) => ENGINES[e].unprivileged).join(" or --engine ")}`,
      );
    }
    if (missingTools(named, path).length > 0) throw missingEngine([named], path);
    return named;
  }
  const order = engineOrder(privilege);
  for (const engine of order) if (missingTools(engine, path).length === 0) return engine;
  throw missingEngine(order, path);
}

/** The Debian packages of `tools`, each once, in order. */
export function packagesOf(tools: readonly string[]): string[] {
  return [...new Set(tools.map((tool) => TOOL_PACKAGES[tool] ?? tool))];
}

/** No engine here: what each one lacks, and the package of each missing program. */
function missingEngine(engines: readonly EngineName[], path: string): NiftyError {
  const lacking = engines.map((e) => ({ engine: e, missing: missingTools(e, path) }));
  const needs = lacking.map((l) => `${l.engine} needs ${l.missing.join(", ")}`).join("; ");
  const [first, ...others] = lacking;
  const install = `install it: apt-get install ${packagesOf(first!.missing).join(" ")}`;
  const alternatives = others.map((l) => `for ${l.engine}: ${packagesOf(l.missing).join(" ")}`);
  return new NiftyError(
    "NIFTY756",
    `no engine to run with: ${needs}, not found on PATH`,
    alternatives.length > 0 ? `${install} (or ${alternatives.join("; ")})` : install,
  );
}

/**
 * Rootless podman forwards published ports into a network of its own made by slirp4netns or
 * pasta, which open /dev/net/tun: without either program, or with the device closed to users
 * (root-only on these hosts), the run could only fail after it started.
 */
export function rootlessPortsProblem(
  engine: EngineName,
  privilege: Privilege,
  path: string,
  tun = "/dev/net/tun",
): string | undefined {
  if (engine !== "podman" || privilege.root) return undefined;
  const problems: string[] = [];
  if (findTool("slirp4netns", path) === undefined && findTool("pasta", path) === undefined)
    problems.push("it needs slirp4netns or pasta, and neither is on PATH (packages slirp4netns, passt)");
  try {
    accessSync(tun, constants.R_OK | constants.W_OK);
  } catch {
    problems.push(`${tun}, which they need, is not open to this user`);
  }
  return problems.length > 0 ? problems.join("; ") : undefined;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

/** systemd as PID 1 without root needs a delegated cgroup v2 tree; on v1 (or hybrid) it cannot create init.scope. */
export function unprivilegedSystemdProblem(
  config: ImageConfig,
  boot: boolean,
  privilege: Privilege,
): string | undefined {
  if (privilege.root || !boot || config.init.kind !== "systemd") return undefined;
  let type: number;
  try {
    type = Number(statfsSync("/sys/fs/cgroup").type);
  } catch {
    return "no /sys/fs/cgroup on this host";
  }
  if (type === CGROUP2_SUPER_MAGIC) return undefined;
  return 'this host has cgroup v1 (or hybrid) hierarchies, and systemd as PID 1 without root cannot create its own control group there ("Failed to create /init.scope control group: Permission denied")';
}

/** The user's values for the recipe's ENV: instance 1 of a one-instance plan, so --set reads as in niftyc instances. */
export function runEnv(config: ImageConfig, sets: readonly InstanceSetting[]): Array<[string, string]> {
  const values = new Map(config.env);
  if (sets.length > 0) {
    const plan = planInstances({ config, count: 1, first: 1, sets });
    for (const [key, value] of plan.instances[0]!.env) values.set(key, value);
  }
  return [...values];
}

/**
 * A BIND as this host would mount it (an existing host path): the recipe's check saw only the
 * path as written; here it may be a symlink to /etc (nspawn, bwrap and podman follow it), a build
 * directory may come from a build that allowed it, and another user may be able to change the
 * path before the engine follows it (a directory of theirs on the way, or a link of theirs in
 * /tmp, could become a link to /etc). NIFTY760 for each; --allow-system-binds skips this.
 */
export function refuseHostBind(bind: { hostPath: string; readOnly: boolean }): void {
  const real = realpathSync(bind.hostPath);
  const redirect = redirectableBy(bind.hostPath, process.getuid?.() ?? 0);
  if (redirect !== undefined) {
    throw new NiftyError(
      "NIFTY760",
      `BIND ${bind.hostPath} could be made to lead elsewhere by another user before it is mounted (${redirect}), such as to the host's /etc`,
      "bind a directory on a path only you and root can change, or pass --allow-system-binds if the container may have whatever it leads to",
    );
  }
  const system = systemBindProblem(real, bind.readOnly);
  if (system !== undefined) {
    throw new NiftyError(
      "NIFTY760",
      `BIND ${bind.hostPath}${real === bind.hostPath ? "" : ` (${real} on this host)`} would give the container ${system}`,
      "bind a directory of its own, or pass --allow-system-binds if the container is to have it",
    );
  }
}

/** The recipe's BIND lines whose host path exists, then the host's tools where the image has no symlink of its own. */
export function runMounts(
  config: ImageConfig,
  tree: string,
  bindHostTools: boolean,
  allowSystemBinds = false,
): { mounts: Mount[]; notes: string[] } {
  const mounts: Mount[] = [];
  const notes: string[] = [];
  for (const bind of config.binds) {
    if (!existsSync(bind.hostPath)) {
      notes.push(`BIND ${bind.hostPath} skipped: it does not exist on this host`);
      continue;
    }
    if (!allowSystemBinds) refuseHostBind(bind);
    mounts.push({ source: bind.hostPath, target: bind.containerPath, readOnly: bind.readOnly });
  }
  if (bindHostTools) {
    for (const dir of HOST_TOOLS) {
      if (!existsSync(dir)) continue;
      // A symlink in the image (SYMLINK /sbin bin) leads to a directory bound anyway; mounting
      // through it would stack a second directory on the first.
      const inImage = (() => {
        try {
          return lstatSync(join(tree, dir));
        } catch {
          return undefined;
        }
      })();
      if (inImage?.isSymbolicLink()) continue;
      mounts.push({ source: realpathSync(dir), target: dir, readOnly: true });
    }
  }
  return { mounts, notes };
}

/** What cannot work here whatever happens next, refused before anything is unpacked or started. */
function refuseWhatCannotWork(input: RunInput, engine: EngineName, boot: boolean): void {
  const systemd = unprivilegedSystemdProblem(input.config, boot, input.privilege);
  if (systemd !== undefined) {
    throw new NiftyError(
      "NIFTY757",
      `${input.config.name} boots systemd, which cannot run unprivileged here: ${systemd}`,
      "run it as root (systemd-nspawn), or give a command to run instead of booting: niftyc run … -- /bin/sh",
    );
  }
  if (input.publish.length > 0 && !ENGINES[engine].ownNetwork) {
    // Only engines that could forward the ports here: not rootless podman without slirp4netns or pasta.
    const others = ENGINE_NAMES.filter(
      (e) =>
        ENGINES[e].ownNetwork &&
        (input.privilege.root || ENGINES[e].unprivileged) &&
        rootlessPortsProblem(e, input.privilege, input.path) === undefined,
    );
    throw new NiftyError(
      "NIFTY758",
      `--publish: ${engine} has no network of its own; the container uses the host's ports directly`,
      `drop --publish (a port the image listens on is the host's port)${others.length > 0 ? ", move it with --set PORT=…, or use --engine " + others.join(" or ") : " or move it with --set PORT=…"}`,
    );
  }
  const ports =
    input.publish.length > 0 ? rootlessPortsProblem(engine, input.privilege, input.path) : undefined;
  if (ports !== undefined) {
    throw new NiftyError(
      "NIFTY758",
      `--publish: rootless podman cannot forward ports here: ${ports}`,
      "drop --publish (podman then shares the host's network: the port the image listens on is the host's; move it with --set PORT=…), or run as root",
    );
  }
}

export async function prepareRun(input: RunInput): Promise<PreparedRun> {
  const engine = chooseEngine(input.engine, input.privilege, input.path);
  const { boot } = pid1({ config: input.config, ...(input.command ? { command: input.command } : {}) });
  refuseWhatCannotWork(input, engine, boot);
  const env = runEnv(input.config, input.sets);
  const notes: string[] = [];

  const { dir: tree, unpacked } = await ensureTree({
    base: input.treeCache,
    rootfsTar: input.rootfsTar,
    digest: input.digest,
    privilege: input.privilege,
  });
  const { mounts, notes: mountNotes } = runMounts(
    input.config,
    tree,
    input.bindHostTools,
    input.allowSystemBinds === true,
  );
  notes.push(...mountNotes);

  const record: RunRecord = {
    name: input.name,
    engine,
    input: input.input,
    digest: input.digest,
    stopSignal: { name: input.config.stopSignal.name, number: input.config.stopSignal.number },
    boot,
    detached: input.detached,
  };
  const dir = await claimRun(input.runsBase, record, input.privilege);
  try {
    let root = tree;
    if (engine === "bwrap") {
      // bwrap 0.8 cannot overlay: this run writes to its own copy (inside the namespace, so owners stay).
      root = join(dir, FILES.copy);
      const argv = inUserNamespace(input.privilege, ["cp", "-a", "--reflink=auto", "--", tree, root]);
      const copied = spawnSync(argv[0]!, argv.slice(1), {
        encoding: "utf8",
        timeout: 600_000,
        killSignal: "SIGKILL",
      });
      if (copied.status !== 0)
        throw new NiftyError(
          "NIFTY751",
          `copying ${tree} for this run failed: ${(copied.stderr ?? "").trim() || copied.error?.message}`,
          "check free space where the runs directory is ($XDG_RUNTIME_DIR), and the user's /etc/subuid range",
        );
      record.copy = root;
      await saveRecord(dir, record);
    }
    const spec: RunSpec = {
      engine,
      privilege: input.privilege,
      config: input.config,
      name: input.name,
      root,
      ...(input.nspawnFile !== undefined ? { nspawnFile: input.nspawnFile } : {}),
      ...(input.command !== undefined ? { command: input.command } : {}),
      env,
      publish: input.publish,
      mounts,
      detached: input.detached,
      terminal: input.terminal,
      runc: findTool("runc", input.path) !== undefined,
    };
    return { engine, dir, record, argv: engineArgv(spec), tree, unpacked, notes };
  } catch (error) {
    await removeRun(dir, input.privilege);
    throw error;
  }
}
