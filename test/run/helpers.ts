// `niftyc run` driven as a user would: the real CLI as root, and as an
// ordinary user created for the test (useradd; run through setpriv), against
// the loopback Debian mirror. Every run a test starts is stopped (or killed by
// PID) in teardown.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import { ROOT, bootUnavailable, tempDir } from "../boot/harness.ts";
import { listening, sleep } from "../support/net.ts";
import { requireParts } from "../support/skip.ts";

const NIFTYC = join(ROOT, "bin", "niftyc");
export const RUN_USER = "niftyc-run-test";

/** Why run tests cannot run here, or undefined. */
function runUnavailable(): string | undefined {
  const boot = bootUnavailable();
  if (boot !== undefined) return boot;
  for (const tool of ["bwrap", "podman", "newuidmap", "setpriv", "useradd"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0)
      return `${tool} is not installed (packages bubblewrap, podman, uidmap)`;
  }
  return undefined;
}

/** Skip outside CI with the reason; in CI a missing part is a failure. */
export function requireRun(t: ExecutionContext): boolean {
  return requireParts(t, "run tests", runUnavailable());
}

export interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** The test's ordinary user: made with useradd -m, which also gives it a /etc/subuid range. */
export function ensureUser(): User {
  if (spawnSync("id", ["-u", RUN_USER]).status !== 0) {
    const made = spawnSync("useradd", ["-m", "-s", "/bin/sh", RUN_USER], { encoding: "utf8" });
    if (made.status !== 0 && spawnSync("id", ["-u", RUN_USER]).status !== 0)
      throw new Error(`useradd failed: ${made.stderr}`);
  }
  const uid = Number(spawnSync("id", ["-u", RUN_USER], { encoding: "utf8" }).stdout.trim());
  const gid = Number(spawnSync("id", ["-g", RUN_USER], { encoding: "utf8" }).stdout.trim());
  const home = spawnSync("sh", ["-c", `getent passwd ${RUN_USER} | cut -d: -f6`], {
    encoding: "utf8",
  }).stdout.trim();
  if (
    !readFileSync("/etc/subuid", "utf8")
      .split("\n")
      .some((l) => l.startsWith(`${RUN_USER}:`))
  )
    throw new Error(`${RUN_USER} has no /etc/subuid range`);
  const reach = spawnSync("setpriv", [
    `--reuid=${uid}`,
    `--regid=${gid}`,
    "--init-groups",
    "--",
    "sh",
    "-c",
    'test -x "$1" && test -r "$2"',
    "sh",
    process.execPath,
    NIFTYC,
  ]);
  if (reach.status !== 0)
    throw new Error(
      `${RUN_USER} cannot run ${process.execPath} ${NIFTYC}: the checkout must be readable by other users for these tests`,
    );
  return { name: RUN_USER, uid, gid, home };
}

/** A temp directory the user owns. */
export function userDir(t: ExecutionContext, user: User | undefined, prefix: string): string {
  const dir = tempDir(t, prefix);
  if (user !== undefined) chownSync(dir, user.uid, user.gid);
  return dir;
}

export interface Result {
  status: number;
  stdout: string;
  stderr: string;
}

/** The real CLI, as root or (through runuser) as the user, with a bounded wait. */
export function niftycAs(
  user: User | undefined,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 240_000,
): Promise<Result> {
  return startNiftycAs(user, args, env, timeoutMs).done;
}

export interface Started {
  done: Promise<Result>;
  /** PID of niftyc itself, which leads its own process group. */
  pid: number;
  /** What it has printed so far. */
  output(): string;
}

export function startNiftycAs(
  user: User | undefined,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 240_000,
): Started {
  const base = [process.execPath, NIFTYC, ...args];
  const envWords = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  // env and setpriv exec in place: the PID is niftyc's. Its own process group, as a terminal's job.
  const argv =
    user === undefined
      ? ["env", ...envWords, ...base]
      : [
          "setpriv",
          `--reuid=${user.uid}`,
          `--regid=${user.gid}`,
          "--init-groups",
          "--",
          "env",
          `HOME=${user.home}`,
          `USER=${user.name}`,
          ...envWords,
          ...base,
        ];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const done = new Promise<Result>((resolve, fail) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", fail);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    });
  });
  return { done, pid: child.pid!, output: () => stdout + stderr };
}

/**
 * Waits until a started run listens on `port`. A run that ends first fails the wait at once, and
 * either failure carries everything niftyc printed.
 */
export async function waitForRunPort(run: Started, port: number, timeoutMs: number): Promise<void> {
  let ended: Result | undefined;
  run.done.then(
    (r) => (ended = r),
    () => {},
  );
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (ended !== undefined)
      throw new Error(
        `niftyc ended (exit ${ended.status}) before anything listened on ${port}:\n${run.output()}`,
      );
    if (await listening(port)) return;
    await sleep(100);
  }
  throw new Error(
    `nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms; niftyc printed:\n${run.output()}`,
  );
}

/** Lines of /proc/mounts (the host's mount namespace) that mention `path`. */
export function mountsUnder(path: string): string[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter((l) => l.includes(path));
}

/** PIDs of processes whose command line mentions `text`. */
export function processesWith(text: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) found.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** Kill what a failed test left running: every process that mentions `text`. */
export function killAll(text: string): void {
  for (const pid of processesWith(text)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone.
    }
  }
}

/**
 * Kill every process whose environment has XDG_RUNTIME_DIR=`dir`: rootless podman leaves a pause
 * process holding its user namespace for as long as that runtime directory lives.
 */
export function killByRuntimeDir(dir: string): void {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, "utf8").split("\0").includes(`XDG_RUNTIME_DIR=${dir}`))
        process.kill(Number(entry), "SIGKILL");
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
}

export function exists(path: string): boolean {
  return existsSync(path);
}
