// Packages indices and .debs from the fixture's archive: chosen from the
// verified Release, pinned by its digests, parsed, cached by digest.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { openStore } from "../../src/cache/store.ts";
import type { Store } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import {
  openParsedIndex as openStored,
  fetchDeb,
  loadPackages as loadStored,
  parsePackages,
  parsePackagesFile,
  pickPackagesIndex,
  readParsedIndex,
  writeParsedIndex,
} from "../../src/debian/index.ts";
import { PackageIndex, encodePackageIndex } from "../../src/debian/package-index.ts";
import { fetchRelease } from "../../src/debian/release.ts";
import type { PackageRecord, SuiteRef } from "../../src/debian/types.ts";
import type { ArchiveView, DebianArchive, FixtureSuite } from "../support/debian-archive.ts";
import { debianArchive, REAL_PACKAGES, requireArchive, SYNTHETIC } from "../support/debian-archive.ts";
import { listFiles, tempDir } from "../fetch/helpers/util.ts";

const MAIN: SuiteRef = { archive: "debian", suite: "bookworm", component: "main" };

/** Stored indices opened by a test, closed (their files let go of) when the tests end. */
const opened: Array<{ close(): Promise<void> }> = [];
test.after.always(() => Promise.all(opened.map((o) => o.close())));

async function loadPackages(...args: Parameters<typeof loadStored>) {
  const loaded = await loadStored(...args);
  opened.push(loaded.packages);
  return loaded;
}

async function openParsedIndex(...args: Parameters<typeof openStored>) {
  const found = await openStored(...args);
  if (found !== undefined) opened.push(found.packages);
  return found;
}

async function store(): Promise<Store> {
  return openStore(await tempDir("niftyc-index-"));
}

async function release(a: DebianArchive, suite: FixtureSuite, view: ArchiveView, s: Store) {
  return fetchRelease(s, suite.ref, { mirrors: view.mirrors, now: new Date(), keyring: a.keyring });
}

test("the fixture's Packages.gz parses into one record per package, with the fields of its stanza", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view();
  const s = await store();
  const main = await loadPackages(s, await release(a, a.suites.main, view, s), "amd64");
  const records = main.packages.records();
  t.is(main.index.path, "main/binary-amd64/Packages.gz");
  t.is(main.index.compression, "gzip");
  t.is(main.source, "parsed");
  t.true(main.downloaded);
  const expected = a.packages.filter((p) => p.from.suite === "bookworm");
  t.is(records.length, expected.length);
  t.is(expected.length, REAL_PACKAGES.length + SYNTHETIC.filter((x) => !x.security).length);
  for (const p of expected) {
    const r = records.find((x) => x.name === p.name && x.version === p.version);
    t.like(
      r,
      { architecture: p.architecture, filename: p.filename, size: p.size, sha256: p.sha256, from: MAIN },
      p.name,
    );
  }
  const by = (name: string) => records.find((r) => r.name === name)!;
  t.like(by("nifty-app"), {
    depends: "nifty-lib (>= 1.0), nifty-mail-transport, nifty-missing | nifty-pager",
    preDepends: "nifty-base",
    provides: "",
    installedSize: 12,
    priority: "optional",
    description: "niftyc fixture: an application",
  });
  t.is(by("nifty-mta-b").provides, "nifty-mail-transport (= 2.0)");
  t.is(by("nifty-essential").essential, true);
  t.is(by("nifty-app").essential, undefined);
  t.is(by("nifty-data").architecture, "all");
  t.is(by("libc6").multiArch, "same");
  t.is(
    by("gawk").preDepends,
    "libc6 (>= 2.34), libgmp10 (>= 2:6.2.1+dfsg1), libmpfr6 (>= 3.1.3), libreadline8 (>= 6.0), libsigsegv2 (>= 2.9)",
  );
  t.is(by("gawk").provides, "awk");
  t.is(by("readline-common").depends, "dpkg (>= 1.15.4) | install-info");

  // The security archive: Components "updates/main", files under main/, fetched by hash.
  const sec = await loadPackages(s, await release(a, a.suites.security, view, s), "amd64");
  t.is(sec.index.path, "main/binary-amd64/Packages.gz");
  t.deepEqual(
    sec.packages.records().map((r) => [r.name, r.version, r.filename, r.from.archive]),
    [["nifty-lib", "1.1-1", "pool/updates/main/n/nifty-lib/nifty-lib_1.1-1_amd64.deb", "debian-security"]],
  );
  t.true(
    view
      .requests()
      .some((r) => r.startsWith("debian-security/dists/bookworm-security/main/binary-amd64/by-hash/SHA256/")),
  );
});

