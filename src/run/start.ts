// Starting, waiting for and stopping a run. Attached, the engine shares
// niftyc's terminal and niftyc waits, forwards Ctrl-C and SIGTERM as the
// image's stop, and clears up. Detached, a small sh supervisor (in its own
// session) waits for the engine, records its exit status and removes the
// run's copy; `niftyc run --stop` finds the run by its directory.
import { execFile, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { shellQuote } from "../emit/quote.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { containerStatus, ownSession, podmanName, type EngineName } from "./engines.ts";
import type { Privilege } from "./privilege.ts";
import { processAlive } from "../core/process.ts";
import { FILES, readRun, removeRun, type RunRecord, type RunState } from "./rundir.ts";
import { removeArgv } from "./trees.ts";
import { NiftyError } from "../diagnostics/errors.ts";

export interface StartInput {
  dir: string;
  record: RunRecord;
  argv: readonly string[];
  privilege: Privilege;
  /** Environment of the engine process (the CLI's, read once). */
  env: NodeJS.ProcessEnv;
}

/** How long a start waits for the engine to show that the container is up. */
export const START_WAIT_MS = 60_000;
const POLL_MS = 100;

/** The engines' own processes, before they exec the container's first program ("(sd-…)": systemd's helpers). */
const ENGINE_COMMS = new Set(["systemd-nspawn", "bwrap"]);

/** A process's name and how many PID namespaces deep it is, from /proc. */
function procStatus(pid: number): { name: string; depth: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const name = /^Name:\t(.*)$/m.exec(text)?.[1] ?? "";
    const nspid = /^NSpid:\t(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    return { name, depth: nspid.length };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const found: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const tid of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text !== "") found.push(...text.split(/\s+/).map(Number));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/**
 * Whether the container is demonstrably up. podman: `podman container inspect` says it is
 * running (its network, ports included, is set up before that). nspawn and bwrap: a process
 * under the engine, in the container's PID namespace, has left the engine's code for the
 * image's init or the command (nspawn and bwrap have done their mounts by then).
 */
export async function containerUp(
  record: RunRecord,
  enginePid: number,
  env: NodeJS.ProcessEnv,
): Promise<boolean> {
  if (record.engine === "podman") {
    const state = await new Promise<string>((done) =>
      execFile(
        "podman",
        ["container", "inspect", "--format", "{{.State.Status}}", podmanName(record.name)],
        { env, timeout: 30_000, killSignal: "SIGKILL" },
        (error, stdout) => done(error ? "" : String(stdout).trim()),
      ),
    );
    return state === "running";
  }
  const engine = procStatus(enginePid);
  if (engine === undefined) return false;
  const queue = childrenOf(enginePid);
  for (let seen = 0; queue.length > 0 && seen < 1000; seen++) {
    const pid = queue.shift()!;
    const p = procStatus(pid);
    if (p !== undefined && p.depth > engine.depth && !ENGINE_COMMS.has(p.name) && !p.name.startsWith("("))
      return true;
    queue.push(...childrenOf(pid));
  }
  return false;
}

function signalStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return 128 + (numbers[signal ?? ""] ?? 1);
}

/**
 * An engine that ended before the container was seen up failed to start it: a booted image does
 * not end at once, and podman's own failures are 125 (podman), 126 (cannot run) and 127 (not
 * found). A command's own status may come before it is seen, so under nspawn and bwrap a command
 * that ends at once is taken at its word.
 */
function engineFailed(record: RunRecord, raw: number): boolean {
  if (raw === 0) return false;
  return record.boot || (record.engine === "podman" && raw >= 125 && raw <= 127);
}

/**
 * Run attached to this terminal; resolves with the container's exit status once everything is
 * cleared, and whether the engine failed before the container was seen up.
 */
export async function runAttached(input: StartInput): Promise<{ status: number; failedToStart: boolean }> {
  const infoFd =
    input.record.engine === "bwrap" ? openSync(join(input.dir, FILES.info), "w", 0o600) : undefined;
  const child = spawn(input.argv[0]!, input.argv.slice(1), {
    stdio: ["inherit", "inherit", "inherit", ...(infoFd !== undefined ? [infoFd] : [])],
    env: input.env,
    detached: ownSession(input.record.engine),
  });
  if (infoFd !== undefined) closeSync(infoFd);
  const exited = new Promise<number>((done) => {
    child.once("error", () => done(127));
    child.once("exit", (code, signal) => done(signalStatus(code, signal)));
  });
  if (child.pid !== undefined) await writeFile(join(input.dir, FILES.pid), `${child.pid}\n`);
  // Ctrl-C (outside nspawn's raw terminal) and SIGTERM stop the container the way its init wants.
  let stopping = false;
  const onSignal = () => {
    if (stopping || child.pid === undefined) return;
    stopping = true;
    void signalStop(input.record, child.pid, input.dir, input.env);
  };
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const s of signals) process.on(s, onSignal);
  let ended = false;
  let up = false;
  const watching = (async () => {
    for (let waited = 0; !ended && child.pid !== undefined && waited < START_WAIT_MS; waited += POLL_MS) {
      if (await containerUp(input.record, child.pid, input.env)) {
        up = true;
        return;
      }
      await sleep(POLL_MS);
    }
  })();
  try {
    const raw = await exited;
    ended = true;
    await watching;
    // Whole or not at all: a `--stop` waiting for it reads it as soon as it is there.
    const exitFile = join(input.dir, FILES.exit);
    await writeFile(`${exitFile}.new`, `${raw}\n`)
      .then(() => rename(`${exitFile}.new`, exitFile))
      .catch(() => undefined);
    const status = containerStatus(input.record.engine, input.record.boot, raw);
    return { status, failedToStart: !up && !stopping && engineFailed(input.record, raw) };
  } finally {
    for (const s of signals) process.off(s, onSignal);
    // A `niftyc run --stop` that stopped this run reads its exit status, then removes the directory.
    if (!existsSync(join(input.dir, FILES.stopping))) await removeRun(input.dir, input.privilege);
  }
}

