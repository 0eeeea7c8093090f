import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import {
  debianArchiveUris,
  debianSecurityUris,
  loadMirrors,
  parseAptSources,
  parseMirrorSettings,
  readAptSourceFiles,
  resolveSources,
} from "../../src/fetch/mirrors.ts";
import { tempDir } from "./helpers/util.ts";

const ONE_LINE = `# the main archive
deb http://one.example/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://two.example/debian/ bookworm-updates main
deb-src http://src.example/debian bookworm main
deb http://one.example/debian-security bookworm-security main
deb http://old.example/debian bullseye/updates main
deb https://vendor.example/apt stable main
deb http://one.example/debian bookworm-backports main   # duplicate URI, dropped
`;

const DEB822 = `Types: deb deb-src
URIs: http://three.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFyy
 -----END PGP PUBLIC KEY BLOCK-----

# security, excluded
Types: deb
URIs: http://three.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
URIs: https://four.example/debian http://one.example/debian
Suites: trixie
Components: main
`;

test("parses one-line .list files", (t) => {
  const entries = parseAptSources([{ path: "/etc/apt/sources.list", text: ONE_LINE }]);
  t.is(entries.length, 7);
  t.deepEqual(entries[1], {
    path: "/etc/apt/sources.list",
    types: ["deb"],
    uris: ["http://two.example/debian/"],
    suites: ["bookworm-updates"],
    components: ["main"],
    enabled: true,
  });
  t.deepEqual(debianArchiveUris(entries), ["http://one.example/debian", "http://two.example/debian"]);
});

test("parses deb822 .sources files, with continuation lines and Enabled: no", (t) => {
  const entries = parseAptSources([{ path: "/etc/apt/sources.list.d/debian.sources", text: DEB822 }]);
  t.is(entries.length, 4);
  t.deepEqual(entries[0]?.types, ["deb", "deb-src"]);
  t.deepEqual(entries[0]?.suites, ["bookworm", "bookworm-updates"]);
  t.false(entries[2]?.enabled);
  t.deepEqual(debianArchiveUris(entries), [
    "http://three.example/debian",
    "https://four.example/debian",
    "http://one.example/debian",
  ]);
});

test("both formats together keep file order and drop duplicates", (t) => {
  const entries = parseAptSources([
    { path: "/etc/apt/sources.list", text: ONE_LINE },
    { path: "/etc/apt/sources.list.d/debian.sources", text: DEB822 },
  ]);
  t.deepEqual(debianArchiveUris(entries), [
    "http://one.example/debian",
    "http://two.example/debian",
    "http://three.example/debian",
    "https://four.example/debian",
  ]);
});

test("reads this machine's real apt configuration", async (t) => {
  const files = await readAptSourceFiles("/");
  for (const f of files)
    t.regex(f.path, /^\/etc\/apt\/(sources\.list|sources\.list\.d\/.*\.(list|sources))$/);
  const uris = debianArchiveUris(parseAptSources(files));
  for (const u of uris) {
    t.regex(u, /^https?:\/\/[^/]+(\/.*)?\/debian$/);
    t.false(u.includes("security"));
  }
  const mentionsDebian = files.some((f) =>
    /^\s*(deb\s+\S*\/debian\/?\s|URIs:.*\/debian\/?(\s|$))/m.test(f.text),
  );
  t.is(uris.length > 0, mentionsDebian);
});

test("loadMirrors prefers given mirrors and falls back to apt under a root", async (t) => {
  const root = await tempDir();
  await fsp.mkdir(path.join(root, "etc/apt/sources.list.d"), { recursive: true });
  await fsp.writeFile(path.join(root, "etc/apt/sources.list.d/debian.sources"), DEB822);
  await fsp.writeFile(
    path.join(root, "etc/apt/sources.list.d/ignored.list.disabled"),
    "deb http://no.example/debian x main\n",
  );
  t.deepEqual((await loadMirrors({}, root)).debian, [
    "http://three.example/debian",
    "https://four.example/debian",
    "http://one.example/debian",
  ]);
  t.deepEqual((await loadMirrors({ debian: ["http://given.example/debian"] }, root)).debian, [
    "http://given.example/debian",
  ]);
  t.deepEqual((await loadMirrors({}, path.join(root, "none"))).debian, []);
  t.deepEqual((await loadMirrors({}, root))["debian-security"], ["http://three.example/debian-security"]);
  t.deepEqual(
    (await loadMirrors({ "debian-security": ["http://given.example/ds"] }, root))["debian-security"],
    ["http://given.example/ds"],
  );
});