test("Packages, Packages.gz and Packages.xz parse to the same records", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const dir = path.join(a.suites.main.dir, "main/binary-amd64");
  const xz = await parsePackagesFile(path.join(dir, "Packages.xz"), "xz", MAIN, "xz");
  t.deepEqual(await parsePackagesFile(path.join(dir, "Packages.gz"), "gzip", MAIN, "gz"), xz);
  t.deepEqual(await parsePackagesFile(path.join(dir, "Packages"), "none", MAIN, "plain"), xz);
});

test("a second load of the same index takes the parsed form from the store: no download, no parse", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view();
  const s = await store();
  const rel = await release(a, a.suites.main, view, s);
  const first = await loadPackages(s, rel, "amd64");
  const again = await loadPackages(s, await release(a, a.suites.main, view, s), "amd64");
  t.is(again.source, "cache");
  t.false(again.downloaded);
  t.deepEqual(again.packages.records(), first.packages.records());
  // Two InRelease requests, one index request.
  t.deepEqual(view.requests(), [
    "debian/dists/bookworm/InRelease",
    "debian/dists/bookworm/main/binary-amd64/Packages.gz",
    "debian/dists/bookworm/InRelease",
  ]);
  // The cache is keyed by the index's digest alone: found under another suite name too.
  const other: SuiteRef = { archive: "debian", suite: "stable", component: "main" };
  const records = await readParsedIndex(s, first.index.sha256, other);
  t.is(records?.length, first.packages.count);
  t.deepEqual(records?.[0]?.from, other);
});

test("a tampered Packages is NIFTY623 naming the file and each URL's digest; nothing is cached", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view("tampered-packages");
  const s = await store();
  for (const suite of [a.suites.main, a.suites.security]) {
    const rel = await release(a, suite, view, s);
    const err = await t.throwsAsync(loadPackages(s, rel, "amd64", { retries: 0 }), {
      instanceOf: NiftyError,
    });
    t.is(err?.code, "NIFTY623");
    const file = rel.files.find((f) => f.path === "main/binary-amd64/Packages.gz")!;
    t.true(
      err!.message.startsWith(
        `main/binary-amd64/Packages.gz of ${suite.ref.suite} does not match the SHA256 its signed InRelease gives: expected ${file.sha256}\n`,
      ),
      err!.message,
    );
    // The security suite's by-hash and plain URLs were both tried, both wrong.
    t.is(err!.message.split("\n").length, suite.validUntil ? 3 : 2);
  }
  // Only the two InRelease files reached the store.
  t.is((await listFiles(s.blobsDir)).length, 2);
  t.deepEqual(await listFiles(path.join(s.dir, "debian-index")), []);
  t.deepEqual(await listFiles(s.tmpDir), []);
});

