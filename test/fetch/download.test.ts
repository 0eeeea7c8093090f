import test from "ava";
import { execFile, spawn } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { openStore } from "../../src/cache/store.ts";
import { cacheGc } from "../../src/cache/maintenance.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { fetchBlob } from "../../src/fetch/download.ts";
import type { FetchProgress } from "../../src/fetch/download.ts";
import { dropFirstThenServe, halfThenStall, serve, startServer } from "./helpers/server.ts";
import { bytes, listFiles, sha256, tempDir, waitFor } from "./helpers/util.ts";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "helpers", "fetch-child.ts");

const BODY = bytes(300_000, 7);
const DIGEST = sha256(BODY);

async function setup() {
  const dir = await tempDir();
  const store = await openStore(dir);
  return { dir, store };
}

test("downloads a blob into the store, read-only, and a second fetch makes no request", async (t) => {
  const server = await startServer({ "/bb": serve(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const seen: FetchProgress[] = [];
  const r = await fetchBlob(store, {
    name: "busybox",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: false,
    onProgress: (p) => seen.push(p),
  });
  t.is(r.digest, DIGEST);
  t.is(r.size, BODY.length);
  t.false(r.fromCache);
  t.is(r.url, `${server.url}/bb`);
  t.true((await fsp.readFile(r.path)).equals(BODY));
  t.is((await fsp.stat(r.path)).mode & 0o777, 0o444);
  t.is(seen.at(-1)?.received, BODY.length);
  t.is(seen.at(-1)?.total, BODY.length);
  t.deepEqual(await listFiles(store.tmpDir), []);

  const again = await fetchBlob(store, {
    name: "busybox",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: false,
  });
  t.true(again.fromCache);
  t.is(again.path, r.path);
  t.is(server.hits(), 1);
});

test("a digest mismatch keeps nothing and names the URL, expected and actual digests", async (t) => {
  const server = await startServer({ "/bb": serve(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const wrong = sha256(Buffer.from("something else"));
  const err = await t.throwsAsync(
    fetchBlob(store, { name: "busybox", sources: [`${server.url}/bb`], digest: wrong, offline: false }),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY101");
  t.regex(err!.message, new RegExp(`${server.url}/bb`));
  t.true(err!.message.includes(wrong));
  t.true(err!.message.includes(DIGEST));
  t.deepEqual(await listFiles(store.blobsDir), []);
  t.deepEqual(await listFiles(store.tmpDir), []);
  t.is(server.hits("/bb"), 1, "a mismatch is not retried");
});

test("a 500 is retried and the second answer is used", async (t) => {
  const server = await startServer({
    "/bb": (req, res, hit) => (hit === 1 ? res.writeHead(500).end("busy") : serve(BODY)(req, res, hit)),
  });
  t.teardown(server.close);
  const { store } = await setup();
  const r = await fetchBlob(store, {
    name: "bb",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: false,
    retryDelayMs: 1,
  });
  t.is(r.digest, DIGEST);
  t.is(server.hits("/bb"), 2);
  t.true((await fsp.readFile(r.path)).equals(BODY));
});

test("a connection dropped mid-body is retried, and only the full body is stored", async (t) => {
  const server = await startServer({ "/bb": dropFirstThenServe(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const r = await fetchBlob(store, {
    name: "bb",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: false,
    retryDelayMs: 1,
  });
  t.is(server.hits("/bb"), 2);
  t.true((await fsp.readFile(r.path)).equals(BODY));
  t.deepEqual(await listFiles(store.blobsDir), [DIGEST.slice(7)]);
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("a stalled server hits the timeout, is retried, then reported", async (t) => {
  const server = await startServer({ "/bb": halfThenStall(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const err = await t.throwsAsync(
    fetchBlob(store, {
      name: "bb",
      sources: [`${server.url}/bb`],
      digest: DIGEST,
      offline: false,
      timeoutMs: 200,
      retries: 1,
      retryDelayMs: 1,
    }),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY103");
  t.regex(err!.details?.[0] ?? "", /stalled: no data for 200 ms \(after 2 attempts\)/);
  t.is(server.hits("/bb"), 2);
  t.deepEqual(await listFiles(store.blobsDir), []);
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("when the first source fails (4xx, not retried) the second is used", async (t) => {
  const server = await startServer({ "/b": serve(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const r = await fetchBlob(store, {
    name: "bb",
    sources: [`${server.url}/a`, `${server.url}/b`],
    digest: DIGEST,
    offline: false,
    retryDelayMs: 1,
  });
  t.is(r.url, `${server.url}/b`);
  t.is(server.hits("/a"), 1);
  t.is(server.hits("/b"), 1);
});

test("redirects are followed", async (t) => {
  const server = await startServer({
    "/old": (_req, res) => res.writeHead(302, { location: "/new" }).end(),
    "/new": serve(BODY),
  });
  t.teardown(server.close);
  const { store } = await setup();
  const r = await fetchBlob(store, {
    name: "bb",
    sources: [`${server.url}/old`],
    digest: DIGEST,
    offline: false,
  });
  t.is(r.digest, DIGEST);
  t.is(server.hits("/new"), 1);
});

test("when every source fails, one error lists each URL and why", async (t) => {
  const server = await startServer({ "/boom": (_req, res) => res.writeHead(503).end() });
  const closed = await startServer();
  await closed.close(); // its port now refuses connections
  t.teardown(server.close);
  const { store } = await setup();
  const sources = [`${server.url}/missing`, `${server.url}/boom`, `${closed.url}/x`];
  const err = await t.throwsAsync(
    fetchBlob(store, {
      name: "busybox",
      sources,
      digest: DIGEST,
      offline: false,
      retries: 2,
      retryDelayMs: 1,
    }),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY103");
  t.deepEqual(err!.details, [
    `${server.url}/missing: HTTP 404`,
    `${server.url}/boom: HTTP 503 (after 3 attempts)`,
    `${closed.url}/x: connection refused (after 3 attempts)`,
  ]);
  t.false(err!.message.includes("\n"));
  t.regex(err!.hint ?? "", /cache import/);
});

test("offline: a stored blob is returned without a request; a missing one is an error saying how to import it", async (t) => {
  const server = await startServer({ "/bb": serve(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const missing = await t.throwsAsync(
    fetchBlob(store, { name: "busybox", sources: [`${server.url}/bb`], digest: DIGEST, offline: true }),
    { instanceOf: NiftyError },
  );
  t.is(missing?.code, "NIFTY102");
  t.true(missing!.message.includes(DIGEST));
  t.regex(missing!.hint ?? "", /niftyc cache import <file>/);

  await store.putBuffer(BODY);
  const r = await fetchBlob(store, {
    name: "busybox",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: true,
  });
  t.true(r.fromCache);
  t.is(server.hits(), 0);
});

test("a fetch served from the store never loads the HTTP client", async (t) => {
  const { dir, store } = await setup();
  await store.putBuffer(BODY);
  const script = path.join(here, "helpers", "lazy-undici-child.ts");
  const { stdout } = await run(process.execPath, [
    script,
    JSON.stringify({ storeDir: dir, sources: ["http://127.0.0.1:9/x"], digest: DIGEST }),
  ]);
  t.deepEqual(JSON.parse(stdout), { fromCache: true, undiciLoaded: false });
});

test("two processes fetching the same digest at once leave one good blob", async (t) => {
  const big = bytes(4 << 20, 3);
  const digest = sha256(big);
  // Hold both responses until both requests arrived, so the writes overlap.
  const waiting: (() => void)[] = [];
  const server = await startServer({
    "/big": (req, res, hit) => {
      waiting.push(() => serve(big)(req, res, hit));
      if (waiting.length === 2) for (const go of waiting) go();
    },
  });
  t.teardown(server.close);
  const { dir, store } = await setup();
  const arg = JSON.stringify({ storeDir: dir, name: "big", sources: [`${server.url}/big`], digest });
  const [a, b] = await Promise.all([
    run(process.execPath, [child, arg]),
    run(process.execPath, [child, arg]),
  ]);
  t.is(JSON.parse(a.stdout).digest, digest);
  t.is(JSON.parse(b.stdout).digest, digest);
  t.is(server.hits("/big"), 2);
  t.deepEqual(await listFiles(store.blobsDir), [digest.slice(7)]);
  t.true((await fsp.readFile(store.blobPath(digest))).equals(big));
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("a download killed mid-body leaves only a temp file; the next fetch succeeds and gc sweeps the temp", async (t) => {
  let halfSent!: () => void;
  const sent = new Promise<void>((resolve) => (halfSent = resolve));
  const server = await startServer({ "/bb": halfThenStall(BODY, () => halfSent()) });
  t.teardown(server.close);
  const { dir, store } = await setup();
  const proc = spawn(
    process.execPath,
    [child, JSON.stringify({ storeDir: dir, name: "bb", sources: [`${server.url}/bb`], digest: DIGEST })],
    {
      stdio: "ignore",
    },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    proc.on("exit", (_code, signal) => resolve(signal)),
  );
  await sent;
  const half = BODY.length >> 1;
  await waitFor(async () => {
    for (const f of await listFiles(store.tmpDir)) {
      if ((await fsp.stat(path.join(store.tmpDir, f))).size === half) return true;
    }
    return false;
  }, "the child to write half the body");
  proc.kill("SIGKILL");
  t.is(await exited, "SIGKILL");

  t.deepEqual(await listFiles(store.blobsDir), [], "no blob under a final name");
  const temps = await listFiles(store.tmpDir);
  t.is(temps.length, 1);
  t.true(temps[0]!.startsWith(`${proc.pid}-`));

  server.routes.set("/bb", serve(BODY));
  const r = await fetchBlob(store, {
    name: "bb",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: false,
  });
  t.true((await fsp.readFile(r.path)).equals(BODY));

  const gc = await cacheGc(store, { olderThanDays: 30 });
  t.deepEqual(gc.removedTempFiles, temps);
  t.deepEqual(await listFiles(store.tmpDir), []);
  t.true(await store.has(DIGEST), "the fresh blob is kept");
});

/** A tap that records what it is told, each attempt on its own. */
function recordingTap() {
  const attempts: Array<{ bytes: number; ended: boolean; aborted: boolean }> = [];
  const tap = () => {
    const seen = { bytes: 0, ended: false, aborted: false };
    attempts.push(seen);
    return {
      write: (chunk: Buffer) => void (seen.bytes += chunk.length),
      end: async () => {
        seen.ended = true;
        return `parsed ${seen.bytes} bytes`;
      },
      abort: async () => void (seen.aborted = true),
    };
  };
  return { attempts, tap };
}

test("a tap reads the body as it downloads; its result is given only with bytes that match the digest", async (t) => {
  const server = await startServer({ "/bb": dropFirstThenServe(BODY) });
  t.teardown(server.close);
  const { store } = await setup();
  const { attempts, tap } = recordingTap();
  const r = await fetchBlob(store, {
    name: "bb",
    sources: [`${server.url}/bb`],
    digest: DIGEST,
    offline: false,
    retryDelayMs: 1,
    tap,
  });
  t.is(r.tapped, `parsed ${BODY.length} bytes`);
  t.is(attempts.length, 2);
  t.true(attempts[0]!.aborted, "the cut attempt's reading is discarded");
  t.deepEqual(attempts[1], { bytes: BODY.length, ended: true, aborted: false });

  // Bytes that are not the digest's: the tap read them whole, then is told to discard them.
  const wrong = await t.throwsAsync(
    fetchBlob(store, {
      name: "bb",
      sources: [`${server.url}/bb`],
      digest: sha256(Buffer.from("other")),
      offline: false,
      tap,
    }),
    { instanceOf: NiftyError },
  );
  t.is(wrong?.code, "NIFTY101");
  t.deepEqual(attempts[2], { bytes: BODY.length, ended: true, aborted: true });
  // From the store: no download, nothing tapped.
  const again = await fetchBlob(store, { name: "bb", sources: [], digest: DIGEST, offline: true, tap });
  t.true(again.fromCache);
  t.is(again.tapped, undefined);
  t.is(attempts.length, 3);
});
