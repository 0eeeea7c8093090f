// A local, signed Debian archive on loopback, for the tests of the Debian
// package work. Built with the real tools, once per test process:
//   - real .deb files from this machine's apt (`apt-get download`), cached in
//     cache/test-debs/ so later runs never download again
//     (`node scripts/test-debs.ts` fetches them ahead, as .ci/run does);
//   - small synthetic .debs made with `dpkg-deb --build` (fixed mtimes,
//     SOURCE_DATE_EPOCH) for what real packages do not cover;
//   - Packages, Packages.xz, Packages.gz and Release made by apt-ftparchive
//     for two archive roots laid out like Debian's: debian/ with the suite
//     bookworm, debian-security/ with bookworm-security (pool/updates/main,
//     Components "updates/main", by-hash copies, a Valid-Until a week ahead);
//   - InRelease clear-signed with a throwaway ed25519 key made in a temp
//     GNUPGHOME, whose public part is exported to a keyring file;
//   - a node:http server on 127.0.0.1 serving all of it, with variants that
//     serve a tampered Packages, a tampered .deb or a bad InRelease, and two
//     later states of bookworm (LATER_PACKAGES: packages for amd64 and arm64,
//     then newer versions of them) that only their own views' indices name.
// Variants live under their own URL prefix (`view(variant)`), so tests that
// run at once never switch each other's server, and each view counts its own
// requests.
import { execFile, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import * as fsp from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import type { ExecutionContext } from "ava";
import type { SuiteRef } from "../../src/debian/types.ts";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");

/** Where the real .debs are cached between runs (git-ignored, under cache/). */
export const TEST_DEBS_DIR = path.resolve(
  process.env.NIFTY_TEST_DEBS ?? path.join(ROOT, "cache", "test-debs"),
);

/**
 * The real packages: BusyBox, Dropbear's binaries and gawk, with their whole
 * dependency closure as `apt-cache depends` gives it on bookworm (libc6 needs
 * libgcc-s1 and gcc-12-base; libreadline8 needs libtinfo6 and readline-common,
 * whose `dpkg | install-info` is met by install-info without pulling dpkg).
 */
export const REAL_PACKAGES = [
  "busybox-static",
  "dropbear-bin",
  "gawk",
  "gcc-12-base",
  "install-info",
  "libc6",
  "libcrypt1",
  "libgcc-s1",
  "libgmp10",
  "libmpfr6",
  "libreadline8",
  "libsigsegv2",
  "libtinfo6",
  "libtomcrypt1",
  "libtommath1",
  "readline-common",
  "zlib1g",
] as const;

/** The timestamp every synthetic package is built with. */
export const FIXTURE_EPOCH = 1_700_000_000;

export type Variant =
  | "good"
  /** Packages, Packages.xz, Packages.gz (and their by-hash copies) differ from what the InRelease signs. */
  | "tampered-packages"
  /** Every .deb has one byte changed. */
  | "tampered-deb"
  /** InRelease whose signed text was edited after signing (gpgv: BADSIG). */
  | "bad-signature"
  /** InRelease signed by a second key that is not in the keyring (gpgv: ERRSIG + NO_PUBKEY). */
  | "unknown-key"
  /** InRelease, correctly signed, whose Valid-Until is 2020-01-08. */
  | "expired"
  /** InRelease signed in 2020 by a key of the keyring that expired a day later (gpgv: EXPKEYSIG). */
  | "expired-key"
  /** InRelease signed with SHA-1 (gpgv: GOODSIG, hash algorithm 2). */
  | "weak-digest"
  /** InRelease, correctly signed and still valid, dated a day before the good one's Date (a replayed older one). */
  | "older"
  /**
   * bookworm a while later (LATER_PACKAGES): nifty-tool and nifty-pal 1.0-1 built for amd64 and
   * arm64 join its indices. Its own signed InRelease and indices; the packages' pool files are served
   * in every view, but only these two views' indices name them.
   */
  | "later"
  /** bookworm later still: nifty-tool, nifty-pal and nifty-data each at 1.1-1 beside the "later" versions. */
  | "latest";

export const VARIANTS: readonly Variant[] = [
  "good",
  "tampered-packages",
  "tampered-deb",
  "bad-signature",
  "unknown-key",
  "expired",
  "expired-key",
  "weak-digest",
  "older",
  "later",
  "latest",
];

export interface FixturePackage {
  name: string;
  version: string;
  architecture: string;
  /** The suite whose index lists it. */
  from: SuiteRef;
  /** Pool path relative to its archive root, as the index's Filename says. */
  filename: string;
  /** The file on disk. */
  path: string;
  sha256: string;
  size: number;
  /** A package from Debian (true) or one built here (false). */
  real: boolean;
}

export interface FixtureSuite {
  ref: SuiteRef;
  /** The archive root's directory name, also the mirror scheme: debian, debian-security. */
  root: string;
  /** dists/<suite>/ on disk. */
  dir: string;
  /** Whether its Release has Valid-Until (the security suite, a week ahead) */
  validUntil: boolean;
}

export interface ArchiveView {
  variant: Variant;
  /** Base URL of the view: `${url}/debian` is the main archive's root. */
  url: string;
  /** Mirror map for this view, by archive name (as `loadMirrors` returns). */
  mirrors: Record<string, string[]>;
  /** Paths this view was asked for (below its prefix), in order. */
  requests(): string[];
}

/** The CLI flags that point both archives of the fixture at a view. */
export function mirrorFlags(view: ArchiveView): string[] {
  const main = `debian=${view.mirrors.debian![0]}`;
  return ["--mirror", main, "--mirror", `debian-security=${view.mirrors["debian-security"]![0]}`];
}

export interface DebianArchive {
  /** The server's base URL. */
  url: string;
  /** The tree on disk: debian/ and debian-security/. */
  dir: string;
  /** Public keyring (gpgv format) with the archive key and the expired key. */
  keyring: string;
  /** The same, plus the second ("rogue") key: everything the fixture signed with. */
  fullKeyring: string;
  /** Fingerprint of the archive key. */
  fingerprint: string;
  suites: { main: FixtureSuite; security: FixtureSuite };
  packages: FixturePackage[];
  /** The package of that name (and version, when several): throws if absent. */
  pkg(name: string, version?: string): FixturePackage;
  /** A URL prefix serving the archive as `variant` says; each call gives a fresh request log. */
  view(variant?: Variant): ArchiveView;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------
// Availability

const TOOLS = ["gpg", "gpgv", "gpgconf", "apt-ftparchive", "dpkg-deb", "xz"] as const;

function hasTool(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
}

/** Why the archive cannot be built here, or undefined when it can. */
export function archiveUnavailable(): string | undefined {
  for (const tool of TOOLS)
    if (!hasTool(tool)) return `${tool} is not installed (apt-get install gpg gpgv apt-utils xz-utils)`;
  const missing = REAL_PACKAGES.filter((p) => findCached(p, listSync(TEST_DEBS_DIR)) === undefined);
  if (missing.length > 0 && !hasTool("apt-get"))
    return `the test .debs are not cached in ${TEST_DEBS_DIR} and apt-get is missing`;
  return undefined;
}

/** Skip outside CI with the reason; in CI a missing part is a failure. */
export function requireArchive(t: ExecutionContext): boolean {
  const why = archiveUnavailable();
  if (why === undefined) return true;
  if (process.env.CI) {
    t.fail(`the Debian archive fixture cannot be built in CI: ${why}`);
    return false;
  }
  t.log(`SKIPPED outside CI: ${why}`);
  t.pass();
  return false;
}

// ---------------------------------------------------------------------------
// Real .debs, downloaded once

function listSync(dir: string): string[] {
  const r = spawnSync("ls", ["-1", dir], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n").filter(Boolean) : [];
}

function findCached(name: string, files: string[]): string | undefined {
  const re = new RegExp(`^${name.replace(/[.+]/g, "\\$&")}_[^_]+_(amd64|all)\\.deb$`);
  return files
    .filter((f) => re.test(f))
    .sort()
    .at(-1);
}

/**
 * The real .debs, downloading with `apt-get download` only those not cached
 * yet. Downloads land in a private temp directory and are renamed into place,
 * so test processes running at once never see a partial file.
 */
export async function fetchTestDebs(
  dir = TEST_DEBS_DIR,
  log: (line: string) => void = () => {},
): Promise<Map<string, string>> {
  await fsp.mkdir(dir, { recursive: true });
  let files = await fsp.readdir(dir);
  const missing = REAL_PACKAGES.filter((p) => findCached(p, files) === undefined);
  if (missing.length > 0) {
    const tmp = path.join(dir, `.download-${process.pid}-${randomBytes(4).toString("hex")}`);
    await fsp.mkdir(tmp);
    try {
      log(`apt-get download ${missing.join(" ")}`);
      await run("apt-get", ["download", "-q", ...missing], { cwd: tmp, maxBuffer: 16 << 20 });
      for (const f of await fsp.readdir(tmp))
        if (f.endsWith(".deb")) await fsp.rename(path.join(tmp, f), path.join(dir, f));
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
    files = await fsp.readdir(dir);
  }
  const out = new Map<string, string>();
  for (const p of REAL_PACKAGES) {
    const f = findCached(p, files);
    if (f === undefined) throw new Error(`apt-get download did not give ${p}`);
    out.set(p, path.join(dir, f));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Synthetic .debs

export interface SyntheticSpec {
  name: string;
  version: string;
  architecture?: string;
  security?: boolean;
  /** Control fields after Package, Version, Architecture and Maintainer. */
  fields?: [string, string][];
  /** Regular files (mode 0644 unless `mode`), by absolute path. */
  files?: { path: string; content: string; mode?: number }[];
  symlinks?: { path: string; target: string }[];
  /** Hard links: a second name for an earlier regular file. */
  hardlinks?: { path: string; target: string }[];
  scripts?: Partial<Record<"preinst" | "postinst" | "prerm" | "postrm", string>>;
  /** Absolute paths of conffiles (must be among `files`). */
  conffiles?: string[];
  /** false: no md5sums member, as old or hand-made packages have (dpkg then makes it from the files). */
  md5sums?: false;
}

/** A postinst that, if anything ever ran it, would leave a mark and fail. */
export const CANARY = "/tmp/niftyc-fixture-maintainer-script-ran";
const canary = (script: string) =>
  `#!/bin/sh\necho "${script} of a niftyc fixture package ran" >&2\ntouch ${CANARY}\nexit 1\n`;

/**
 * The synthetic packages. What each is for:
 * - nifty-app: Depends on a virtual package with two providers
 *   (nifty-mail-transport), an alternative whose first choice is in no suite
 *   (nifty-missing | nifty-pager), a version constraint (nifty-lib (>= 1.0));
 *   Pre-Depends on nifty-base; Recommends a package that does not exist;
 *   a conffile and no maintainer script; many fields, in an odd order.
 * - nifty-base: a postinst and a prerm (canaries), a conffile, md5sums, a
 *   symlink and a hard link, a multi-line Description.
 * - nifty-lib: Multi-Arch: same; 1.0 in bookworm, 1.1 only in bookworm-security.
 * - nifty-secure: Depends on nifty-lib (>= 1.1), met only with the security suite.
 * - nifty-mta-a, nifty-mta-b: both Provide nifty-mail-transport (b with a version).
 * - nifty-awk: Provides awk, as gawk does: a virtual package with a real and a synthetic provider.
 * - nifty-essential: Essential: yes, Protected: yes, Priority: required.
 * - nifty-data: Architecture: all.
 */
export const SYNTHETIC: readonly SyntheticSpec[] = [
  {
    name: "nifty-app",
    version: "1.0-1",
    // Fields in an order unlike dpkg's, one relation spelt loosely: dpkg's status file reorders and respells them.
    fields: [
      ["Homepage", "https://niftyc.invalid/app"],
      ["Description", "niftyc fixture: an application\n It has dependencies of every kind."],
      ["Suggests", "nifty-doc"],
      ["Depends", "nifty-lib (>= 1.0), nifty-mail-transport, nifty-missing | nifty-pager"],
      ["Pre-Depends", "nifty-base"],
      ["Recommends", "nifty-extra"],
      ["Breaks", "nifty-old (<<1.0)"],
      ["Replaces", "nifty-old   (<< 1.0)"],
      ["Enhances", "nifty-pager"],
      ["Built-Using", "nifty-base-src (= 1.0-1)"],
      ["Origin", "niftyc"],
      ["Bugs", "mailto:bugs@niftyc.invalid"],
      ["Installed-Size", "12"],
      ["Section", "utils"],
      ["Priority", "optional"],
    ],
    files: [
      { path: "/usr/bin/nifty-app", content: "#!/bin/sh\necho app\n", mode: 0o755 },
      { path: "/etc/nifty-app/app.conf", content: "colour = blue\n" },
    ],
    conffiles: ["/etc/nifty-app/app.conf"],
  },
  {
    name: "nifty-base",
    version: "1.0-1",
    fields: [
      ["Multi-Arch", "foreign"],
      ["Section", "admin"],
      ["Priority", "important"],
      ["Source", "nifty-base-src"],
      [
        "Description",
        "niftyc fixture: a base package with maintainer scripts\n Its postinst and prerm fail loudly if anything runs them.\n .\n The line above is an empty paragraph line.",
      ],
    ],
    files: [
      { path: "/etc/nifty-base.conf", content: "setting = 1\n" },
      { path: "/usr/bin/nifty-base", content: "#!/bin/sh\necho base\n", mode: 0o755 },
      { path: "/usr/share/doc/nifty-base/copyright", content: "Public domain.\n" },
    ],
    symlinks: [{ path: "/usr/bin/nb", target: "nifty-base" }],
    hardlinks: [{ path: "/usr/bin/nifty-base-again", target: "/usr/bin/nifty-base" }],
    scripts: { postinst: canary("postinst"), prerm: canary("prerm") },
    conffiles: ["/etc/nifty-base.conf"],
  },
  {
    name: "nifty-lib",
    version: "1.0-1",
    fields: [
      ["Multi-Arch", "same"],
      ["Section", "libs"],
      ["Description", "niftyc fixture: a library (bookworm)"],
    ],
    files: [{ path: "/usr/lib/x86_64-linux-gnu/libnifty.so.1", content: "not really a library 1.0\n" }],
  },
  {
    name: "nifty-lib",
    version: "1.1-1",
    security: true,
    fields: [
      ["Multi-Arch", "same"],
      ["Section", "libs"],
      ["Description", "niftyc fixture: a library (security update)"],
    ],
    files: [{ path: "/usr/lib/x86_64-linux-gnu/libnifty.so.1", content: "not really a library 1.1\n" }],
  },
  {
    name: "nifty-secure",
    version: "1.0-1",
    fields: [
      ["Depends", "nifty-lib (>= 1.1)"],
      ["Description", "niftyc fixture: needs the security update of nifty-lib"],
    ],
    files: [{ path: "/usr/share/nifty-secure/README", content: "secure\n" }],
  },
  {
    name: "nifty-mta-a",
    version: "1.0-1",
    fields: [
      ["Provides", "nifty-mail-transport"],
      ["Conflicts", "nifty-mail-transport"],
      ["Description", "niftyc fixture: first provider of nifty-mail-transport"],
    ],
    files: [{ path: "/usr/sbin/nifty-mta-a", content: "#!/bin/sh\n", mode: 0o755 }],
  },
  {
    name: "nifty-mta-b",
    version: "2.0-1",
    fields: [
      ["Provides", "nifty-mail-transport (= 2.0)"],
      ["Conflicts", "nifty-mail-transport"],
      ["Description", "niftyc fixture: second provider of nifty-mail-transport"],
    ],
    files: [{ path: "/usr/sbin/nifty-mta-b", content: "#!/bin/sh\n", mode: 0o755 }],
  },
  {
    name: "nifty-pager",
    version: "1.0-1",
    fields: [["Description", "niftyc fixture: the second choice of an alternative"]],
    files: [{ path: "/usr/bin/nifty-pager", content: "#!/bin/sh\ncat\n", mode: 0o755 }],
  },
  {
    name: "nifty-awk",
    version: "1.0-1",
    fields: [
      ["Provides", "awk"],
      ["Description", "niftyc fixture: another awk"],
    ],
    files: [{ path: "/usr/bin/nifty-awk", content: "#!/bin/sh\n", mode: 0o755 }],
  },
  {
    name: "nifty-essential",
    version: "1.0-1",
    fields: [
      ["Essential", "yes"],
      ["Protected", "yes"],
      ["Priority", "required"],
      ["Description", "niftyc fixture: an Essential package"],
    ],
    files: [{ path: "/usr/share/nifty-essential/README", content: "essential\n" }],
  },
  {
    name: "nifty-data",
    version: "1.0-1",
    architecture: "all",
    fields: [["Description", "niftyc fixture: architecture-independent data"]],
    files: [{ path: "/usr/share/nifty-data/data.txt", content: "data\n" }],
  },
];

/**
 * The packages bookworm's later states add (the "later" and "latest" variants), each built for
 * amd64 and arm64 unless it is Architecture: all: a version moving on every platform of a
 * multi-platform lock (`lock --update nifty-tool`) while another package with a newer version
 * (nifty-pal) stays. Kept out of SYNTHETIC and `packages`: the good indices never name them.
 */
export const LATER_PACKAGES: Readonly<Record<"later" | "latest", readonly SyntheticSpec[]>> = {
  later: ["nifty-tool", "nifty-pal"].map((name) => laterSpec(name, "1.0-1")),
  latest: [
    laterSpec("nifty-tool", "1.1-1"),
    laterSpec("nifty-pal", "1.1-1"),
    {
      name: "nifty-data",
      version: "1.1-1",
      architecture: "all",
      fields: [["Description", "niftyc fixture: architecture-independent data (a later version)"]],
      files: [{ path: "/usr/share/nifty-data/data.txt", content: "data 1.1\n" }],
    },
  ],
};

function laterSpec(name: string, version: string): SyntheticSpec {
  return {
    name,
    version,
    fields: [["Description", `niftyc fixture: ${name}, built for each architecture`]],
    files: [{ path: `/usr/share/${name}/version`, content: `${version}\n` }],
  };
}

/** Build one synthetic package with dpkg-deb into outDir; the same spec gives the same bytes. */
export async function buildSyntheticDeb(
  spec: SyntheticSpec,
  workDir: string,
  outDir: string,
): Promise<string> {
  const arch = spec.architecture ?? "amd64";
  const root = path.join(workDir, `${spec.name}_${spec.version}`);
  const debian = path.join(root, "DEBIAN");
  await fsp.mkdir(debian, { recursive: true, mode: 0o755 });
  const md5: string[] = [];
  for (const f of spec.files ?? []) {
    const p = path.join(root, f.path);
    await fsp.mkdir(path.dirname(p), { recursive: true, mode: 0o755 });
    await fsp.writeFile(p, f.content);
    await fsp.chmod(p, f.mode ?? 0o644);
    if (!(spec.conffiles ?? []).includes(f.path))
      md5.push(`${createHash("md5").update(f.content).digest("hex")}  ${f.path.slice(1)}`);
  }
  for (const l of spec.symlinks ?? []) await fsp.symlink(l.target, path.join(root, l.path));
  for (const l of spec.hardlinks ?? []) await fsp.link(path.join(root, l.target), path.join(root, l.path));
  const control = [
    `Package: ${spec.name}`,
    `Version: ${spec.version}`,
    `Architecture: ${arch}`,
    "Maintainer: niftyc tests <tests@niftyc.invalid>",
    ...(spec.fields ?? []).map(([k, v]) => `${k}: ${v}`),
  ];
  await fsp.writeFile(path.join(debian, "control"), control.join("\n") + "\n");
  if (md5.length > 0 && spec.md5sums !== false)
    await fsp.writeFile(
      path.join(debian, "md5sums"),
      md5.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join("\n") + "\n",
    );
  if (spec.conffiles) await fsp.writeFile(path.join(debian, "conffiles"), spec.conffiles.join("\n") + "\n");
  for (const [name, body] of Object.entries(spec.scripts ?? {})) {
    await fsp.writeFile(path.join(debian, name), body);
    await fsp.chmod(path.join(debian, name), 0o755);
  }
  // Fixed mtimes everywhere (dpkg-deb also clamps to SOURCE_DATE_EPOCH).
  await run("find", [root, "-exec", "touch", "-h", "-d", `@${FIXTURE_EPOCH}`, "{}", "+"]);
  const out = path.join(outDir, `${spec.name}_${spec.version}_${arch}.deb`);
  await fsp.mkdir(outDir, { recursive: true });
  await run("dpkg-deb", ["--root-owner-group", "-Zxz", "--build", root, out], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(FIXTURE_EPOCH) },
  });
  return out;
}

// ---------------------------------------------------------------------------
// Building the archive

interface Built {
  dir: string;
  keyring: string;
  fullKeyring: string;
  fingerprint: string;
  suites: { main: FixtureSuite; security: FixtureSuite };
  packages: FixturePackage[];
  /** Per archive root and path below it (e.g. "debian" + "dists/bookworm/InRelease"): replacement bytes per variant. */
  overrides: Map<string, Partial<Record<Variant, Buffer>>>;
}

const MAIN: SuiteRef = { archive: "debian", suite: "bookworm", component: "main" };
const SECURITY: SuiteRef = { archive: "debian-security", suite: "bookworm-security", component: "main" };

async function fileSha256(file: string): Promise<string> {
  return `sha256:${createHash("sha256")
    .update(await fsp.readFile(file))
    .digest("hex")}`;
}

async function debFields(deb: string): Promise<Record<string, string>> {
  const { stdout } = await run("dpkg-deb", ["--field", deb, "Package", "Version", "Architecture", "Source"]);
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^([A-Za-z-]+): (.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Debian's pool layout: pool/<component>/<prefix>/<source>/, prefix "libx" for lib* sources. */
function poolDir(pool: string, source: string): string {
  const prefix = source.startsWith("lib") ? source.slice(0, 4) : source[0]!;
  return `${pool}/${prefix}/${source}`;
}

async function build(): Promise<Built> {
  const why = archiveUnavailable();
  if (why) throw new Error(`cannot build the Debian archive fixture: ${why}`);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "niftyc-archive-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));

  const work = path.join(dir, "work");
  const packages = await placePackages(dir, work);

  // Keys: the archive's, one that expired in 2020 (also in the keyring), and a rogue one.
  const gnupg = path.join(dir, "gnupg");
  await fsp.mkdir(gnupg, { mode: 0o700 });
  const gpg: Gpg = (args) =>
    run("gpg", ["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", ...args], {
      env: { ...process.env, GNUPGHOME: gnupg },
    });
  const keyring = path.join(dir, "keyring.gpg");
  const fullKeyring = path.join(dir, "keyring-all.gpg");
  const overrides: Overrides = new Map();
  try {
    const keys = await makeKeys(gpg, keyring, fullKeyring);
    const suites = {
      main: { ref: MAIN, root: "debian", dir: path.join(dir, "debian/dists/bookworm"), validUntil: false },
      security: {
        ref: SECURITY,
        root: "debian-security",
        dir: path.join(dir, "debian-security/dists/bookworm-security"),
        validUntil: true,
      },
    };
    const archive: ArchiveWork = { dir, work, gpg, keys, overrides };
    for (const s of [suites.main, suites.security]) await publishSuite(archive, s);
    await tamperDebs(packages, overrides);
    // After the good indices are made, so that they never name the later packages.
    await publishLaterStates(archive, suites.main);
    await fsp.rm(work, { recursive: true, force: true });
    return { dir, keyring, fullKeyring, fingerprint: keys.fingerprint, suites, packages, overrides };
  } finally {
    // The agent gpg started for the key generation: ours, stopped by its home.
    spawnSync("gpgconf", ["--homedir", gnupg, "--kill", "gpg-agent"]);
  }
}

type Gpg = (args: string[]) => Promise<{ stdout: string }>;
type Overrides = Built["overrides"];

/** The archive's signing key, a key that expired in 2020, and a rogue key outside the keyring. */
interface Keys {
  fingerprint: string;
  expiredKey: string;
  rogueKey: string;
}

/** What publishing the suites shares: where they go, the keys, and the variants' bytes they add to. */
interface ArchiveWork {
  dir: string;
  work: string;
  gpg: Gpg;
  keys: Keys;
  overrides: Overrides;
}

/** The real and synthetic .debs, copied into their archive's pool, sorted by name and version. */
async function placePackages(dir: string, work: string): Promise<FixturePackage[]> {
  const real = await fetchTestDebs();
  const packages: FixturePackage[] = [];
  const place = async (deb: string, from: SuiteRef, pool: string, isReal: boolean) => {
    const f = await debFields(deb);
    const source = (f.Source ?? f.Package!).split(" ")[0]!;
    const filename = `${poolDir(pool, source)}/${f.Package}_${f.Version!.replace(/^\d+:/, "")}_${f.Architecture}.deb`;
    const target = path.join(dir, from.archive, filename);
    await fsp.mkdir(path.dirname(target), { recursive: true });
    await fsp.copyFile(deb, target);
    const st = await fsp.stat(target);
    packages.push({
      name: f.Package!,
      version: f.Version!,
      architecture: f.Architecture!,
      from,
      filename,
      path: target,
      sha256: await fileSha256(target),
      size: st.size,
      real: isReal,
    });
  };
  // In parallel: each step is a short-lived tool run.
  await Promise.all([
    ...[...real.values()].map((deb) => place(deb, MAIN, "pool/main", true)),
    ...SYNTHETIC.map(async (spec) => {
      const deb = await buildSyntheticDeb(spec, work, path.join(work, "debs"));
      await place(
        deb,
        spec.security ? SECURITY : MAIN,
        spec.security ? "pool/updates/main" : "pool/main",
        false,
      );
    }),
  ]);
  packages.sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
  return packages;
}

/** Generate the three keys; the keyring holds the archive's and the expired one, the full one all three. */
async function makeKeys(gpg: Gpg, keyring: string, fullKeyring: string): Promise<Keys> {
  const genKey = async (uid: string, extra: string[], expire: string) => {
    await gpg([...extra, "--quick-gen-key", uid, "ed25519", "sign", expire]);
    const { stdout } = await gpg(["--with-colons", "--list-keys", uid]);
    return /^fpr:+([0-9A-F]{40}):/m.exec(stdout)![1]!;
  };
  const fingerprint = await genKey("niftyc test archive <archive@niftyc.invalid>", [], "never");
  const expiredUid = "niftyc expired key <expired@niftyc.invalid>";
  const expiredKey = await genKey(expiredUid, ["--faked-system-time", "20200101T000000"], "1d");
  const rogueKey = await genKey("niftyc rogue key <rogue@niftyc.invalid>", [], "never");
  await gpg(["--output", keyring, "--export", fingerprint, expiredKey]);
  await gpg(["--output", fullKeyring, "--export", fingerprint, expiredKey, rogueKey]);
  return { fingerprint, expiredKey, rogueKey };
}

/** One suite's dists: its index, its Release and InRelease, and the variants' InRelease and index. */
async function publishSuite(archive: ArchiveWork, s: FixtureSuite): Promise<void> {
  const archiveRoot = path.join(archive.dir, s.root);
  const binDir = path.join(s.dir, "main/binary-amd64");
  const byHash = s.validUntil; // the security suite also serves by-hash, like Debian's
  const packagesText = await writeSuiteIndex(s, archiveRoot, binDir, byHash);
  const release = await releaseText(s.dir, s.ref, { validFor: s.validUntil ? 7 * 86400 : undefined, byHash });
  await fsp.writeFile(path.join(s.dir, "Release"), release);
  const rel = (p: string) => `${s.root}/${path.relative(archiveRoot, p)}`;
  await signRelease(archive, s, release, rel);
  await tamperIndex(archive, s, packagesText, { binDir, byHash, rel });
}

/** The suite's Packages index, plain and compressed (and by hash when asked); returns its text. */
async function writeSuiteIndex(
  s: FixtureSuite,
  archiveRoot: string,
  binDir: string,
  byHash: boolean,
): Promise<string> {
  await fsp.mkdir(binDir, { recursive: true });
  const { stdout: packagesText } = await run(
    "apt-ftparchive",
    ["packages", s.root === "debian" ? "pool/main" : "pool/updates/main"],
    { cwd: archiveRoot, maxBuffer: 64 << 20 },
  );
  const plain = Buffer.from(packagesText);
  await writeIndexFiles(binDir, plain);
  // arm64 has only the architecture-independent packages: what a multi-platform build finds
  // missing on one platform (test/pipeline/platforms.test.ts).
  const armDir = path.join(s.dir, "main/binary-arm64");
  await fsp.mkdir(armDir, { recursive: true });
  const allOnly = packagesText.split(/\n\n+/).filter((st) => /^Architecture: all$/m.test(st));
  await writeIndexFiles(armDir, Buffer.from(allOnly.map((st) => `${st.trim()}\n`).join("\n")));
  if (byHash) {
    const hashDir = path.join(binDir, "by-hash/SHA256");
    await fsp.mkdir(hashDir, { recursive: true });
    for (const f of ["Packages", "Packages.xz", "Packages.gz"]) {
      const bytes = await fsp.readFile(path.join(binDir, f));
      await fsp.writeFile(path.join(hashDir, createHash("sha256").update(bytes).digest("hex")), bytes);
    }
  }
  return packagesText;
}

/** The InRelease, signed by the archive's key; the signature variants' InRelease go into the overrides. */
async function signRelease(
  archive: ArchiveWork,
  s: FixtureSuite,
  release: string,
  rel: (p: string) => string,
): Promise<void> {
  const { work, gpg, overrides } = archive;
  const { fingerprint, expiredKey, rogueKey } = archive.keys;
  const sign = async (text: string, extra: string[]) => {
    const src = path.join(work, `release-${randomBytes(4).toString("hex")}`);
    await fsp.writeFile(src, text);
    await gpg([...extra, "--digest-algo", "SHA256", "--clearsign", "--output", `${src}.asc`, src]);
    return fsp.readFile(`${src}.asc`);
  };
  const expiredText = withValidUntil(
    release,
    "Wed, 01 Jan 2020 00:00:00 UTC",
    "Wed, 08 Jan 2020 00:00:00 UTC",
  );
  const [good, unknownKey, expired, expiredKeySig, weak, older] = await Promise.all([
    sign(release, ["--local-user", fingerprint]),
    sign(release, ["--local-user", rogueKey]),
    sign(expiredText, ["--local-user", fingerprint]),
    sign(release, ["--local-user", expiredKey, "--faked-system-time", "20200101T060000"]),
    signWeak(gpg, work, release, fingerprint),
    sign(dayEarlier(release), ["--local-user", fingerprint]),
  ]);
  await fsp.writeFile(path.join(s.dir, "InRelease"), good);
  overrides.set(rel(path.join(s.dir, "InRelease")), {
    "bad-signature": Buffer.from(good.toString("utf8").replace(/^Origin: .*$/m, "Origin: someone else")),
    "unknown-key": unknownKey,
    expired,
    "expired-key": expiredKeySig,
    "weak-digest": weak,
    older,
  });
}

/** The tampered-packages variant of the suite's index, plain, compressed and by hash. */
async function tamperIndex(
  { work, overrides }: ArchiveWork,
  s: FixtureSuite,
  packagesText: string,
  { binDir, byHash, rel }: { binDir: string; byHash: boolean; rel: (p: string) => string },
): Promise<void> {
  // A tampered index: one package's version changed, recompressed.
  const tampered = Buffer.from(packagesText.replace(/^Version: (.*)$/m, "Version: $1+evil"));
  const tamperedDir = path.join(work, `tampered-${s.root}`);
  await fsp.mkdir(tamperedDir, { recursive: true });
  await writeIndexFiles(tamperedDir, tampered);
  for (const f of ["Packages", "Packages.xz", "Packages.gz"]) {
    const bytes = await fsp.readFile(path.join(tamperedDir, f));
    overrides.set(rel(path.join(binDir, f)), { "tampered-packages": bytes });
    const real = createHash("sha256")
      .update(await fsp.readFile(path.join(binDir, f)))
      .digest("hex");
    if (byHash) overrides.set(rel(path.join(binDir, "by-hash/SHA256", real)), { "tampered-packages": bytes });
  }
}

/**
 * The "later" and "latest" variants of the main suite: their packages placed in the pool (each
 * state adding to the one before), and each state's indices and signed InRelease as overrides.
 */
async function publishLaterStates(archive: ArchiveWork, s: FixtureSuite): Promise<void> {
  const archiveRoot = path.join(archive.dir, s.root);
  const rel = (p: string) => `${s.root}/${path.relative(archiveRoot, p)}`;
  for (const variant of ["later", "latest"] as const) {
    for (const spec of LATER_PACKAGES[variant]) {
      const arches = spec.architecture === "all" ? ["all"] : ["amd64", "arm64"];
      for (const architecture of arches) {
        const work = path.join(archive.work, `${variant}-${architecture}`);
        const deb = await buildSyntheticDeb({ ...spec, architecture }, work, path.join(work, "debs"));
        const target = path.join(archiveRoot, poolDir("pool/main", spec.name), path.basename(deb));
        await fsp.mkdir(path.dirname(target), { recursive: true });
        await fsp.copyFile(deb, target);
      }
    }
    const { stdout } = await run("apt-ftparchive", ["packages", "pool/main"], {
      cwd: archiveRoot,
      maxBuffer: 64 << 20,
    });
    const stanzas = stdout.split(/\n\n+/).filter((st) => st.trim() !== "");
    // Its own copy of the suite's dists, to make the Release from; served through the overrides.
    const suiteDir = path.join(archive.work, `dists-${variant}`);
    for (const arch of ["amd64", "arm64"]) {
      // The pool's only arm64 packages are the later ones: arm64 still has no other architecture-bound one.
      const mine = stanzas.filter((st) => new RegExp(`^Architecture: (${arch}|all)$`, "m").test(st));
      const dir = path.join(suiteDir, `main/binary-${arch}`);
      await fsp.mkdir(dir, { recursive: true });
      await writeIndexFiles(dir, Buffer.from(mine.map((st) => `${st.trim()}\n`).join("\n")));
      for (const f of ["Packages", "Packages.xz", "Packages.gz"]) {
        const served = rel(path.join(s.dir, `main/binary-${arch}`, f));
        setOverride(archive.overrides, served, variant, await fsp.readFile(path.join(dir, f)));
      }
    }
    const release = await releaseText(suiteDir, s.ref, { validFor: undefined, byHash: false });
    const src = path.join(archive.work, `release-${variant}`);
    await fsp.writeFile(src, release);
    await archive.gpg([
      "--local-user",
      archive.keys.fingerprint,
      "--digest-algo",
      "SHA256",
      "--clearsign",
      "--output",
      `${src}.asc`,
      src,
    ]);
    const inRelease = await fsp.readFile(`${src}.asc`);
    setOverride(archive.overrides, rel(path.join(s.dir, "InRelease")), variant, inRelease);
  }
}

/** One variant's bytes for a served path, beside the other variants' bytes for it. */
function setOverride(map: Overrides, rel: string, variant: Variant, bytes: Buffer): void {
  map.set(rel, { ...map.get(rel), [variant]: bytes });
}

/** The tampered-deb variant: each .deb with one byte flipped. */
async function tamperDebs(packages: readonly FixturePackage[], overrides: Overrides): Promise<void> {
  for (const p of packages) {
    const bytes = await fsp.readFile(p.path);
    const i = bytes.length >> 1;
    bytes[i] = bytes[i]! ^ 0xff;
    overrides.set(`${p.from.archive}/${p.filename}`, { "tampered-deb": bytes });
  }
}

async function signWeak(
  gpg: (args: string[]) => Promise<unknown>,
  work: string,
  text: string,
  key: string,
): Promise<Buffer> {
  const src = path.join(work, `release-sha1-${randomBytes(4).toString("hex")}`);
  await fsp.writeFile(src, text);
  await gpg(["--local-user", key, "--digest-algo", "SHA1", "--clearsign", "--output", `${src}.asc`, src]);
  return fsp.readFile(`${src}.asc`);
}

async function writeIndexFiles(dir: string, plain: Buffer): Promise<void> {
  await fsp.writeFile(path.join(dir, "Packages"), plain);
  // gzip without a name or time in its header; xz with fixed settings: both deterministic.
  await fsp.writeFile(path.join(dir, "Packages.gz"), gzipSync(plain, { level: 9 }));
  const { stdout } = await run("xz", ["-9", "-T1", "-c", path.join(dir, "Packages")], {
    encoding: "buffer",
    maxBuffer: 64 << 20,
  });
  await fsp.writeFile(path.join(dir, "Packages.xz"), stdout);
}

async function releaseText(
  suiteDir: string,
  ref: SuiteRef,
  o: { validFor: number | undefined; byHash: boolean },
): Promise<string> {
  const opt = (k: string, v: string) => ["-o", `APT::FTPArchive::Release::${k}=${v}`];
  const security = ref.archive === "debian-security";
  const args = [
    ...opt("Origin", "Debian"),
    ...opt("Label", security ? "Debian-Security" : "Debian"),
    ...opt("Suite", security ? "stable-security" : "stable"),
    ...opt("Codename", ref.suite),
    ...opt("Architectures", "amd64 arm64"),
    ...opt("Components", security ? "updates/main" : "main"),
    ...opt("Description", `niftyc test archive: ${ref.suite}`),
    ...(o.validFor !== undefined ? opt("ValidTime", String(o.validFor)) : []),
    ...(o.byHash ? opt("Acquire-By-Hash", "yes") : []),
    "release",
    ".",
  ];
  const { stdout } = await run("apt-ftparchive", args, { cwd: suiteDir, maxBuffer: 16 << 20 });
  return stdout;
}

/** The Release text with its Date and Valid-Until replaced (the "expired" variant). */
function withValidUntil(release: string, date: string, validUntil: string): string {
  const lines = release.split("\n").filter((l) => !l.startsWith("Valid-Until:"));
  return lines
    .map((l) => (l.startsWith("Date:") ? `Date: ${date}\nValid-Until: ${validUntil}` : l))
    .join("\n");
}

/** The Release text with its Date a day earlier (Valid-Until, if any, kept): the "older" variant. */
function dayEarlier(release: string): string {
  return release.replace(
    /^Date: (.*)$/m,
    (_, d: string) => `Date: ${new Date(Date.parse(d) - 86_400_000).toUTCString().replace(/GMT$/, "UTC")}`,
  );
}

// ---------------------------------------------------------------------------
// Serving it

let memo: Promise<DebianArchive> | undefined;

/** The archive and its server, built once per test process. */
export function debianArchive(): Promise<DebianArchive> {
  memo ??= start();
  return memo;
}

async function start(): Promise<DebianArchive> {
  const built = await build();
  const logs = new Map<string, { variant: Variant; paths: string[] }>();
  const server = http.createServer((req, res) => {
    void respond(built, logs, req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // A shared server must not keep a test process alive once its tests are done.
  server.unref();
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let views = 0;
  return {
    url,
    dir: built.dir,
    keyring: built.keyring,
    fullKeyring: built.fullKeyring,
    fingerprint: built.fingerprint,
    suites: built.suites,
    packages: built.packages,
    pkg(name, version) {
      const found = built.packages.filter(
        (p) => p.name === name && (version === undefined || p.version === version),
      );
      if (found.length !== 1)
        throw new Error(`the fixture has ${found.length} packages ${name}${version ? ` ${version}` : ""}`);
      return found[0]!;
    },
    view(variant = "good") {
      const token = `v${++views}-${variant}`;
      const log = { variant, paths: [] as string[] };
      logs.set(token, log);
      const base = `${url}/${token}`;
      return {
        variant,
        url: base,
        mirrors: { debian: [`${base}/debian`], "debian-security": [`${base}/debian-security`] },
        requests: () => [...log.paths],
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function respond(
  built: Built,
  logs: Map<string, { variant: Variant; paths: string[] }>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const pathname = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
  const m = /^\/([^/]+)\/(.+)$/.exec(pathname);
  const log = m ? logs.get(m[1]!) : undefined;
  // Only the two archive roots are served (never the keys beside them).
  if (!m || !log || !/^debian(-security)?\//.test(m[2]!) || m[2]!.split("/").includes("..")) {
    res.writeHead(404).end("not found");
    return;
  }
  const rel = m[2]!;
  log.paths.push(rel);
  let body = built.overrides.get(rel)?.[log.variant];
  if (body === undefined) {
    try {
      const file = path.join(built.dir, rel);
      if (!(await fsp.stat(file)).isFile()) throw new Error("not a file");
      body = await fsp.readFile(file);
    } catch {
      res.writeHead(404).end("not found");
      return;
    }
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
  res.end(body);
}
