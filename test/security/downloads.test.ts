// Downloads from a hostile server: an endless body without a length, a
// length past the limit, the file plus a mebibyte without a length, and a
// body dribbled a byte a second. Each ends in a diagnostic with a code, with
// nothing left in the store; a slow but honest server still finishes.
import test from "ava";
import { createHash } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { openStore } from "../../src/cache/store.ts";
import { fetchBlob, fetchLatest } from "../../src/fetch/download.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { announces, dribble, endless, hostileServer, noLength } from "./server.ts";
import { tempDir } from "./helpers.ts";

const digestOf = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function leftovers(dir: string): Promise<string[]> {
  const list = (sub: string) => fsp.readdir(path.join(dir, sub)).catch(() => [] as string[]);
  return [...(await list("tmp")), ...(await list("blobs/sha256"))];
}

test("a body without a length that never ends stops at the download limit with NIFTY806", async (t) => {
  t.timeout(60_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const server = await hostileServer(endless());
  t.teardown(() => server.close());
  const store = await openStore(path.join(dir, "cache"));
  const error = await t.throwsAsync(
    fetchBlob(store, {
      name: "bomb",
      sources: [`${server.url}/f`],
      digest: digestOf(Buffer.from("x")),
      offline: false,
      retries: 0,
      maxBytes: 4 << 20,
      timeoutMs: 10_000,
    }),
  );
  t.is((error as NiftyError).code, "NIFTY806", error?.message);
  t.regex(error!.message, /more than the download limit of 4 MiB/);
  t.deepEqual(await leftovers(path.join(dir, "cache")), []);
});

test("a Content-Length past the limit is refused before any byte is stored", async (t) => {
  t.timeout(30_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const server = await hostileServer(announces(10 * 1024 ** 3));
  t.teardown(() => server.close());
  const store = await openStore(path.join(dir, "cache"));
  const error = await t.throwsAsync(
    fetchBlob(store, {
      name: "big",
      sources: [`${server.url}/f`],
      digest: digestOf(Buffer.from("x")),
      offline: false,
      retries: 0,
      timeoutMs: 10_000,
    }),
  );
  t.is((error as NiftyError).code, "NIFTY806", error?.message);
  t.regex(error!.message, /8 GiB/);
});

test("the file plus a mebibyte without a length is a digest mismatch, every time, never an assertion", async (t) => {
  t.timeout(60_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const file = Buffer.alloc(20 << 20, 7);
  const server = await hostileServer(noLength(Buffer.concat([file, Buffer.alloc(1 << 20, 1)])));
  t.teardown(() => server.close());
  for (let i = 0; i < 10; i++) {
    const store = await openStore(path.join(dir, `cache${i}`));
    const error = await t.throwsAsync(
      fetchBlob(store, {
        name: "f",
        sources: [`${server.url}/f`],
        digest: digestOf(file),
        offline: false,
        retries: 0,
        timeoutMs: 10_000,
      }),
    );
    t.true(error instanceof NiftyError, String(error?.stack));
    t.is((error as NiftyError).code, "NIFTY101");
    t.deepEqual(await leftovers(path.join(dir, `cache${i}`)), []);
  }
});

const DRIBBLED =
  "an InRelease dribbled one byte a second is cut after about the timeout with NIFTY106, nothing stored";
test(DRIBBLED, async (t) => {
  t.timeout(60_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const server = await hostileServer(dribble(4096, 1000));
  t.teardown(() => server.close());
  const store = await openStore(path.join(dir, "cache"));
  const url = `${server.url}/dists/bookworm/InRelease`;
  const fetching = fetchLatest(store, { name: "InRelease", sources: [url], retries: 0, timeoutMs: 3000 });
  const error = await t.throwsAsync(fetching);
  t.is((error as NiftyError).code, "NIFTY106", error?.message);
  t.is(
    error!.message,
    `${url} sent too slowly: the download did not end within 3 s plus 1 s per 16 KiB moved`,
  );
  t.regex((error as NiftyError).hint ?? "", /--timeout/);
  t.deepEqual(await leftovers(path.join(dir, "cache")), []);
});

test("a download that takes several timeouts at 64 KiB/s (four times the minimum rate) finishes", async (t) => {
  t.timeout(60_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const size = 6 * 64 * 1024;
  const server = await hostileServer(dribble(size, 1000, 64 * 1024));
  t.teardown(() => server.close());
  const store = await openStore(path.join(dir, "cache"));
  const digest = digestOf(Buffer.alloc(size, 0x61));
  const sources = [`${server.url}/slow.deb`];
  const request = { name: "slow.deb", sources, digest, offline: false, retries: 0, timeoutMs: 1500 };
  const got = await fetchBlob(store, request);
  t.is(got.size, size);
});
