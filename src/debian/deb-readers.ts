// .debs read whole in worker threads. Decompressing, parsing the tar, hashing
// and writing every member is most of a cold build's CPU; on the main thread
// it queued behind the downloads and the store's writes, one core doing all of
// it. The workers start with the first .deb to read and stay while there is
// work (unref'd when idle, so they never keep the process alive). A .deb's
// contents depend only on its bytes, so which worker reads it changes nothing.
import os from "node:os";
import { Worker } from "node:worker_threads";
import type { Limits } from "../core/limits.ts";
import type { ErrorCode } from "../diagnostics/codes.ts";
import { NiftyError } from "../diagnostics/errors.ts";
import { FetchError, type FetchBlame } from "../cache/fetch-error.ts";

export interface DebJob {
  id: number;
  storeDir: string;
  digest: string;
  what: string;
  limits: Limits | undefined;
}

/**
 * A job's answer: the .deb's contents (deb.ts's DebContents, not named here: deb.ts imports this
 * module, and no two modules import each other, types included: test/architecture/shape.test.ts), or its error.
 */
export type DebReply = { id: number; contents: unknown } | { id: number; error: ErrorData };

/** An error as plain data: what a NiftyError says, or a system error's code and message. */
interface ErrorData {
  message: string;
  nifty?: { code: ErrorCode; hint?: string; details?: string[]; blame?: FetchBlame };
  system?: { code?: string; errno?: number; syscall?: string; path?: string };
}

/** Workers: one a core, at most this many (the downloads and the store's syncs need the rest). */
const MAX_WORKERS = 4;
/** .debs a worker reads at once: one decodes while another waits on the disk. */
const JOBS_PER_WORKER = 2;
/**
 * A worker's first lines: Node's compile cache, as bin/niftyc turns on for the main thread (a
 * worker does not inherit it, and compiling its modules afresh cost 150 ms of CPU each), then the
 * reader itself.
 */
const BOOT = `require("node:module").enableCompileCache?.();
import(${JSON.stringify(new URL("./deb-worker.ts", import.meta.url).href)});`;

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

interface Reader {
  worker: Worker;
  running: Map<number, { resolve(c: unknown): void; reject(e: Error): void }>;
}

class DebReaders {
  readonly #readers: Reader[] = [];
  readonly #waiting: Array<() => void> = [];
  readonly #size = Math.max(1, Math.min(MAX_WORKERS, os.availableParallelism()));
  #nextId = 0;

  /** Every reader started, idle. */
  start(): void {
    while (this.#readers.length < this.#size) this.#start();
  }

  async read(job: Omit<DebJob, "id">): Promise<unknown> {
    let reader = this.#pick();
    while (reader === undefined) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      reader = this.#pick();
    }
    const id = this.#nextId++;
    const chosen = reader;
    return new Promise<unknown>((resolve, reject) => {
      chosen.running.set(id, { resolve, reject });
      chosen.worker.ref();
      chosen.worker.postMessage({ ...job, id } satisfies DebJob);
    });
  }

  /** An idle reader, else a new one while there are fewer than #size, else the least busy with room. */
  #pick(): Reader | undefined {
    const idle = this.#readers.find((r) => r.running.size === 0);
    if (idle !== undefined) return idle;
    if (this.#readers.length < this.#size) return this.#start();
    const least = this.#readers.reduce((a, b) => (b.running.size < a.running.size ? b : a));
    return least.running.size < JOBS_PER_WORKER ? least : undefined;
  }

  #start(): Reader {
    const worker = new Worker(BOOT, { eval: true });
    const reader: Reader = { worker, running: new Map() };
    this.#readers.push(reader);
    // A "message" listener refs the worker's port again: unref'd only after the listeners.
    worker.on("message", (reply: DebReply) => {
      const job = reader.running.get(reply.id);
      reader.running.delete(reply.id);
      if (reader.running.size === 0) worker.unref();
      this.#waiting.shift()?.();
      if ("contents" in reply) job?.resolve(reply.contents);
      else job?.reject(errorFromData(reply.error));
    });
    // A worker that dies fails its jobs; the next read starts another.
    const fail = (error: Error) => {
      const at = this.#readers.indexOf(reader);
      if (at >= 0) this.#readers.splice(at, 1);
      for (const job of reader.running.values()) job.reject(error);
      reader.running.clear();
      for (const wake of this.#waiting.splice(0)) wake();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`a .deb reader thread exited (status ${code})`)));
    worker.unref();
    return reader;
  }
}

let readers: DebReaders | undefined;

/** Start the reader threads ahead of the first read (they stay idle, never keeping the process alive). */
export function startDebReaders(): void {
  readers ??= new DebReaders();
  readers.start();
}

/** Read the .deb stored under `digest` in a worker thread: its members into the store and its contents record. */
export function readDebInWorker(job: Omit<DebJob, "id">): Promise<unknown> {
  readers ??= new DebReaders();
  return readers.read(job);
}
