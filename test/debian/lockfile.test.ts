// The lockfile: canonical text both ways, coverage of a recipe's requests,
// and errors with line numbers for hand-edited locks.
import fc from "fast-check";
import test from "ava";
import {
  lockCovers,
  lockFromResolution,
  normalizeLock,
  parseLock,
  serializeLock,
  type Lock,
  type LockedSuite,
  type LockRequest,
} from "../../src/debian/lockfile.ts";
import { resolve } from "../../src/debian/resolve.ts";
import { MAIN, pkg, SECURITY, universeOf } from "./helpers.ts";

const H1 = "a".repeat(64);
const H2 = "b".repeat(64);
const suites: LockedSuite[] = [
  { ...MAIN, date: "Sat, 11 Jul 2026 10:16:37 UTC", inRelease: `sha256:${H1}` },
  { ...SECURITY, date: "Tue, 01 Dec 2026 09:00:00 UTC", inRelease: `sha256:${H2}` },
];

function exampleLock(): Lock {
  const records = [
    pkg("dropbear-bin", "2022.83-1+deb12u3", { depends: "libc6 (>= 2.34), zlib1g" }),
    pkg("libc6", "2.36-9+deb12u14"),
    pkg("zlib1g", "1:1.2.13.dfsg-1"),
    pkg("zlib1g", "1:1.2.13.dfsg-1+deb12u1", { from: SECURITY }),
    pkg("busybox-static", "1:1.35.0-4+b3"),
  ];
  const requests: LockRequest[] = [
    { name: "dropbear-bin" },
    { name: "busybox-static", constraint: { op: ">=", version: "1:1.35" } },
  ];
  const result = resolve(
    universeOf(records),
    requests.map((r) => ({ ...r, origin: null })),
    { arch: "amd64" },
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return lockFromResolution(result.resolution, { architecture: "amd64", suites, requests });
}

test("the lock of a resolution, as text", (t) => {
  const text = serializeLock(exampleLock());
  const zlib = pkg("zlib1g", "1:1.2.13.dfsg-1+deb12u1", { from: SECURITY });
  t.is(
    text,
    `# niftyc lock: the Debian packages this recipe's PACKAGE lines resolved to.
# Written by niftyc; change the recipe and lock again rather than editing it.
Lock-Format: 1
Architecture: amd64
Suites:
 debian bookworm main sha256:${H1} Sat, 11 Jul 2026 10:16:37 UTC
 debian-security bookworm-security main sha256:${H2} Tue, 01 Dec 2026 09:00:00 UTC
Requests:
 busybox-static (>= 1:1.35)
 dropbear-bin

Package: busybox-static
Version: 1:1.35.0-4+b3
Architecture: amd64
Suite: debian bookworm main
Filename: pool/main/b/busybox-static/busybox-static_1.35.0-4+b3_amd64.deb
Size: ${pkg("busybox-static", "1:1.35.0-4+b3").size}
SHA256: ${pkg("busybox-static", "1:1.35.0-4+b3").sha256.slice(7)}
Requested-By: busybox-static

Package: dropbear-bin
Version: 2022.83-1+deb12u3
Architecture: amd64
Suite: debian bookworm main
Filename: pool/main/d/dropbear-bin/dropbear-bin_2022.83-1+deb12u3_amd64.deb
Size: ${pkg("dropbear-bin", "2022.83-1+deb12u3").size}
SHA256: ${pkg("dropbear-bin", "2022.83-1+deb12u3").sha256.slice(7)}
Requested-By: dropbear-bin

Package: libc6
Version: 2.36-9+deb12u14
Architecture: amd64
Suite: debian bookworm main
Filename: pool/main/libc/libc6/libc6_2.36-9+deb12u14_amd64.deb
Size: ${pkg("libc6", "2.36-9+deb12u14").size}
SHA256: ${pkg("libc6", "2.36-9+deb12u14").sha256.slice(7)}
Requested-By: dropbear-bin

Package: zlib1g
Version: 1:1.2.13.dfsg-1+deb12u1
Architecture: amd64
Suite: debian-security bookworm-security main
Filename: ${zlib.filename}
Size: ${zlib.size}
SHA256: ${zlib.sha256.slice(7)}
Requested-By: dropbear-bin
`,
  );
  t.false(/https?:|\/\/|ftp/.test(text.replace(/^#.*\n/gm, "")), "no URL in the lock");
});

test("parse(serialize(lock)) is the lock, and serialize(parse(text)) is the text", (t) => {
  const lock = exampleLock();
  const text = serializeLock(lock);
  const parsed = parseLock(text);
  if (!parsed.ok) return t.fail(JSON.stringify(parsed.errors));
  t.deepEqual(parsed.lock, lock);
  t.is(serializeLock(parsed.lock), text);
});

test("serialization does not depend on the order of requests, packages or requesters", (t) => {
  const lock = exampleLock();
  const shuffled: Lock = {
    ...lock,
    requests: [...lock.requests].reverse(),
    packages: [...lock.packages].reverse().map((p) => ({ ...p, requestedBy: [...p.requestedBy].reverse() })),
  };
  t.is(serializeLock(shuffled), serializeLock(lock));
  t.deepEqual(normalizeLock(shuffled), lock);
});

// ---- generated locks

const word = fc.stringMatching(/^[a-z0-9][a-z0-9.+-]{0,8}$/);
const versionArb = fc
  .tuple(
    fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    fc.stringMatching(/^[0-9][a-z0-9.+~]{0,6}$/),
    fc.option(fc.stringMatching(/^[a-z0-9.+~]{1,5}$/), { nil: undefined }),
  )
  .map(([e, u, r]) => `${e === undefined ? "" : `${e}:`}${u}${r === undefined ? "" : `-${r}`}`);
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const suiteArb = fc.record({
  archive: word,
  suite: word,
  component: word,
  date: fc.stringMatching(/^[A-Za-z0-9,:]([A-Za-z0-9,: ]{0,20}[A-Za-z0-9,:])?$/),
  inRelease: hex64.map((h) => `sha256:${h}`),
});
const requestArb = fc.record(
  {
    name: word,
    arch: fc.constantFrom("any", "native", "amd64"),
    constraint: fc.record({ op: fc.constantFrom("<<", "<=", "=", ">=", ">>" as const), version: versionArb }),
  },
  { requiredKeys: ["name"] },
);
const lockArb = fc
  .tuple(
    fc.uniqueArray(suiteArb, {
      minLength: 1,
      maxLength: 4,
      selector: (s) => `${s.archive} ${s.suite} ${s.component}`,
    }),
    fc.uniqueArray(requestArb, {
      minLength: 1,
      maxLength: 5,
      selector: (r) => JSON.stringify([r.name, r.arch, r.constraint]),
    }),
  )
  .chain(([suites, requests]) =>
    fc
      .uniqueArray(
        fc.record({
          name: word,
          version: versionArb,
          architecture: fc.constantFrom("amd64", "all", "i386"),
          from: fc
            .constantFrom(...suites)
            .map((s) => ({ archive: s.archive, suite: s.suite, component: s.component })),
          filename: fc
            .array(fc.stringMatching(/^[a-z0-9][a-z0-9._+~-]{0,8}$/), { minLength: 1, maxLength: 4 })
            .map((parts) => `pool/${parts.join("/")}.deb`),
          size: fc.nat({ max: 2 ** 40 }),
          sha256: hex64.map((h) => `sha256:${h}`),
          requestedBy: fc.subarray(
            requests.map((r) => r.name),
            { minLength: 1 },
          ),
        }),
        { maxLength: 8, selector: (p) => `${p.name}:${p.architecture}` },
      )
      .map((packages): Lock => ({ architecture: "amd64", suites, requests, packages })),
  );

test("round trip on generated locks", (t) => {
  fc.assert(
    fc.property(lockArb, (raw) => {
      const lock = normalizeLock(raw);
      const text = serializeLock(raw);
      const parsed = parseLock(text);
      if (!parsed.ok) throw new Error(`${JSON.stringify(parsed.errors)}\n${text}`);
      t.deepEqual(parsed.lock, lock);
      t.is(serializeLock(parsed.lock), text);
    }),
    { numRuns: 300 },
  );
});

// ---- malformed locks

const good = () => serializeLock(exampleLock());

function errorsOf(text: string) {
  const parsed = parseLock(text);
  if (parsed.ok) throw new Error("expected errors");
  return parsed.errors.map((e) => `${e.line}: ${e.message}`);
}

/** `good()` with line `n` (1-based) replaced. */
function withLine(n: number, line: string): string {
  const lines = good().split("\n");
  lines[n - 1] = line;
  return lines.join("\n");
}

test("malformed: each problem names its line", (t) => {
  // Line numbers of the example text: 3 Lock-Format, 4 Architecture, 6-7 suites, 9-10 requests,
  // 12 Package: busybox-static … 19 Requested-By, 21 Package: dropbear-bin, 22 Version.
  t.deepEqual(errorsOf(withLine(22, "Version: 2022.83-")), ["22: Version revision number is empty"]);
  t.deepEqual(errorsOf(withLine(22, "Verison: 2022.83-1")), [
    "21: the package stanza at line 21 has no Version field",
    "22: unknown field 'Verison' in the package stanza at line 21 (did you mean 'Version'?)",
  ]);
  t.deepEqual(errorsOf(withLine(15, "Suite: debian trixie main")), [
    "15: Suite 'debian trixie main' is not one of the header's Suites",
  ]);
  t.deepEqual(errorsOf(withLine(16, "Filename: http://deb.debian.org/debian/pool/main/b/busybox.deb")), [
    "16: Filename is a URL ('http://deb.debian.org/debian/pool/main/b/busybox.deb'); the lock holds pool paths, never a mirror's URL",
  ]);
  t.deepEqual(errorsOf(withLine(16, "Filename: ../etc/passwd")), [
    "16: Filename '../etc/passwd' has an empty, '.' or '..' part",
  ]);
  t.deepEqual(errorsOf(withLine(17, "Size: 12k")), ["17: Size '12k' is not a size in bytes"]);
  t.deepEqual(errorsOf(withLine(18, "SHA256: ABC")), ["18: SHA256 'ABC' is not 64 lowercase hex digits"]);
  t.deepEqual(errorsOf(withLine(19, "Requested-By: busybox")), [
    "19: Requested-By 'busybox' is not the name of a request in the header",
  ]);
  t.deepEqual(errorsOf(withLine(19, "Requested-By: busybox-static,")), [
    "19: Requested-By has an empty name in its list",
  ]);
  t.deepEqual(errorsOf(withLine(7, " debian-security bookworm-security main md5:abc Tue")), [
    "7: Suites: InRelease digest 'md5:abc' is not sha256:<64 lowercase hex digits>",
  ]);
  t.deepEqual(errorsOf(withLine(6, " debian bookworm")), [
    "6: Suites: expected 'archive suite component sha256:<hex> <InRelease Date>'",
  ]);
  t.deepEqual(errorsOf(withLine(10, " dropbear-bin | dropbear")), [
    "10: Requests: one package per line, without alternatives or [architectures]: 'dropbear-bin | dropbear'",
  ]);
  t.deepEqual(errorsOf(withLine(10, " dropbear-bin (>= x)")), [
    "10: Requests: version number does not start with digit: 'x' in 'dropbear-bin (>= x)'",
  ]);
  t.deepEqual(errorsOf(withLine(3, "Lock-Format: 2")), [
    "3: unsupported Lock-Format '2' (this niftyc reads 1)",
  ]);
  t.deepEqual(errorsOf(withLine(12, "Package busybox-static")), [
    "12: expected 'Field: value', found 'Package busybox-static'",
    "13: the package stanza at line 13 has no Package field",
  ]);
});

test("malformed: several problems at once, in line order", (t) => {
  const lines = good().split("\n");
  lines[21] = "Version: -1";
  lines[3] = "Architecture: AMD64";
  t.deepEqual(errorsOf(lines.join("\n")), [
    "4: Architecture 'AMD64' is not an architecture name",
    "22: Version version number is empty",
  ]);
});

test("malformed: duplicates, empty files, other files", (t) => {
  const text = good();
  const stanza = text.slice(text.indexOf("Package: libc6"), text.indexOf("Package: zlib1g"));
  const lineOfCopy = text.split("\n").length;
  t.deepEqual(errorsOf(`${text}\n${stanza}`), [
    `${lineOfCopy + 1}: package libc6 (amd64) is locked twice (first at line 30)`,
  ]);
  t.deepEqual(errorsOf(""), ["1: empty lock: expected a header stanza starting with Lock-Format"]);
  t.deepEqual(errorsOf("Package: x\nVersion: 1\n"), [
    "1: not a niftyc lock: the first stanza has no Lock-Format field",
  ]);
  t.deepEqual(errorsOf(text.replace("Requests:", "Request:")), [
    "3: the header has no Requests field",
    "8: unknown field 'Request' in the header (did you mean 'Requests'?)",
  ]);
});

test("a hand edit that keeps the meaning parses to the same lock (order, spacing, comments, case)", (t) => {
  const text = good()
    .replace(
      "Requests:\n busybox-static (>= 1:1.35)\n dropbear-bin",
      "requests:\n dropbear-bin\n# the static one\n busybox-static (>=1:1.35)",
    )
    .replace("Requested-By: dropbear-bin\n", "Requested-By:   dropbear-bin  \n");
  const parsed = parseLock(text);
  if (!parsed.ok) return t.fail(JSON.stringify(parsed.errors));
  t.deepEqual(parsed.lock, exampleLock());
});

// ---- coverage

test("lockCovers: exactly the same requests, in any order", (t) => {
  const lock = exampleLock();
  t.deepEqual(
    lockCovers(lock, [
      { name: "dropbear-bin" },
      { name: "busybox-static", constraint: { op: ">=", version: "1:1.35" } },
    ]),
    { covered: true, missing: [], extra: [], changed: [] },
  );
});

test("lockCovers: missing, extra and changed requests", (t) => {
  const lock = exampleLock();
  t.deepEqual(lockCovers(lock, [{ name: "busybox-static" }, { name: "tini" }]), {
    covered: false,
    missing: ["tini"],
    extra: ["dropbear-bin"],
    changed: [
      { name: "busybox-static", locked: ["busybox-static (>= 1:1.35)"], requested: ["busybox-static"] },
    ],
  });
});
