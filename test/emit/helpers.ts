// Process helpers for the emit tests: every run has a timeout, every
// long-running child can be waited on for output and killed by PID.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run to completion; killed (SIGKILL) after timeoutMs. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A background process whose combined output can be awaited. */
export class Watched {
  readonly child: ChildProcess;
  output = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<() => void> = [];

  constructor(cmd: string, args: string[], opts: { cwd?: string } = {}) {
    this.child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const add = (d: Buffer): void => {
      this.output += d.toString();
      for (const w of this.#waiters) w();
    };
    this.child.stdout?.on("data", add);
    this.child.stderr?.on("data", add);
    this.exited = new Promise((resolve) =>
      this.child.on("close", (code, signal) => {
        for (const w of this.#waiters) w();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error("process did not start");
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once `text` appeared; rejects after timeoutMs or if the process ends first. */
  waitFor(text: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error(`timed out waiting for ${JSON.stringify(text)}; output:\n${this.output}`)),
        timeoutMs,
      );
      const check = (): void => {
        if (this.output.includes(text)) done();
        else if (!this.running)
          done(new Error(`process ended before ${JSON.stringify(text)}; output:\n${this.output}`));
      };
      const done = (error?: Error): void => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((w) => w !== check);
        if (error === undefined) resolve();
        else reject(error);
      };
      this.#waiters.push(check);
      check();
    });
  }

  /** Resolves with the exit status, or undefined if still running after timeoutMs. */
  async waitExit(
    timeoutMs: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>(
      (resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)),
    );
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Teardown: SIGKILL by PID if still running, then wait for it. */
  async kill(): Promise<void> {
    if (this.running && this.child.pid !== undefined) {
      process.kill(this.child.pid, "SIGKILL");
      await this.waitExit(10_000);
    }
  }
}

export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `niftyc-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** sha256 of every regular file under `root`, by relative path. */
export async function hashFiles(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === "" ? root : join(root, rel);
    const st = await stat(abs);
    if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) await walk(rel === "" ? name : `${rel}/${name}`);
    } else {
      out[rel] = createHash("sha256")
        .update(await readFile(abs))
        .digest("hex");
    }
  };
  await walk("");
  return out;
}

/** A Map as an object with sorted keys, for order-independent deep equality. */
export function sortedRecord<T>(map: Map<string, T>): Record<string, T> {
  return Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
