import test from "ava";
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { cacheGc, cacheImport, cacheList, cacheVerify } from "../../src/cache/maintenance.ts";
import { DigestMismatchError, openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { bytes, listFiles, sha256, tempDir } from "../fetch/helpers/util.ts";

const DAY = 86_400_000;

async function setup() {
  const dir = await tempDir();
  return { dir, store: await openStore(dir) };
}

test("openStore lays out blobs, tmp and quarantine", async (t) => {
  const { dir } = await setup();
  for (const d of ["blobs/sha256", "tmp", "quarantine"]) {
    t.true((await fsp.stat(path.join(dir, d))).isDirectory(), d);
  }
});

test("putBuffer stores a read-only blob named by its sha256", async (t) => {
  const { store } = await setup();
  const data = bytes(10_000);
  const info = await store.putBuffer(data);
  t.is(info.digest, sha256(data));
  t.is(info.size, data.length);
  t.is(info.path, path.join(store.dir, "blobs", "sha256", info.digest.slice(7)));
  t.is(store.blobPath(info.digest), info.path);
  t.true(await store.has(info.digest));
  t.true((await fsp.readFile(info.path)).equals(data));
  t.is((await fsp.stat(info.path)).mode & 0o777, 0o444);
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("storing the same bytes twice keeps one blob and no temp", async (t) => {
  const { store } = await setup();
  const a = await store.putBuffer(Buffer.from("same"));
  const b = await store.putBuffer(Buffer.from("same"));
  t.deepEqual(a, b);
  t.deepEqual(await listFiles(store.blobsDir), [a.digest.slice(7)]);
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("a writer streams to a temp file, and commit with a wrong digest keeps nothing", async (t) => {
  const { store } = await setup();
  const w = store.createWriter();
  w.write(Buffer.from("hello "));
  w.write(Buffer.from("world"));
  const expected = sha256(Buffer.from("other"));
  const err = await t.throwsAsync(w.commit(expected), { instanceOf: DigestMismatchError });
  t.is(err?.code, "NIFTY101");
  t.is(err?.actual, sha256(Buffer.from("hello world")));
  t.deepEqual(await listFiles(store.blobsDir), []);
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("abort drops the temp file", async (t) => {
  const { store } = await setup();
  const w = store.createWriter();
  await new Promise<void>((resolve) => w.write(Buffer.from("partial"), () => resolve()));
  t.deepEqual(await listFiles(store.tmpDir), [path.basename(w.tempPath)]);
  await w.abort();
  t.deepEqual(await listFiles(store.tmpDir), []);
  t.deepEqual(await listFiles(store.blobsDir), []);
});

test("a BlobFile names nothing until name(), is read-only once named, and abort keeps nothing", async (t) => {
  const { store } = await setup();
  const data = bytes(100_000);
  const file = store.createFile();
  file.write(data.subarray(0, 50_000));
  file.write(data.subarray(50_000));
  t.is(file.digest, sha256(data));
  file.finish();
  t.false(await store.has(sha256(data)), "not named when finished");
  const info = file.name();
  t.is(info.digest, sha256(data));
  t.true((await fsp.readFile(info.path)).equals(data));
  t.is((await fsp.stat(info.path)).mode & 0o777, 0o444);
  t.deepEqual(await listFiles(store.tmpDir), []);

  const again = store.createFile();
  again.write(data);
  again.finish();
  t.is(again.name().path, info.path, "the same bytes again: the blob that is there");
  t.deepEqual(await listFiles(store.tmpDir), []);

  const finished = store.createFile();
  finished.write(Buffer.from("finished, never named"));
  finished.finish();
  finished.abort();
  t.deepEqual(await listFiles(store.tmpDir), []);

  const dropped = store.createFile();
  dropped.write(Buffer.from("dropped"));
  dropped.abort();
  t.false(await store.has(sha256(Buffer.from("dropped"))));
  t.deepEqual(await listFiles(store.tmpDir), []);
});

test("a malformed digest is a NiftyError", async (t) => {
  const { store } = await setup();
  const err = t.throws(() => store.blobPath("sha256:xyz"), { instanceOf: NiftyError });
  t.is(err?.code, "NIFTY100");
});

test("JSON records round-trip atomically; missing ones read as undefined; bad keys are refused", async (t) => {
  const { store } = await setup();
  t.is(await store.readJson("steps", "abc"), undefined);
  await store.writeJson("steps", "sha256:0123", { layer: "x", n: 1 });
  t.deepEqual(await store.readJson("steps", "sha256:0123"), { layer: "x", n: 1 });
  await store.writeJson("steps", "sha256:0123", { layer: "y" });
  t.deepEqual(await store.readJson("steps", "sha256:0123"), { layer: "y" });
  t.deepEqual(await listFiles(store.tmpDir), []);
  await t.throwsAsync(store.readJson("steps", "../evil"), {
    instanceOf: NiftyError,
    message: /invalid store key/,
  });
  await t.throwsAsync(store.writeJson("blobs", "x", {}), { instanceOf: NiftyError, message: /reserved/ });
});

test("cacheImport adds files by content and names missing ones", async (t) => {
  const { dir, store } = await setup();
  const a = path.join(dir, "a.bin");
  const b = path.join(dir, "b.bin");
  await fsp.writeFile(a, bytes(5000, 1));
  await fsp.writeFile(b, bytes(7000, 2));
  const out = await cacheImport(store, [a, b]);
  t.deepEqual(out, [
    { digest: sha256(bytes(5000, 1)), file: a, size: 5000 },
    { digest: sha256(bytes(7000, 2)), file: b, size: 7000 },
  ]);
  t.true(await store.has(sha256(bytes(7000, 2))));
  const err = await t.throwsAsync(cacheImport(store, [path.join(dir, "nope")]), { instanceOf: NiftyError });
  t.is(err?.code, "NIFTY132");
  t.true(err!.message.includes("nope"));
});

test("cacheVerify quarantines a corrupted blob and keeps the good ones", async (t) => {
  const { store } = await setup();
  const good = await store.putBuffer(bytes(4000, 1));
  const bad = await store.putBuffer(bytes(4000, 2));
  await fsp.chmod(bad.path, 0o644);
  const fh = await fsp.open(bad.path, "r+");
  await fh.write(Buffer.from("rot"), 0, 3, 100);
  await fh.close();

  const report = await cacheVerify(store);
  t.is(report.checked, 2);
  t.is(report.ok, 1);
  t.is(report.corrupt.length, 1);
  t.is(report.corrupt[0]?.digest, bad.digest);
  t.not(report.corrupt[0]?.actual, bad.digest);
  t.false(await store.has(bad.digest));
  t.true(await store.has(good.digest));
  const q = await listFiles(store.quarantineDir);
  t.is(q.length, 1);
  t.true(q[0]!.startsWith(bad.digest.slice(7)));
  t.is(report.corrupt[0]?.quarantinedTo, path.join(store.quarantineDir, q[0]!));
  t.is((await cacheVerify(store)).ok, 1, "a second run finds a clean store");
});

test("gc keeps blobs recent builds used or recently added, and removes the rest and dead writers' temps", async (t) => {
  const { store } = await setup();
  const now = new Date("2030-06-15T12:00:00Z");
  const old = new Date(now.getTime() - 40 * DAY);
  const usedRecently = await store.putBuffer(Buffer.from("used by a recent build"));
  const usedLongAgo = await store.putBuffer(Buffer.from("used by an old build"));
  const neverUsed = await store.putBuffer(Buffer.from("never used, old"));
  const justAdded = await store.putBuffer(Buffer.from("imported just now"));
  for (const b of [usedRecently, usedLongAgo, neverUsed]) await fsp.utimes(b.path, old, old);
  await fsp.utimes(justAdded.path, now, now);
  await store.recordUse([usedRecently.digest], "recipes/ssh.nifty", new Date(now.getTime() - 2 * DAY));
  await store.recordUse([usedLongAgo.digest], "recipes/old.nifty", new Date(now.getTime() - 30 * DAY));

  const deadPid = spawnSync("true").pid!;
  const deadTemp = `${deadPid}-0123456789abcdef.part`;
  const liveTemp = `${process.pid}-fedcba9876543210.part`;
  await fsp.writeFile(path.join(store.tmpDir, deadTemp), "half");
  await fsp.writeFile(path.join(store.tmpDir, liveTemp), "in progress");
  await fsp.utimes(path.join(store.tmpDir, liveTemp), now, now);

  const listed = await cacheList(store);
  t.is(listed.length, 4);
  const entry = listed.find((e) => e.digest === usedRecently.digest);
  t.deepEqual(entry?.usedBy, ["recipes/ssh.nifty"]);
  t.is(entry?.lastUse.getTime(), now.getTime() - 2 * DAY);

  const report = await cacheGc(store, { olderThanDays: 7, now });
  t.deepEqual(report.removed.map((r) => r.digest).sort(), [usedLongAgo.digest, neverUsed.digest].sort());
  t.is(report.kept, 2);
  t.is(report.freedBytes, usedLongAgo.size + neverUsed.size);
  t.is(report.removedUseRecords, 1);
  t.deepEqual(report.removedTempFiles, [deadTemp]);
  t.true(await store.has(usedRecently.digest));
  t.true(await store.has(justAdded.digest));
  t.false(await store.has(usedLongAgo.digest));
  t.false(await store.has(neverUsed.digest));
  t.deepEqual(await listFiles(store.tmpDir), [liveTemp]);

  await t.throwsAsync(cacheGc(store, { olderThanDays: -1 }), {
    instanceOf: NiftyError,
    message: /invalid gc age/,
  });
});

test("gc keeps a stamp while every use record it names is there, and removes it when one is gone", async (t) => {
  const { store } = await setup();
  const now = new Date("2030-06-15T12:00:00Z");
  const blob = await store.putBuffer(Buffer.from("a platform's rootfs"));
  // A 2-platform build's stamp names a use record per platform; the second is old enough for gc.
  const recent = await store.recordUse([blob.digest], "app.nifty linux/amd64", now);
  const old = await store.recordUse([blob.digest], "app.nifty linux/arm64", now);
  const stamps = path.join(store.dir, "stamps");
  await fsp.mkdir(stamps);
  await fsp.writeFile(path.join(stamps, "both.json"), JSON.stringify({ useRecords: [recent, old] }));
  await fsp.writeFile(path.join(stamps, "recent.json"), JSON.stringify({ useRecords: [recent] }));
  await fsp.writeFile(path.join(stamps, "none.json"), JSON.stringify({ useRecords: [] }));

  const kept = await cacheGc(store, { olderThanDays: 7, now });
  t.is(kept.removedStamps, 1, "a stamp naming no use record answers nothing");
  t.deepEqual((await fsp.readdir(stamps)).sort(), ["both.json", "recent.json"]);

  await store.recordUse([blob.digest], "app.nifty linux/arm64", new Date(now.getTime() - 30 * DAY));
  const report = await cacheGc(store, { olderThanDays: 7, now });
  t.is(report.removedUseRecords, 1);
  t.is(report.removedStamps, 1);
  t.deepEqual(await fsp.readdir(stamps), ["recent.json"]);
});

test("cache import of a directory or a FIFO is NIFTY132 with a hint, never a crash or a wait", async (t) => {
  const { dir, store } = await setup();
  const debs = path.join(dir, "debs");
  await fsp.mkdir(debs);
  const directory = await t.throwsAsync(cacheImport(store, [debs]), { instanceOf: NiftyError });
  t.is(directory?.code, "NIFTY132");
  t.regex(directory?.message ?? "", /is a directory/);
  t.regex(directory?.hint ?? "", /cache import .*debs\/\*/);
  const fifo = path.join(dir, "fifo");
  t.is(spawnSync("mkfifo", [fifo]).status, 0);
  const special = await t.throwsAsync(cacheImport(store, [fifo]), { instanceOf: NiftyError });
  t.regex(special?.message ?? "", /not a regular file/);
});
