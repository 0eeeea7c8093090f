// The InRelease asked for conditionally: a source that sent an ETag is asked with If-None-Match
// next time, and its 304 makes the copy already in the store the answer, verified by gpgv and
// checked (suite, dates, the lock's floor) again as a download is. A mirror on loopback serves the
// fixture's signed InRelease files and answers as a test sets it: honestly, or 304 whatever it
// was asked.
import http from "node:http";
import type { AddressInfo } from "node:net";
import * as fsp from "node:fs/promises";
import test from "ava";
import { openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { fetchRelease } from "../../src/debian/release.ts";
import { debianArchive, requireArchive } from "../support/debian-archive.ts";
import { tempDir } from "../fetch/helpers/util.ts";

interface Mirror {
  root: string;
  /** The InRelease it serves now, and its ETag. */
  serve(bytes: Buffer, etag: string): void;
  /** Answer 304 to every request, conditional or not (a hostile or broken mirror). */
  always304: boolean;
  /** The If-None-Match of each request, "" for none. */
  asked: string[];
}

async function mirror(t: { teardown(f: () => void): void }): Promise<Mirror> {
  let current: { bytes: Buffer; etag: string } = { bytes: Buffer.alloc(0), etag: "" };
  const m: Mirror = {
    root: "",
    serve: (bytes, etag) => (current = { bytes, etag }),
    always304: false,
    asked: [],
  };
  const server = http.createServer((req, res) => {
    const asked = req.headers["if-none-match"] ?? "";
    m.asked.push(asked);
    if (m.always304 || (asked !== "" && asked === current.etag)) {
      res.writeHead(304, { etag: current.etag });
      res.end();
      return;
    }
    res.writeHead(200, { etag: current.etag, "content-length": current.bytes.length });
    res.end(current.bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  m.root = `http://127.0.0.1:${(server.address() as AddressInfo).port}/debian`;
  return m;
}

async function inRelease(url: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${url}/debian/dists/bookworm/InRelease`)).arrayBuffer());
}

test("an unchanged InRelease is answered by 304 and the stored copy is verified again; a changed one is downloaded", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const m = await mirror(t);
  const good = await inRelease(a.view().url);
  m.serve(good, '"one"');
  const store = await openStore(await tempDir("niftyc-conditional-"));
  const get = (options: { keyring?: string; notBefore?: Date } = {}) =>
    fetchRelease(store, a.suites.main.ref, {
      mirrors: { debian: [m.root] },
      now: new Date(),
      keyring: options.keyring ?? a.keyring,
      ...(options.notBefore ? { notBefore: options.notBefore } : {}),
      retries: 0,
    });
  const first = await get();
  const again = await get();
  t.deepEqual(m.asked, ["", '"one"']);
  t.is(again.inRelease, first.inRelease);
  t.deepEqual(again.files, first.files);
  // The stored copy is judged again: with a keyring that lacks the archive's key, a 304 is no answer.
  const empty = `${await tempDir("niftyc-conditional-keyring-")}/empty.gpg`;
  await fsp.writeFile(empty, "");
  const refused = await t.throwsAsync(get({ keyring: empty }), { instanceOf: NiftyError });
  t.regex(refused!.code, /^NIFTY61[0-7]$/);

  // Changed on the mirror: another ETag, the new bytes downloaded and verified.
  const older = await inRelease(a.view("older").url);
  m.serve(older, '"two"');
  const changed = await get();
  t.is(m.asked.at(-1), '"one"');
  t.not(changed.inRelease, first.inRelease);
  t.true(changed.date < first.date);
  // A 304 for the older copy the store now holds cannot pass the lock's floor (NIFTY632).
  m.serve(good, '"two"');
  const rolledBack = await t.throwsAsync(get({ notBefore: first.date }), { instanceOf: NiftyError });
  t.is(rolledBack?.code, "NIFTY632");
  t.is(m.asked.at(-1), '"two"');
});

test("a 304 with no stored copy is asked again without conditions, and a 304 to that is a failure, not an answer", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const m = await mirror(t);
  m.serve(await inRelease(a.view().url), '"one"');
  const store = await openStore(await tempDir("niftyc-conditional-"));
  const get = () =>
    fetchRelease(store, a.suites.main.ref, {
      mirrors: { debian: [m.root] },
      now: new Date(),
      keyring: a.keyring,
      retries: 0,
    });
  const first = await get();
  // The stored copy is gone (collected): the 304 to the conditional request is not used.
  await fsp.rm(store.blobPath(first.inRelease));
  const again = await get();
  t.deepEqual(m.asked, ["", '"one"', ""]);
  t.is(again.inRelease, first.inRelease);
  t.true(await store.has(first.inRelease));

  // A mirror that answers 304 to everything gives nothing to verify: an error, never a release.
  const fresh = await openStore(await tempDir("niftyc-conditional-"));
  m.always304 = true;
  await t.throwsAsync(
    fetchRelease(fresh, a.suites.main.ref, {
      mirrors: { debian: [m.root] },
      now: new Date(),
      keyring: a.keyring,
      retries: 0,
    }),
  );
  await fsp.rm(store.blobPath(first.inRelease));
  await t.throwsAsync(get());
});
