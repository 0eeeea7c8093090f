// A fetch error names the part of the request at fault as data (its blame),
// which FETCH turns into the word it points at; no network is touched here.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { FetchError, type FetchBlame } from "../../src/cache/fetch-error.ts";
import { DigestMismatchError, digestHex, openStore } from "../../src/cache/store.ts";
import type { ErrorCode } from "../../src/diagnostics/codes.ts";
import { extractMember } from "../../src/fetch/archive.ts";
import { fetchBlob } from "../../src/fetch/download.ts";
import { parseMirrorSettings, resolveSources } from "../../src/fetch/mirrors.ts";
import { bytes, sha256, tempDir } from "./helpers/util.ts";

function blameOf(t: import("ava").ExecutionContext, error: unknown, code: ErrorCode): FetchBlame | undefined {
  t.true(error instanceof FetchError, `${code}: a FetchError`);
  t.is((error as FetchError).code, code);
  return (error as FetchError).blame;
}

const DIGEST = sha256(bytes(10));

test("the digest is to blame for a malformed digest, a mismatch and a blob missing offline", async (t) => {
  t.is(
    blameOf(
      t,
      t.throws(() => digestHex("sha256:xyz")),
      "NIFTY100",
    ),
    "digest",
  );
  t.is(new DigestMismatchError(DIGEST, DIGEST, "blob").blame, "digest");
  const store = await openStore(await tempDir());
  t.is(
    blameOf(
      t,
      await t.throwsAsync(fetchBlob(store, { name: "x", sources: [], digest: DIGEST, offline: true })),
      "NIFTY102",
    ),
    "digest",
  );
});

test("the sources are to blame when there are none, or they do not resolve", async (t) => {
  const store = await openStore(await tempDir());
  t.is(
    blameOf(
      t,
      await t.throwsAsync(fetchBlob(store, { name: "x", sources: [], digest: DIGEST, offline: false })),
      "NIFTY104",
    ),
    "sources",
  );
  t.is(
    blameOf(
      t,
      t.throws(() => resolveSources(["foo:bar"], {})),
      "NIFTY110",
    ),
    "sources",
  );
  t.is(
    blameOf(
      t,
      t.throws(() => resolveSources(["debian:pool/x.deb"], { debian: [] })),
      "NIFTY111",
    ),
    "sources",
  );
  t.is(
    blameOf(
      t,
      t.throws(() => resolveSources(["http://"], {})),
      "NIFTY112",
    ),
    "sources",
  );
  t.is(
    blameOf(
      t,
      t.throws(() => parseMirrorSettings(["nonsense"])),
      "NIFTY112",
    ),
    "sources",
  );
  t.is(
    blameOf(
      t,
      t.throws(() => resolveSources(["debian:pool/../x"], { debian: ["http://m.example/debian"] })),
      "NIFTY113",
    ),
    "sources",
  );
});

test("the member is to blame for what extraction refuses", async (t) => {
  const dir = await tempDir();
  const store = await openStore(path.join(dir, "cache"));
  const junk = path.join(dir, "junk");
  await fsp.writeFile(junk, bytes(1000));
  t.is(blameOf(t, await t.throwsAsync(extractMember(store, junk, "a")), "NIFTY120"), "member");
  t.is(blameOf(t, await t.throwsAsync(extractMember(store, junk, "../a")), "NIFTY122"), "member");
});
