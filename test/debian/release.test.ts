// InRelease verification with the real gpgv against the fixture's signed
// archive: a good signature, and each way a signature or Release can be bad.
import test from "ava";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { openStore } from "../../src/cache/store.ts";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import {
  checkRelease,
  DEFAULT_KEYRING,
  fetchRelease,
  parseRelease,
  parseReleaseDate,
  parseStatus,
  verifyClearSigned,
} from "../../src/debian/release.ts";
import type { Variant } from "../support/debian-archive.ts";
import { debianArchive, requireArchive } from "../support/debian-archive.ts";
import { tempDir } from "../fetch/helpers/util.ts";

async function store() {
  return openStore(await tempDir("niftyc-release-"));
}

const now = () => new Date();

test("a good signature verifies, and the signed text gives the suite's dates and index digests", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view();
  const s = await store();
  const main = await fetchRelease(s, a.suites.main.ref, {
    mirrors: view.mirrors,
    now: now(),
    keyring: a.keyring,
  });
  t.is(main.codename, "bookworm");
  t.is(main.suite, "stable");
  t.deepEqual(main.components, ["main"]);
  t.deepEqual(main.architectures, ["amd64", "arm64"]); // arm64: only the Architecture: all packages
  t.is(main.validUntil, undefined);
  t.false(main.acquireByHash);
  t.is(main.url, `${view.url}/debian/dists/bookworm/InRelease`);
  t.deepEqual(main.mirrors, [`${view.url}/debian`]);
  t.deepEqual(
    main.signatures.map((g) => g.primary),
    [a.fingerprint],
  );
  t.is(main.signatures[0]!.hashAlgorithm, 8);
  // The digests it pins are those of the files on disk.
  for (const name of ["Packages", "Packages.xz", "Packages.gz"]) {
    const file = main.files.find((f) => f.path === `main/binary-amd64/${name}`);
    const bytes = await fsp.readFile(path.join(a.suites.main.dir, "main/binary-amd64", name));
    t.is(file?.sha256, `sha256:${createHash("sha256").update(bytes).digest("hex")}`, name);
    t.is(file?.size, bytes.length);
  }
  t.true(Math.abs(main.date.getTime() - Date.now()) < 3600_000);

  const security = await fetchRelease(s, a.suites.security.ref, {
    mirrors: view.mirrors,
    now: now(),
    keyring: a.keyring,
  });
  t.is(security.codename, "bookworm-security");
  t.deepEqual(security.components, ["updates/main"]);
  t.true(security.acquireByHash);
  t.is(security.validUntil!.getTime() - security.date.getTime(), 7 * 86400_000);
  t.deepEqual(view.requests(), [
    "debian/dists/bookworm/InRelease",
    "debian-security/dists/bookworm-security/InRelease",
  ]);
});

