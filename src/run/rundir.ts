// Where a run is found again: one directory per run name under the runs base
// ($XDG_RUNTIME_DIR/niftyc/runs for a user, /run/niftyc/runs for root), holding
//   run.json      what was started: engine, input, digest, stop signal, whether it booted
//   pid           the engine's PID (nspawn, or unshare→bwrap, or podman), written once it runs
//   info.json     bwrap's --info-fd report: the host PID of the container's PID 1
//   exit          the engine's exit status, written when it ends
//   stopping      written by `niftyc run --stop` before it signals an attached run: that run's
//                 niftyc then leaves the directory (and its exit status) to the stopper to read and remove
//   console.log   a detached run's console
//   root/         bwrap's throw-away copy of the tree
// The directory is claimed with mkdir, so two runs of one name cannot both start.
import { spawnSync } from "node:child_process";
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { NiftyError } from "../diagnostics/errors.ts";
import type { EngineName } from "./engines.ts";
import type { Privilege } from "./privilege.ts";
import { removeArgv } from "./trees.ts";
import { processAlive } from "../core/process.ts";
import { redirectableBy } from "../core/owned-path.ts";

export interface RunRecord {
  name: string;
  engine: EngineName;
  /** Absolute path of the recipe or build directory given. */
  input: string;
  digest: string;
  stopSignal: { name: string; number: number };
  /** The image's init is PID 1 (rather than a command). */
  boot: boolean;
  detached: boolean;
  /** bwrap's copy of the tree, when there is one. */
  copy?: string;
}

export const FILES = {
  record: "run.json",
  pid: "pid",
  info: "info.json",
  exit: "exit",
  stopping: "stopping",
  log: "console.log",
  copy: "root",
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkRunName(name: string): void {
  if (!NAME.test(name))
    throw new NiftyError(
      "NIFTY753",
      `${JSON.stringify(name)} is not a valid run name`,
      "letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit",
    );
}

async function readNumber(path: string): Promise<number | undefined> {
  try {
    const text = (await readFile(path, "utf8")).trim();
    // Empty is not 0: a file caught between its creation and its write says nothing yet.
    const n = text === "" ? Number.NaN : Number(text);
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export interface RunState {
  dir: string;
  record: RunRecord;
  pid?: number;
  /** The engine's exit status once it ended. */
  exit?: number;
  running: boolean;
}

export async function readRun(dir: string): Promise<RunState | undefined> {
  let record: RunRecord;
  try {
    record = JSON.parse(await readFile(join(dir, FILES.record), "utf8")) as RunRecord;
  } catch {
    return undefined;
  }
  const pid = await readNumber(join(dir, FILES.pid));
  const exit = await readNumber(join(dir, FILES.exit));
  return {
    dir,
    record,
    ...(pid !== undefined ? { pid } : {}),
    ...(exit !== undefined ? { exit } : {}),
    running: exit === undefined && pid !== undefined && processAlive(pid),
  };
}

/**
 * The runs base, created private to its owner. Runs are removed, and their PIDs signalled, by
 * what is found there, so it must be this user's own directory, reached on a path no other user
 * can change: /tmp/niftyc-runs-<uid> may have been made a symbolic link by someone else.
 */
export async function openRunsBase(base: string): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  await mkdir(base, { recursive: true, mode: 0o700 });
  const redirect = redirectableBy(base, uid);
  if (redirect !== undefined) {
    throw new NiftyError(
      "NIFTY754",
      `the runs directory ${base} is not this user's own: another user could make it lead elsewhere (${redirect})`,
      "set XDG_RUNTIME_DIR to a directory of your own",
    );
  }
  const info = await stat(base);
  if (!info.isDirectory() || info.uid !== uid) {
    throw new NiftyError(
      "NIFTY754",
      `the runs directory ${base} ${info.isDirectory() ? `belongs to uid ${info.uid}, not to this user` : "is not a directory"}`,
      "set XDG_RUNTIME_DIR to a directory of your own",
    );
  }
  if ((info.mode & 0o077) !== 0) await chmod(base, 0o700);
  return base;
}

/** Remove a run's directory, its copy first (with the namespace's help when its files belong to mapped ids). */
export async function removeRun(dir: string, privilege: Privilege): Promise<void> {
  const copy = join(dir, FILES.copy);
  if (
    await stat(copy).then(
      () => true,
      () => false,
    )
  ) {
    const argv = removeArgv(privilege, copy);
    spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore", timeout: 120_000, killSignal: "SIGKILL" });
  }
  await rm(dir, { recursive: true, force: true });
}

/**
 * Claim `<base>/<name>` for a new run. A run of that name that still runs is refused; one that
 * ended (or whose starter was killed) is cleared first.
 */
export async function claimRun(base: string, record: RunRecord, privilege: Privilege): Promise<string> {
  checkRunName(record.name);
  const dir = join(base, record.name);
  const existing = await readRun(dir);
  if (existing?.running) {
    throw new NiftyError(
      "NIFTY752",
      `a run named ${record.name} is already running (${existing.record.engine}, PID ${existing.pid})`,
      `stop it with niftyc run --stop ${record.name}, or give this one another --name`,
    );
  }
  if (
    existing !== undefined ||
    (await stat(dir).then(
      () => true,
      () => false,
    ))
  ) {
    // A directory without a live engine: a run that ended or whose starter died.
    if (existing === undefined || existing.pid === undefined || !processAlive(existing.pid))
      await removeRun(dir, privilege);
  }
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new NiftyError(
        "NIFTY752",
        `a run named ${record.name} is starting in ${dir}`,
        `give this one another --name`,
      );
    }
    throw error;
  }
  await writeFile(join(dir, FILES.record), JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  return dir;
}

/** Every run under the base. */
export async function listRuns(base: string): Promise<RunState[]> {
  const names = await readdir(base).catch(() => [] as string[]);
  const runs: RunState[] = [];
  for (const name of names.sort()) {
    const run = await readRun(join(base, name));
    if (run !== undefined) runs.push(run);
  }
  return runs;
}

/** The run `what` names: a run name, or the recipe or build directory it was started from. */
export async function findRun(base: string, what: string, cwd: string): Promise<RunState> {
  const runs = await listRuns(base);
  const path = resolve(cwd, what);
  const found = runs.find((r) => r.record.name === what) ?? runs.find((r) => r.record.input === path);
  if (found === undefined) {
    const names = runs.map((r) => r.record.name);
    throw new NiftyError(
      "NIFTY755",
      `no run named ${what} in ${base}`,
      names.length > 0
        ? `runs here: ${names.join(", ")}`
        : "nothing started by niftyc run is running as this user",
    );
  }
  return found;
}
