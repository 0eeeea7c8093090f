// Worker threads for the CPU-bound work that fills the store: reading .debs whole (decompressing, parsing
// the tar, hashing and writing every member) and writing the tarballs while the image is checked.
// On the main thread that work queued behind the downloads and the store's writes, one core doing
// all of it. A job names an exported function of a module and its arguments (plain data); the
// thread (src/cache/thread.ts) imports the module and calls it. The threads start with the first
// job, or ahead of it (startThreads), and stay while there is work (unref'd when idle, so they
// never keep the process alive). A job's answer depends only on its arguments, so which thread
// runs it changes nothing.
import os from "node:os";
import { Worker } from "node:worker_threads";
import type { ErrorCode } from "../diagnostics/codes.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { FetchError, type FetchBlame } from "./fetch-error.ts";

export interface ThreadJob {
  id: number;
  /** The module's URL (import.meta.url's kind). */
  module: string;
  /** The exported function to call, with `args`. */
  call: string;
  args: unknown[];
}

export type ThreadReply = { id: number; result: unknown } | { id: number; error: ErrorData };

/** An error as plain data: what a NiftyError says, or a system error's code and message. */
interface ErrorData {
  message: string;
  nifty?: { code: ErrorCode; hint?: string; details?: string[]; blame?: FetchBlame };
  system?: { code?: string; errno?: number; syscall?: string; path?: string };
}

/** Threads: one a core, at most this many (the downloads and the store's syncs need the rest). */
const MAX_THREADS = 4;
/** Jobs a thread runs at once: one decodes a .deb while another waits on the disk. */
const JOBS_PER_THREAD = 2;
/**
 * A thread's young generation, in MB: its garbage is short-lived buffers (decoded chunks, tar
 * headers), and a small nursery keeps them in the CPU's caches and touches less fresh memory. On a
 * cold systemd image, against V8's default: about 5% less wall and CPU time, 20 MB less peak RSS.
 */
const YOUNG_GENERATION_MB = 8;
/**
 * A thread's first lines: Node's compile cache, as bin/niftyc turns on for the main thread (a
 * worker does not inherit it, and compiling its modules afresh cost 150 ms of CPU each), then the
 * job loop.
 */
const BOOT = `require("node:module").enableCompileCache?.();
import(${JSON.stringify(new URL("./thread.ts", import.meta.url).href)});`;

export function errorAsData(error: unknown): ErrorData {
  if (error instanceof NiftyError) {
    const nifty: NonNullable<ErrorData["nifty"]> = { code: error.code };
    if (error.hint !== undefined) nifty.hint = error.hint;
    if (error.details !== undefined) nifty.details = error.details;
    if (error instanceof FetchError) nifty.blame = error.blame;
    return { message: error.message, nifty };
  }
  const e = error as NodeJS.ErrnoException;
  const system: NonNullable<ErrorData["system"]> = {};
  for (const key of ["code", "errno", "syscall", "path"] as const)
    if (e?.[key] !== undefined) (system as Record<string, unknown>)[key] = e[key];
  return { message: e instanceof Error ? e.message : String(error), system };
}

function errorFromData(data: ErrorData): Error {
  const n = data.nifty;
  if (n?.blame !== undefined) return new FetchError(n.code, n.blame, data.message, n.hint, n.details);
  if (n !== undefined) return new NiftyError(n.code, data.message, n.hint, n.details);
  return Object.assign(new Error(data.message), data.system);
}

interface Thread {
  worker: Worker;
  running: Map<number, { resolve(c: unknown): void; reject(e: Error): void }>;
}

class Threads {
  readonly #threads: Thread[] = [];
  readonly #waiting: Array<() => void> = [];
  readonly #size = Math.max(1, Math.min(MAX_THREADS, os.availableParallelism()));
  #nextId = 0;

  get count(): number {
    return this.#threads.length;
  }

  /** Every thread started, idle. */
  start(): void {
    while (this.#threads.length < this.#size) this.#start();
  }

  async run(job: Omit<ThreadJob, "id">): Promise<unknown> {
    let thread = this.#pick();
    while (thread === undefined) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      thread = this.#pick();
    }
    const id = this.#nextId++;
    const chosen = thread;
    return new Promise<unknown>((resolve, reject) => {
      chosen.running.set(id, { resolve, reject });
      chosen.worker.ref();
      chosen.worker.postMessage({ ...job, id } satisfies ThreadJob);
    });
  }

  /** An idle thread, else a new one while there are fewer than #size, else the least busy with room. */
  #pick(): Thread | undefined {
    const idle = this.#threads.find((r) => r.running.size === 0);
    if (idle !== undefined) return idle;
    if (this.#threads.length < this.#size) return this.#start();
    const least = this.#threads.reduce((a, b) => (b.running.size < a.running.size ? b : a));
    return least.running.size < JOBS_PER_THREAD ? least : undefined;
  }

  #start(): Thread {
    const worker = new Worker(BOOT, {
      eval: true,
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    const thread: Thread = { worker, running: new Map() };
    this.#threads.push(thread);
    // A "message" listener refs the worker's port again: unref'd only after the listeners.
    worker.on("message", (reply: ThreadReply) => {
      const job = thread.running.get(reply.id);
      thread.running.delete(reply.id);
      if (thread.running.size === 0) worker.unref();
      this.#waiting.shift()?.();
      if ("result" in reply) job?.resolve(reply.result);
      else job?.reject(errorFromData(reply.error));
    });
    // A thread that dies fails its jobs; the next job starts another.
    const fail = (error: Error) => {
      const at = this.#threads.indexOf(thread);
      if (at >= 0) this.#threads.splice(at, 1);
      for (const job of thread.running.values()) job.reject(error);
      thread.running.clear();
      for (const wake of this.#waiting.splice(0)) wake();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`a worker thread exited (status ${code})`)));
    worker.unref();
    return thread;
  }
}

let threads: Threads | undefined;

/** Start the threads ahead of the first job (they stay idle, never keeping the process alive). */
export function startThreads(): void {
  threads ??= new Threads();
  threads.start();
}

/** How many threads run: as many jobs as that start at once, without a thread's start-up. */
export function threadsRunning(): number {
  return threads?.count ?? 0;
}

/**
 * Call `module`'s export `call` with `args` in a worker thread: the arguments and the answer are
 * copied (structured clone), so both are plain data; an error comes back as a NiftyError when it
 * was one.
 */
export function runInThread(module: string, call: string, args: unknown[]): Promise<unknown> {
  threads ??= new Threads();
  return threads.run({ module, call, args });
}