const failures: [Variant, string, RegExp][] = [
  [
    "bad-signature",
    "NIFTY611",
    /^bad signature on the InRelease of bookworm \(http:\/\/127\.0\.0\.1:\d+\/\S+\/debian\/dists\/bookworm\/InRelease\): key [0-9A-F]{16} \(niftyc test archive <archive@niftyc\.invalid>\) did not sign this text$/,
  ],
  [
    "unknown-key",
    "NIFTY612",
    /^the InRelease of bookworm \(http:\/\/\S+\/InRelease\) is signed by key [0-9A-F]{16}, which is not in the keyring \S+keyring\.gpg$/,
  ],
  [
    "expired-key",
    "NIFTY613",
    /^the InRelease of bookworm \(http:\/\/\S+\/InRelease\) is signed by an expired key: key [0-9A-F]{16} \(niftyc expired key <expired@niftyc\.invalid>\)$/,
  ],
  [
    "weak-digest",
    "NIFTY616",
    /^the InRelease of bookworm \(http:\/\/\S+\/InRelease\) is signed with the weak hash SHA-1 by key [0-9A-F]{16} \(niftyc test archive/,
  ],
  [
    "expired",
    "NIFTY618",
    /^the InRelease of bookworm \(http:\/\/\S+\/InRelease\) expired: it was valid until 2020-01-08T00:00:00\.000Z, and it is now 20\d\d-/,
  ],
];

for (const [variant, code, message] of failures) {
  test(`${variant}: ${code}, naming the suite and URL, with a hint`, async (t) => {
    if (!requireArchive(t)) return;
    const a = await debianArchive();
    const view = a.view(variant);
    const err = await t.throwsAsync(
      fetchRelease(await store(), a.suites.main.ref, {
        mirrors: view.mirrors,
        now: now(),
        keyring: a.keyring,
      }),
      { instanceOf: NiftyError },
    );
    t.is(err?.code as string | undefined, code);
    t.regex(err?.message ?? "", message);
    t.true(err?.message.includes(view.url));
    t.truthy((err as NiftyError).hint);
    // Nothing past the InRelease was asked for.
    t.deepEqual(view.requests(), ["debian/dists/bookworm/InRelease"]);
  });
}

test("the security suite's Valid-Until is checked against the caller's now, not the clock", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const view = a.view();
  const s = await store();
  const ok = await fetchRelease(s, a.suites.security.ref, {
    mirrors: view.mirrors,
    now: now(),
    keyring: a.keyring,
  });
  const later = new Date(ok.validUntil!.getTime() + 1000);
  const err = await t.throwsAsync(
    fetchRelease(s, a.suites.security.ref, { mirrors: view.mirrors, now: later, keyring: a.keyring }),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY618");
  t.regex(
    err?.message ?? "",
    /^the InRelease of bookworm-security \(http:\S+debian-security\/dists\/bookworm-security\/InRelease\) expired/,
  );
  const before = new Date(ok.date.getTime() - 86400_000);
  const future = await t.throwsAsync(
    fetchRelease(s, a.suites.security.ref, { mirrors: view.mirrors, now: before, keyring: a.keyring }),
    { instanceOf: NiftyError },
  );
  t.is(future?.code, "NIFTY619");
});

test("what is parsed is what gpgv verified: text outside the signed message is refused", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const dir = await tempDir("niftyc-release-");
  const good = await fsp.readFile(path.join(a.suites.main.dir, "InRelease"), "utf8");
  const cases: [string, string][] = [
    ["prefixed", `Codename: evil\n\n${good}`],
    ["suffixed", `${good}Codename: evil\n`],
    ["doubled", good + good],
    ["unsigned", await fsp.readFile(path.join(a.suites.main.dir, "Release"), "utf8")],
  ];
  for (const [name, text] of cases) {
    const file = path.join(dir, name);
    await fsp.writeFile(file, text);
    const err = await t.throwsAsync(
      verifyClearSigned(file, { keyring: a.keyring, tmpDir: dir, what: name }),
      { instanceOf: NiftyError },
    );
    t.is(err?.code, "NIFTY610", name);
  }
  // The good file's signed text is exactly the Release that was signed.
  const file = path.join(dir, "good");
  await fsp.writeFile(file, good);
  const { text } = await verifyClearSigned(file, { keyring: a.keyring, tmpDir: dir, what: "good" });
  t.is(text, await fsp.readFile(path.join(a.suites.main.dir, "Release"), "utf8"));
  t.deepEqual((await fsp.readdir(dir)).sort(), ["doubled", "good", "prefixed", "suffixed", "unsigned"]);
});

test("a missing gpgv or keyring is NIFTY617 saying what to install", async (t) => {
  if (!requireArchive(t)) return;
  const a = await debianArchive();
  const dir = await tempDir("niftyc-release-");
  const file = path.join(a.suites.main.dir, "InRelease");
  const noGpgv = await t.throwsAsync(
    verifyClearSigned(file, { keyring: a.keyring, gpgv: "/nonexistent/gpgv", tmpDir: dir, what: "bookworm" }),
    { instanceOf: NiftyError },
  );
  t.is(noGpgv?.code, "NIFTY617");
  t.regex(noGpgv?.message ?? "", /cannot run \/nonexistent\/gpgv: not installed/);
  const noKeyring = await t.throwsAsync(
    verifyClearSigned(file, { keyring: path.join(dir, "none.gpg"), tmpDir: dir, what: "bookworm" }),
    { instanceOf: NiftyError },
  );
  t.is(noKeyring?.code, "NIFTY617");
});