/** What to do about an engine that failed to start the container, from what its console says. */
function startHint(record: RunRecord, console: string): string {
  if (/address already in use/i.test(console))
    return "a host port given with --publish is taken (ss -ltnp shows by what): publish another host port (-p OTHER:PORT), or stop what holds it";
  if (/slirp4netns|pasta/i.test(console))
    return "rootless podman forwards ports through slirp4netns or pasta, which need /dev/net/tun open to users (docs/run.md): drop --publish to use the host's network, or run as root";
  if (console === "")
    return `${record.engine}'s own message is above. A host port of --publish in use: publish another; rootless podman with --publish: slirp4netns or pasta and /dev/net/tun (docs/run.md)`;
  return `fix what ${record.engine} says in its console, then run again (docs/run.md)`;
}

/** The error of an engine that ended before the container was up: its status, its console's last lines, a hint. */
export function startFailure(record: RunRecord, status: number, console: string, log?: string): NiftyError {
  const tail = console
    .split("\n")
    .filter((line) => line.trim() !== "")
    .slice(-15);
  const details =
    tail.length > 0 ? [`the end of its console (${log ?? FILES.log}):`, ...tail.map((l) => `  ${l}`)] : [];
  return new NiftyError(
    "NIFTY761",
    `${record.name} did not start: ${record.engine} ended with status ${status} before the container was up`,
    startHint(record, console),
    details,
  );
}

export interface DetachedStart {
  pid?: number;
  /** The container's status, when the engine ended before the container was seen up. */
  exit?: number;
  /** The engine ended that way because it failed to start the container (engineFailed). */
  failed: boolean;
  /** The container was seen up (containerUp). */
  up: boolean;
  log: string;
}

/**
 * Start in the background: `sh` runs the engine, writes its PID and then its exit status, and
 * removes the copy. Resolves once the container is seen up, or the engine has ended, or after
 * `waitMs` with neither (it is left running then).
 */