test("the security archive's URIs, from both formats", (t) => {
  const entries = parseAptSources([
    { path: "/etc/apt/sources.list", text: ONE_LINE },
    { path: "/etc/apt/sources.list.d/debian.sources", text: DEB822 },
  ]);
  t.deepEqual(debianSecurityUris(entries), [
    "http://one.example/debian-security",
    "http://three.example/debian-security",
  ]);
});

test("resolveSources: URLs as they are, debian: against each mirror, in order, without duplicates", (t) => {
  const mirrors = { debian: ["http://m1.example/debian/", "http://m2.example/debian"] };
  t.deepEqual(
    resolveSources(
      [
        "https://files.example/bb",
        "debian:pool/main/b/busybox/b.deb",
        "DEBIAN:pool/main/b/busybox/b.deb",
        "https://files.example/bb",
      ],
      mirrors,
    ),
    [
      "https://files.example/bb",
      "http://m1.example/debian/pool/main/b/busybox/b.deb",
      "http://m2.example/debian/pool/main/b/busybox/b.deb",
    ],
  );
});

test("resolveSources errors: unknown scheme, no mirror, climbing path", (t) => {
  const unknown = t.throws(() => resolveSources(["foo:bar"], {}), { instanceOf: NiftyError });
  t.is(unknown?.code, "NIFTY110");
  t.regex(unknown?.hint ?? "", /http:\/\/…, https:\/\/…, debian:<path>/);
  const none = t.throws(() => resolveSources(["debian:pool/x.deb"], { debian: [] }), {
    instanceOf: NiftyError,
  });
  t.is(none?.code, "NIFTY111");
  t.regex(none?.hint ?? "", /--mirror debian=<url>.*NIFTY_MIRROR_DEBIAN/);
  t.is(
    t.throws(() => resolveSources(["debian:pool/../../x"], { debian: ["http://m.example/debian"] }), {
      instanceOf: NiftyError,
    })?.code,
    "NIFTY113",
  );
  // The rule niftyc check applies too (NIFTY049): a relative path, not empty, without "..".
  for (const src of ["debian:../x", "debian:", "debian:/pool/x"]) {
    const error = t.throws(() => resolveSources([src], { debian: ["http://m.example/debian"] }), {
      instanceOf: NiftyError,
    });
    t.is(error?.code, "NIFTY113", src);
  }
  t.is(t.throws(() => resolveSources(["http://"], {}), { instanceOf: NiftyError })?.code, "NIFTY112");
  t.is(t.throws(() => resolveSources(["https://"], {}), { instanceOf: NiftyError })?.code, "NIFTY112");
  t.is(t.throws(() => resolveSources(["http://[::1/y"], {}), { instanceOf: NiftyError })?.code, "NIFTY112");
});

test("parseMirrorSettings reads NAME=URL and refuses the rest", (t) => {
  t.deepEqual(parseMirrorSettings(["debian=http://a.example/debian/", "debian=https://b.example/debian"]), {
    debian: ["http://a.example/debian", "https://b.example/debian"],
  });
  t.is(
    t.throws(() => parseMirrorSettings(["http://a.example/debian"]), { instanceOf: NiftyError })?.code,
    "NIFTY112",
  );
  t.is(
    t.throws(() => parseMirrorSettings(["debian=ftp://a.example/debian"]), { instanceOf: NiftyError })?.code,
    "NIFTY112",
  );
});

test("parseMirrorSettings refuses a mirror with a query or a fragment, which the archive's paths could not follow", (t) => {
  for (const [url, what] of [
    ["http://a.example/debian?token=1", "query"],
    ["http://a.example/debian/?", "query"],
    ["http://a.example/debian#top", "fragment"],
  ] as const) {
    const error = t.throws(() => parseMirrorSettings([`debian=${url}`]), { instanceOf: NiftyError });
    t.is(error?.code, "NIFTY112");
    t.regex(error!.message, new RegExp(`mirror debian: .* has a ${what}`));
  }
  // A query-like character percent-encoded in a path is a path.
  t.deepEqual(parseMirrorSettings(["debian=http://a.example/deb%3Fian"]), {
    debian: ["http://a.example/deb%3Fian"],
  });
});
