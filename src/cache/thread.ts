// A worker thread of src/cache/threads.ts: each job imports its module (once; the thread keeps it)
// and calls the export it names, then answers with the result, or with the error as plain data
// for the main thread to raise again.
import { parentPort } from "node:worker_threads";
import { errorAsData, type ThreadJob, type ThreadReply } from "./threads.ts";

const port = parentPort!;
port.on("message", (job: ThreadJob) => {
  (async () => {
    const module = (await import(job.module)) as Record<string, (...args: unknown[]) => unknown>;
    const call = module[job.call];
    if (typeof call !== "function") throw new Error(`${job.module} exports no function ${job.call}`);
    return call(...job.args);
  })().then(
    (result) => port.postMessage({ id: job.id, result } satisfies ThreadReply),
    (error: unknown) => port.postMessage({ id: job.id, error: errorAsData(error) } satisfies ThreadReply),
  );
});
