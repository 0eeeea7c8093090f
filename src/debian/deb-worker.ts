// A worker thread that reads .debs whole (src/debian/deb-readers.ts starts it):
// decompressing, parsing the tar, hashing and writing each member into the
// store, then the contents record. It answers each job with the contents, or
// with the error as plain data for the main thread to raise again.
import { parentPort } from "node:worker_threads";
import { Store } from "../cache/store.ts";
import { readDebIntoStore } from "./deb.ts";
import { errorAsData, type DebJob, type DebReply } from "./deb-readers.ts";

const port = parentPort!;
port.on("message", (job: DebJob) => {
  readDebIntoStore(new Store(job.storeDir), job.digest, job.what, job.limits).then(
    (contents) => port.postMessage({ id: job.id, contents } satisfies DebReply),
    (error: unknown) => port.postMessage({ id: job.id, error: errorAsData(error) } satisfies DebReply),
  );
});