test("a .deb is fetched pinned by the index's digest; a tampered one is NIFTY625 naming the package", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const good = a.view();
  const s = await store();
  const records = (
    await loadPackages(s, await release(a, a.suites.main, good, s), "amd64")
  ).packages.records();
  const busybox = records.find((r) => r.name === "busybox-static")!;
  const deb = await fetchDeb(s, busybox, { mirrors: good.mirrors });
  t.is(deb.digest, busybox.sha256);
  t.deepEqual(await fsp.readFile(deb.path), await fsp.readFile(a.pkg("busybox-static").path));
  t.true((await fetchDeb(s, busybox, { mirrors: good.mirrors })).fromCache);
  t.is(good.requests().filter((r) => r.endsWith(".deb")).length, 1);

  const bad = a.view("tampered-deb");
  const fresh = await store();
  const dropbear = records.find((r) => r.name === "dropbear-bin")!;
  const err = await t.throwsAsync(fetchDeb(fresh, dropbear, { mirrors: bad.mirrors, retries: 0 }), {
    instanceOf: NiftyError,
  });
  t.is(err?.code, "NIFTY625");
  t.is(
    err!.message,
    `package dropbear-bin ${dropbear.version} (amd64, debian bookworm): the downloaded .deb does not match the SHA256 its index gives: expected ${dropbear.sha256}`,
  );
  // Each mirror's answer a line of its own, under the message.
  t.is(err!.details?.length, 1);
  t.true(
    err!.details![0]!.startsWith(`${bad.url}/debian/${dropbear.filename}: got sha256:`),
    err!.details![0],
  );
  t.false(await fresh.has(dropbear.sha256));

  const offline = await t.throwsAsync(fetchDeb(fresh, dropbear, { mirrors: good.mirrors, offline: true }), {
    instanceOf: NiftyError,
  });
  t.is(offline?.code, "NIFTY102");
  const noMirror = await t.throwsAsync(fetchDeb(fresh, dropbear, { mirrors: {} }), {
    instanceOf: NiftyError,
  });
  t.is(noMirror?.code, "NIFTY626");
  const hostile = await t.throwsAsync(
    fetchDeb(fresh, { ...dropbear, filename: "../../etc/passwd" }, { mirrors: good.mirrors }),
    { instanceOf: NiftyError },
  );
  t.is(hostile?.code, "NIFTY624");
});

test("the index is picked .xz, else .gz, else plain; a missing component or architecture is NIFTY622", (t) => {
  const sha = (c: string) => `sha256:${c.repeat(64)}`;
  const rel = {
    date: new Date(0),
    architectures: ["amd64", "arm64"],
    components: ["updates/main", "updates/contrib"],
    acquireByHash: false,
    files: [
      { path: "main/binary-amd64/Packages", size: 10, sha256: sha("a") },
      { path: "main/binary-amd64/Packages.gz", size: 5, sha256: sha("b") },
      { path: "contrib/binary-amd64/Packages", size: 3, sha256: sha("c") },
    ],
  };
  t.like(pickPackagesIndex(rel, "main", "amd64", "x"), {
    path: "main/binary-amd64/Packages.gz",
    compression: "gzip",
    sha256: sha("b"),
    size: 5,
  });
  t.like(pickPackagesIndex(rel, "updates/contrib", "amd64", "x"), {
    path: "contrib/binary-amd64/Packages",
    compression: "none",
  });
  for (const [component, arch] of [
    ["non-free", "amd64"],
    ["main", "riscv64"],
    ["main", "arm64"],
  ] as const) {
    t.is(
      t.throws(() => pickPackagesIndex(rel, component, arch, "x"), { instanceOf: NiftyError })?.code,
      "NIFTY622",
      `${component} ${arch}`,
    );
  }
});

async function* chunksOf(text: string, size: number): AsyncIterable<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

const STANZAS = `Package: one
Version: 1:2.0-1
Architecture: amd64
Depends: a (>= 1),
 b | c,
 d
Provides: x
Description: first line
 more description, not kept
Filename: pool/main/o/one/one_2.0-1_amd64.deb
Size: 1234
SHA256: ${"ab".repeat(32)}
Multi-Arch: same
Essential: yes

package: two\r
version: 3\r
ARCHITECTURE: all\r
filename: pool/main/t/two/two_3_all.deb\r
size: 5\r
sha256: ${"CD".repeat(32)}\r
installed-size: 17\r
`;