test("a suite whose signed Release names another suite is refused (no replay under another name)", (t) => {
  const release = parseRelease(
    "Suite: stable-security\nCodename: bookworm-security\nDate: Wed, 02 Dec 2026 01:08:08 +0000\nSHA256:\n",
    "x",
  );
  const err = t.throws(
    () =>
      checkRelease(
        release,
        { archive: "debian", suite: "bookworm", component: "main" },
        new Date("2026-12-02T02:00:00Z"),
        "the InRelease of bookworm (http://m/x)",
      ),
    { instanceOf: NiftyError },
  );
  t.is(err?.code, "NIFTY621");
  t.is(
    err?.message,
    "the InRelease of bookworm (http://m/x) is for bookworm-security / stable-security, not bookworm",
  );
  t.notThrows(() =>
    checkRelease(
      release,
      { archive: "debian", suite: "stable-security", component: "main" },
      new Date("2026-12-02T02:00:00Z"),
      "x",
    ),
  );
});

test("Release dates as Debian and apt-ftparchive write them; malformed Releases are NIFTY620", (t) => {
  t.is(parseReleaseDate("Sat, 11 Jul 2026 10:16:37 UTC")?.toISOString(), "2026-07-11T10:16:37.000Z");
  t.is(parseReleaseDate("Wed, 02 Dec 2026 01:08:08 +0000")?.toISOString(), "2026-12-02T01:08:08.000Z");
  t.is(parseReleaseDate("Wed, 02 Dec 2026 03:08:08 +0200")?.toISOString(), "2026-12-02T01:08:08.000Z");
  t.is(parseReleaseDate("2026-12-02"), undefined);
  for (const text of [
    "Suite: x\nSHA256:\n",
    "Date: tomorrow\nSHA256:\n",
    "Date: Sat, 11 Jul 2026 10:16:37 UTC\n",
    "Date: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n abc 12 main/x\n",
  ]) {
    t.is(t.throws(() => parseRelease(text, "x"), { instanceOf: NiftyError })?.code, "NIFTY620", text);
  }
});

test("gpgv status lines: one record per signature", (t) => {
  const status = [
    "[GNUPG:] NEWSIG",
    "[GNUPG:] ERRSIG E74ADB265801F0D4 22 8 01 1796173445 9 BF246926FE72FE7E773B2EF1E74ADB265801F0D4",
    "[GNUPG:] NO_PUBKEY E74ADB265801F0D4",
    "[GNUPG:] NEWSIG",
    "[GNUPG:] GOODSIG 7A18386B51847979 niftyc test <t@invalid>",
    "[GNUPG:] VALIDSIG 91B971988D06FB145EE2F25B7A18386B51847979 2026-12-02 1796173445 0 4 0 22 8 01 91B971988D06FB145EE2F25B7A18386B51847979",
  ].join("\n");
  const { signatures } = parseStatus(status);
  t.is(signatures.length, 2);
  t.like(signatures[0], { result: "ERRSIG", keyid: "E74ADB265801F0D4", errCode: "9", noPubkey: true });
  t.like(signatures[1], {
    result: "GOODSIG",
    keyid: "7A18386B51847979",
    uid: "niftyc test <t@invalid>",
    valid: {
      fingerprint: "91B971988D06FB145EE2F25B7A18386B51847979",
      primary: "91B971988D06FB145EE2F25B7A18386B51847979",
      hashAlgorithm: 8,
    },
  });
});

const APT_INRELEASE = "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease";

test("Debian's own InRelease (from this machine's apt lists) verifies with Debian's keyring", async (t) => {
  if (!existsSync(APT_INRELEASE) || !existsSync(DEFAULT_KEYRING)) {
    if (process.env.CI) t.fail(`${APT_INRELEASE} or ${DEFAULT_KEYRING} is missing`);
    else t.log(`SKIPPED outside CI: ${APT_INRELEASE} or ${DEFAULT_KEYRING} is missing`);
    t.pass();
    return;
  }
  const dir = await tempDir("niftyc-release-");
  const { text, signatures } = await verifyClearSigned(APT_INRELEASE, { tmpDir: dir, what: "bookworm" });
  t.true(signatures.length >= 1);
  const release = parseRelease(text, "bookworm");
  t.is(release.codename, "bookworm");
  t.true(release.files.some((f) => f.path === "main/binary-amd64/Packages.xz"));
});