export async function runDetached(input: StartInput, waitMs = START_WAIT_MS): Promise<DetachedStart> {
  const file = (name: string) => shellQuote(join(input.dir, name));
  const remove =
    input.record.copy === undefined
      ? ""
      : `; ${removeArgv(input.privilege, input.record.copy).map(shellQuote).join(" ")} >/dev/null 2>&1`;
  const script = `"$@" & echo $! > ${file(FILES.pid)}.new && mv ${file(FILES.pid)}.new ${file(FILES.pid)}; wait $!; status=$?${remove}; echo $status > ${file(FILES.exit)}.new && mv ${file(FILES.exit)}.new ${file(FILES.exit)}`;
  const log = join(input.dir, FILES.log);
  const out = openSync(log, "a", 0o600);
  const infoFd =
    input.record.engine === "bwrap" ? openSync(join(input.dir, FILES.info), "w", 0o600) : undefined;
  try {
    const child = spawn("sh", ["-c", script, "niftyc-run", ...input.argv], {
      detached: true,
      stdio: ["ignore", out, out, ...(infoFd !== undefined ? [infoFd] : [])],
      env: input.env,
    });
    child.unref();
  } finally {
    closeSync(out);
    if (infoFd !== undefined) closeSync(infoFd);
  }
  for (let waited = 0; ; waited += POLL_MS) {
    const state = await readRun(input.dir);
    const pid = state?.pid !== undefined ? { pid: state.pid } : {};
    if (state?.exit !== undefined) {
      const exit = containerStatus(input.record.engine, input.record.boot, state.exit);
      return { ...pid, exit, failed: engineFailed(input.record, state.exit), up: false, log };
    }
    if (state?.pid !== undefined && (await containerUp(input.record, state.pid, input.env)))
      return { ...pid, failed: false, up: true, log };
    if (waited >= waitMs) return { ...pid, failed: false, up: false, log };
    await sleep(POLL_MS);
  }
}

/** Ask the container to stop the way its init wants. */
async function signalStop(
  record: RunRecord,
  enginePid: number,
  dir: string,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const engine: EngineName = record.engine;
  if (engine === "nspawn") {
    // nspawn turns SIGTERM into --kill-signal (the image's stop signal) for PID 1.
    process.kill(enginePid, "SIGTERM");
  } else if (engine === "bwrap") {
    const init = await bwrapInit(dir);
    if (init !== undefined) process.kill(init, record.stopSignal.number);
    else process.kill(enginePid, "SIGTERM");
  } else {
    // podman stop sends the --stop-signal given at start, then SIGKILL after the timeout.
    spawnSync("podman", ["stop", "--time", "20", podmanName(record.name)], {
      stdio: "ignore",
      env,
      timeout: 60_000,
      killSignal: "SIGKILL",
    });
  }
}

/** The host PID of the container's PID 1, from bwrap's --info-fd report. */
async function bwrapInit(dir: string): Promise<number | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dir, FILES.info), "utf8")) as { "child-pid"?: number };
    return typeof info["child-pid"] === "number" ? info["child-pid"] : undefined;
  } catch {
    return undefined;
  }
}

export interface StopResult {
  /** The container's exit status, when it was recorded. */
  status?: number;
  /** It did not stop in time and was killed. */
  killed: boolean;
  /** It had ended already. */
  wasStopped: boolean;
}

/** Stop a run found by its directory: the image's stop signal, then wait; SIGKILL after `timeoutMs`. */
export async function stopRun(
  run: RunState,
  privilege: Privilege,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<StopResult> {
  const wasStopped = !run.running;
  let killed = false;
  // An attached run's niftyc removes its directory when the engine ends, and the exit status with it,
  // unless told first that a stop will read that status and remove the directory itself.
  let asked = false;
  if (run.running && run.pid !== undefined) {
    if (!run.record.detached)
      asked = await writeFile(join(run.dir, FILES.stopping), "", { mode: 0o600 }).then(
        () => true,
        () => false,
      );
    await signalStop(run.record, run.pid, run.dir, env);
    let waited = 0;
    while (processAlive(run.pid) && waited < timeoutMs) {
      await sleep(100);
      waited += 100;
    }
    if (processAlive(run.pid)) {
      killed = true;
      const init = run.record.engine === "bwrap" ? await bwrapInit(run.dir) : undefined;
      for (const pid of [init, run.pid]) if (pid !== undefined) process.kill(pid, "SIGKILL");
      for (let w = 0; processAlive(run.pid) && w < 10_000; w += 100) await sleep(100);
    }
  }
  // A detached supervisor removes the copy, then records the status; an attached niftyc clears the directory itself.
  let state = await readRun(run.dir);
  for (let w = 0; state !== undefined && state.exit === undefined && w < 30_000; w += 100) {
    await sleep(100);
    state = await readRun(run.dir);
  }
  const raw = state?.exit ?? run.exit;
  if (run.record.detached || asked) await removeRun(run.dir, privilege);
  const status = raw === undefined ? undefined : containerStatus(run.record.engine, run.record.boot, raw);
  return { ...(status !== undefined ? { status } : {}), killed, wasStopped };
}

/** Write the record again (after learning the copy path). */
export async function saveRecord(dir: string, record: RunRecord): Promise<void> {
  await writeFile(join(dir, `${FILES.record}.new`), JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  await rename(join(dir, `${FILES.record}.new`), join(dir, FILES.record));
}
