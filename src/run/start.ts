// Starting, waiting for and stopping a run. Attached, the engine shares
// niftyc's terminal and niftyc waits, forwards Ctrl-C and SIGTERM as the
// image's stop, and clears up. Detached, a small sh supervisor (in its own
// session) waits for the engine, records its exit status and removes the
// run's copy; `niftyc run --stop` finds the run by its directory.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { shellQuote } from "../emit/quote.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { containerStatus, ownSession, podmanName, type EngineName } from "./engines.ts";
import type { Privilege } from "./privilege.ts";
import { processAlive } from "../core/process.ts";
import { FILES, readRun, removeRun, type RunRecord, type RunState } from "./rundir.ts";
import { removeArgv } from "./trees.ts";

export interface StartInput {
  dir: string;
  record: RunRecord;
  argv: readonly string[];
  privilege: Privilege;
  /** Environment of the engine process (the CLI's, read once). */
  env: NodeJS.ProcessEnv;
}

function signalStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };
  return 128 + (numbers[signal ?? ""] ?? 1);
}

/** Run attached to this terminal; resolves with the container's exit status once everything is cleared. */
export async function runAttached(input: StartInput): Promise<number> {
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
  try {
    const status = await exited;
    await writeFile(join(input.dir, FILES.exit), `${status}\n`).catch(() => undefined);
    return containerStatus(input.record.engine, input.record.boot, status);
  } finally {
    for (const s of signals) process.off(s, onSignal);
    await removeRun(input.dir, input.privilege);
  }
}

/**
 * Start in the background: `sh` runs the engine, writes its PID and then its exit status, and
 * removes the copy. Resolves with the engine's PID once it runs, or its status if it ended first.
 */
export async function runDetached(input: StartInput): Promise<{ pid?: number; exit?: number; log: string }> {
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
  for (let waited = 0; waited < 10_000; waited += 50) {
    const state = await readRun(input.dir);
    if (state?.exit !== undefined)
      return { exit: containerStatus(input.record.engine, input.record.boot, state.exit), log };
    if (state?.pid !== undefined) return { pid: state.pid, log };
    await sleep(50);
  }
  return { log };
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
  if (run.running && run.pid !== undefined) {
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
  if (run.record.detached) await removeRun(run.dir, privilege);
  const status = raw === undefined ? undefined : containerStatus(run.record.engine, run.record.boot, raw);
  return { ...(status !== undefined ? { status } : {}), killed, wasStopped };
}

/** Write the record again (after learning the copy path). */
export async function saveRecord(dir: string, record: RunRecord): Promise<void> {
  await writeFile(join(dir, `${FILES.record}.new`), JSON.stringify(record, null, 2) + "\n", { mode: 0o600 });
  await rename(join(dir, `${FILES.record}.new`), join(dir, FILES.record));
}