test("parsing: continuation lines fold into relation fields, field names ignore case, CRLF, any chunking", async (t) => {
  const want: PackageRecord[] = [
    {
      name: "one",
      version: "1:2.0-1",
      architecture: "amd64",
      depends: "a (>= 1), b | c, d",
      preDepends: "",
      provides: "x",
      filename: "pool/main/o/one/one_2.0-1_amd64.deb",
      size: 1234,
      sha256: `sha256:${"ab".repeat(32)}`,
      from: MAIN,
      multiArch: "same",
      essential: true,
      description: "first line",
    },
    {
      name: "two",
      version: "3",
      architecture: "all",
      depends: "",
      preDepends: "",
      provides: "",
      filename: "pool/main/t/two/two_3_all.deb",
      size: 5,
      sha256: `sha256:${"cd".repeat(32)}`,
      from: MAIN,
      installedSize: 17,
    },
  ];
  for (const size of [1, 7, 64, 100000])
    t.deepEqual(await parsePackages(chunksOf(STANZAS, size), MAIN, "x"), want, `chunks of ${size}`);
});

test("parsing from bytes: sizes as Number() reads them, SHA256 lowercased, Essential and Multi-Arch as the record says, a repeated field's last value, text that is not UTF-8 as decoding gives it", async (t) => {
  const text = Buffer.concat([
    Buffer.from(
      `Package: three\nVersion: 1\nArchitecture: amd64\nFilename: pool/main/t/three.deb\n` +
        `Size: 0007\nInstalled-Size: 12345678901234567890\nSHA256: ${"aB".repeat(32)}\n` +
        `Essential: YeS\nMulti-Arch: maybe\nDepends:\nDepends: \t\n  \n x ,\n\t y\nPre-Depends:\nProvides: \n` +
        `Priority:\nDescription: caf`,
    ),
    Buffer.from([0xe9, 0xff]), // latin1 é and a byte UTF-8 never has
    Buffer.from(
      `\n\nPackage: four\nVersion: 2\nArchitecture: all\nFilename: f.deb\nSize: 000\n` +
        `SHA256: ${"0".repeat(64)}\nEssential: no\nInstalled-Size:\n`,
    ),
  ]);
  async function* pieces() {
    for (let i = 0; i < text.length; i += 3) yield text.subarray(i, i + 3);
  }
  const records = await parsePackages(pieces(), MAIN, "x");
  t.like(records[0], {
    size: 7,
    installedSize: 12345678901234567000,
    sha256: `sha256:${"ab".repeat(32)}`,
    essential: true,
    depends: "x , y",
    preDepends: "",
    provides: "",
    priority: "",
    description: "caf\ufffd\ufffd",
  });
  t.is(records[0]!.multiArch, undefined);
  t.like(records[1], { size: 0, essential: false });
  t.false("installedSize" in records[1]!);
  // The stored form of the parse holds what the records say.
  const stored = new PackageIndex(encodePackageIndex(records, "sha256:x"), "sha256:x", MAIN);
  t.deepEqual(stored.recordsOf("three"), [records[0]!]);
});

test("parsing: a stanza missing a required field, or a line that is not a field, is NIFTY624 with its line", async (t) => {
  const missing = STANZAS.replace(/^Size: 1234\n/m, "");
  const e1 = await t.throwsAsync(parsePackages(chunksOf(missing, 50), MAIN, "Packages of bookworm"), {
    instanceOf: NiftyError,
  });
  t.is(e1?.code, "NIFTY624");
  t.is(e1?.message, "Packages of bookworm, line 1: the stanza of one has no Size field");
  const junk = STANZAS.replace("Provides: x\n", "this is not a field\n");
  const e2 = await t.throwsAsync(parsePackages(chunksOf(junk, 50), MAIN, "Packages of bookworm"), {
    instanceOf: NiftyError,
  });
  t.is(e2?.message, 'Packages of bookworm, line 7: "this is not a field" is not "Field: value"');
  const badSha = STANZAS.replace(`SHA256: ${"ab".repeat(32)}`, "SHA256: 1234");
  t.is(
    (await t.throwsAsync(parsePackages(chunksOf(badSha, 50), MAIN, "x"), { instanceOf: NiftyError }))?.code,
    "NIFTY624",
  );
});

