// Hostile index input: an InRelease far larger than any real one, an unsigned
// one, a Packages file with one enormous line or endless continuation lines,
// and one larger than the index limit. Each is refused with its own error, in
// bounded time, and nothing unverified is left in the store.
import test from "ava";
import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { openStore } from "../../src/cache/store.ts";
import type { Store } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { fetchDeb, parsePackages } from "../../src/debian/index.ts";
import { fetchRelease } from "../../src/debian/release.ts";
import type { SuiteRef } from "../../src/debian/types.ts";
import { debianArchive, requireArchive } from "../support/debian-archive.ts";
import { tempDir } from "../fetch/helpers/util.ts";
import { hostileServer } from "../security/server.ts";

const REF: SuiteRef = { archive: "debian", suite: "bookworm", component: "main" };

/** Every file the store holds under a digest. */
async function blobs(store: Store): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(path.join(dir, e.name));
      else found.push(e.name);
    }
  };
  await walk(store.blobsDir);
  return found;
}

test("a 64 MiB InRelease is refused at the InRelease limit while downloading, before gpgv, and nothing is stored", async (t) => {
  t.timeout(60_000);
  // Streamed as it is sent (no Content-Length, no buffer): a clear-signed header, then lines without end.
  const line = Buffer.from(
    "SHA256:\n" + " 0000000000000000000000000000000000000000000000000000000000000000 1 main/x\n".repeat(800),
  );
  let sent = 0;
  const server = await hostileServer((socket) => {
    socket.write(
      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n",
    );
    const pump = () => {
      while (!socket.destroyed && sent < 64 << 20) {
        sent += line.length;
        if (!socket.write(line)) return void socket.once("drain", pump);
      }
      socket.end();
    };
    pump();
  });
  t.teardown(() => server.close());
  const store = await openStore(await tempDir("niftyc-hostile-index-"));
  const err = await t.throwsAsync(
    fetchRelease(store, REF, { mirrors: { debian: [server.url] }, now: new Date(), retries: 0 }),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY810", err?.message);
  t.regex(
    err!.message,
    /^the InRelease of bookworm \(http:\/\/127\.0\.0\.1:\d+\/dists\/bookworm\/InRelease\) is larger than the limit of 8 MiB$/,
  );
  t.regex(err!.hint ?? "", /--limit inrelease-size=/);
  t.true(sent < 64 << 20, `the download stopped early (${sent} bytes sent)`);
  t.deepEqual(await blobs(store), []);
});

test("an InRelease whose signature fails leaves nothing in the store", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const store = await openStore(await tempDir("niftyc-hostile-index-"));
  const err = await t.throwsAsync(
    fetchRelease(store, a.suites.main.ref, {
      mirrors: a.view("bad-signature").mirrors,
      now: new Date(),
      keyring: a.keyring,
    }),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY611");
  t.deepEqual(await blobs(store), []);
  // A good one is stored, under the digest the lock records.
  const good = await fetchRelease(store, a.suites.main.ref, {
    mirrors: a.view().mirrors,
    now: new Date(),
    keyring: a.keyring,
  });
  t.deepEqual(await blobs(store), [good.inRelease.slice(7)]);
});

async function* chunked(parts: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const p of parts) yield p;
}

/** `head`, then `count` chunks of `chunk`, then `tail`: a large input made as it is read. */
function* stream(head: string, chunk: Buffer, count: number, tail: string): Generator<Buffer> {
  yield Buffer.from(head);
  for (let i = 0; i < count; i++) yield chunk;
  yield Buffer.from(tail);
}

const STANZA_END =
  "\nVersion: 1\nArchitecture: all\nFilename: pool/a.deb\nSize: 1\nSHA256: " + "0".repeat(64) + "\n\n";

test("a Packages file with one 40 MB line is refused at that line by the line limit, in linear time", async (t) => {
  // Before, each 64 KiB chunk re-copied the line read so far: 40 MB took most of a minute.
  t.timeout(20_000);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const err = await t.throwsAsync(
    parsePackages(
      chunked(stream("Package: a\nDescription: ", chunk, 640, STANZA_END)),
      REF,
      "Packages of bookworm",
    ),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY811");
  t.is(err?.message, "Packages of bookworm: line 2 is longer than 1 MiB");
});

test("a line just under the line limit, across many chunks, and 200,000 continuation lines parse; a hang is bounded", async (t) => {
  // In a child process, so a parse that does not finish (each continuation line used to trim the
  // whole value again: quadratic, minutes for this one) is killed rather than holding the test.
  const script = `
    import { parsePackages } from ${JSON.stringify(path.resolve(import.meta.dirname, "../../src/debian/index.ts"))};
    const end = ${JSON.stringify(STANZA_END)};
    async function* gen(head, chunk, count) { yield Buffer.from(head); for (let i = 0; i < count; i++) yield chunk; yield Buffer.from(end); }
    const ref = { archive: "debian", suite: "bookworm", component: "main" };
    const long = await parsePackages(gen("Package: a\\nDescription: ", Buffer.alloc(1024, 0x61), 1000), ref, "Packages");
    const more = await parsePackages(gen("Package: b\\nDepends: c", Buffer.from("\\n , c"), 200000), ref, "Packages");
    console.log(JSON.stringify([long[0].description.length, more[0].depends.length]));
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 30_000,
    killSignal: "SIGKILL",
  });
  t.is(r.signal, null, "the parse did not finish within 30 s");
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), [1000 * 1024, "c".length + 200_000 * " , c".length]);
});

test("a Packages file larger than the index limit once decompressed is refused, naming the limit", async (t) => {
  const chunk = Buffer.from(STANZA_END.replace(/^\n/, "Package: x\n"));
  const err = await t.throwsAsync(
    parsePackages(chunked(stream("", chunk, 100, "")), REF, "Packages of bookworm", 4096),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY811");
  t.regex(err!.message, /^Packages of bookworm: it is larger than the limit of 4 KiB once decompressed$/);
  t.regex(err!.hint ?? "", /--limit index-size=/);
});

for (const filename of [
  "pool/main/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
  "pool/main/..\\..\\..\\x.deb",
  "pool/main/%2E%2E/x.deb",
  "pool/x.deb?/../../y",
  "pool/main/a%2fb/../../../x.deb",
]) {
  test(`a Filename a URL would read as climbing out of the archive is refused: ${filename}`, async (t) => {
    const text = `Package: evil\nVersion: 1\nArchitecture: all\nFilename: ${filename}\nSize: 1\nSHA256: ${"0".repeat(64)}\n`;
    const err = await t.throwsAsync(
      parsePackages(chunked([Buffer.from(text)]), REF, "Packages of bookworm"),
      {
        instanceOf: NiftyError,
      },
    );
    t.is(err?.code, "NIFTY624");
    t.regex(err!.message, /^Packages of bookworm, line 1: evil: Filename .*(\.\.|separator)/);
    // And the same path from a lock, or a record that did not come through the parser, is never fetched.
    const store = await openStore(await tempDir("niftyc-hostile-index-"));
    const fetchErr = await t.throwsAsync(
      fetchDeb(
        store,
        {
          name: "evil",
          version: "1",
          architecture: "all",
          from: REF,
          filename,
          sha256: `sha256:${"0".repeat(64)}`,
        },
        { mirrors: { debian: ["http://127.0.0.1:9/debian"] }, retries: 0 },
      ),
      { instanceOf: NiftyError },
    );
    t.is(fetchErr?.code, "NIFTY624");
    t.regex(fetchErr!.message, /unsafe pool path/);
  });
}