test("the stored form round-trips records (non-ASCII, empty and absent fields), sorted by name, and finds them by name and by what they provide", async (t) => {
  const parsed = await parsePackages(
    chunksOf(STANZAS.replace("Description: first line", "Description: Ünïcødé ✓ 😀"), 100),
    MAIN,
    "x",
  );
  const records: PackageRecord[] = [
    ...parsed,
    { ...parsed[0]!, version: "1:1.0-1", priority: "", provides: "y (= 1), x" },
    { ...parsed[1]!, name: "ä-not-ascii", installedSize: 0, essential: false },
  ];
  const s = await store();
  const digest = `sha256:${"12".repeat(32)}`;
  await writeParsedIndex(s, digest, records);
  const opened = (await openParsedIndex(s, digest, MAIN))!;
  const byName = (r: PackageRecord) => Buffer.from(r.name);
  const sorted = [...records].sort((a, b) => Buffer.compare(byName(a), byName(b)));
  t.deepEqual(opened.packages.records(), sorted);
  t.deepEqual([...opened.packages.names()], ["one", "two", "ä-not-ascii"]);
  t.deepEqual(opened.packages.recordsOf("one"), [records[0], records[2]]);
  t.deepEqual(opened.packages.recordsOf("three"), []);
  t.deepEqual(
    opened.packages.providerRowsOf("x").map((r) => opened.packages.record(r)),
    [records[0], records[2]],
  );
  t.deepEqual(
    opened.packages.providerRowsOf("y").map((r) => opened.packages.record(r)),
    [records[2]],
  );
  // Keyed by the index's digest: another digest is a miss, never this record.
  t.is(await openParsedIndex(s, `sha256:${"34".repeat(32)}`, MAIN), undefined);
});

test("a stored form is opened by reading its tables; a row is read only when it is decoded", async (t) => {
  const [one] = await parsePackages(chunksOf(STANZAS, 100), MAIN, "x");
  const records = Array.from({ length: 500 }, (_, i) => ({
    ...one!,
    name: `pkg-${String(i).padStart(3, "0")}`,
    description: "d".repeat(1000),
  }));
  const digest = `sha256:${"56".repeat(32)}`;
  const blob = encodePackageIndex(records.toReversed(), digest);
  let read = 0;
  const counting = {
    size: blob.length,
    read: (offset: number, length: number) => {
      read += length;
      return blob.subarray(offset, offset + length);
    },
  };
  const index = new PackageIndex(counting, digest, MAIN);
  t.true(read < 40_000, `opening read ${read} of ${blob.length} bytes`);
  const opened = read;
  t.deepEqual(index.recordsOf("pkg-123"), [records[123]]);
  t.true(read - opened < 2000, `one row (of about 1,200 bytes) read ${read - opened} bytes`);
  t.deepEqual(
    [...index.names()],
    records.map((r) => r.name),
  );
});

test("a stored form that is damaged, truncated or not for its index reads as a miss, and the index is parsed again", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view();
  const s = await store();
  const first = await loadPackages(s, await release(a, a.suites.main, view, s), "amd64");
  const blob = s.blobPath(first.blobs[1]!);
  const good = await fsp.readFile(blob);
  const damages: Array<[string, Buffer]> = [
    ["truncated", good.subarray(0, good.length >> 1)],
    ["a byte flipped", Buffer.from(good.map((b, i) => (i === good.length - 10 ? b ^ 1 : b)))],
    ["empty", Buffer.alloc(0)],
  ];
  for (const [what, bytes] of damages) {
    await fsp.rm(blob, { force: true });
    await fsp.writeFile(blob, bytes);
    t.is(await openParsedIndex(s, first.index.sha256, MAIN), undefined, what);
    const again = await loadPackages(s, await release(a, a.suites.main, view, s), "amd64");
    t.is(again.source, "parsed", what);
    t.deepEqual(again.packages.records(), first.packages.records(), what);
    t.deepEqual(await fsp.readFile(blob), good, `${what}: written again`);
  }
  // A record in the old format (niftyc-packages/1) is not read as this one.
  const old = await openStore(await tempDir("niftyc-index-"));
  await old.writeRecord("debian-index", first.index.sha256.slice(7), {
    format: "niftyc-packages/1",
    blob: first.blobs[1],
    count: 1,
  });
  t.is(await openParsedIndex(old, first.index.sha256, MAIN), undefined);
});
