// Tampered locks against the local signed archive: a lock is a file anyone can
// edit, and each edit below used to build an image holding another package
// than the lock and the SBOM say. Each is now refused at the lock's line.
import test from "ava";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { debianArchive, requireArchive, type ArchiveView, mirrorFlags } from "../support/debian-archive.ts";
import { buildAppRootfs, twoSuiteProject } from "../support/package-project.ts";
import { openStore } from "../../src/cache/store.ts";

const niftyc = (dir: string, argv: string[]) => runMain(argv, dir);

/** A project whose lock was made against the good archive, with its store in c/. */
async function locked(
  t: import("ava").ExecutionContext,
  body: string,
): Promise<{ dir: string; lock: string; view: ArchiveView }> {
  const { dir, archive } = await twoSuiteProject(t, "niftyc-lock-tamper-", body);
  const view = archive.view();
  const r = await buildAppRootfs(dir, view);
  t.is(r.code, 0, r.stderr);
  return { dir, lock: readFileSync(join(dir, "app.nifty.lock"), "utf8"), view };
}

/** The lock's stanza of `name`, edited by `edit`. */
function editStanza(lock: string, name: string, edit: (stanza: string) => string): string {
  const parts = lock.split("\n\n");
  const i = parts.findIndex((p) => p.startsWith(`Package: ${name}\n`));
  if (i < 0) throw new Error(`no stanza for ${name}`);
  parts[i] = edit(parts[i]!);
  return parts.join("\n\n");
}

function lineOf(text: string, re: RegExp): number {
  return text.split("\n").findIndex((l) => re.test(l)) + 1;
}

const lockedBuild = (dir: string, view: ArchiveView, cache: string) =>
  niftyc(dir, [
    "build",
    "app.nifty",
    "--locked",
    "--cache",
    cache,
    "--out",
    "o2",
    "--format",
    "rootfs",
    ...mirrorFlags(view),
  ]);

test("a lock stanza whose SHA256, Size and Filename point at another package's .deb is refused at its SHA256 line", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, lock, view } = await locked(t, "PACKAGE nifty-pager\n");
  const other = (await debianArchive()).pkg("nifty-data");
  const tampered = editStanza(lock, "nifty-pager", (s) =>
    s
      .replace(/^Filename: .*$/m, `Filename: ${other.filename}`)
      .replace(/^Size: .*$/m, `Size: ${other.size}`)
      .replace(/^SHA256: .*$/m, `SHA256: ${other.sha256.slice(7)}`),
  );
  writeFileSync(join(dir, "app.nifty.lock"), tampered);
  // A fresh store, as CI's would be: the .deb is downloaded by the lock's digest, and its control read.
  const r = await lockedBuild(dir, view, "c2");
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `app\\.nifty\\.lock:${lineOf(tampered, /^SHA256: /)}:1: error: the \\.deb this stanza pins .* is nifty-data .*not nifty-pager .*\\[NIFTY629\\]`,
    ),
  );
  t.notRegex(r.stderr, /internal error/);
});

test("a lock stanza whose Version was edited is refused at its Version line", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, lock, view } = await locked(t, "PACKAGE nifty-pager\n");
  const tampered = editStanza(lock, "nifty-pager", (s) => s.replace(/^Version: .*$/m, "Version: 9.9-1"));
  writeFileSync(join(dir, "app.nifty.lock"), tampered);
  const r = await lockedBuild(dir, view, "c2");
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `app\\.nifty\\.lock:${lineOf(tampered, /^Version: 9\.9-1/)}:1: error: .*its Version is "1\\.0-1" \\[NIFTY629\\]`,
    ),
  );
});

test("a lock stanza whose Package was renamed, with its digest, is refused", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, lock, view } = await locked(t, "PACKAGE nifty-pager\n");
  const tampered = lock
    .replace(/^Requests:\n nifty-pager$/m, "Requests:\n nifty-data")
    .replace(/^Package: nifty-pager$/m, "Package: nifty-data")
    .replace(/^Requested-By: nifty-pager$/m, "Requested-By: nifty-data");
  writeFileSync(
    join(dir, "app.nifty"),
    readFileSync(join(dir, "app.nifty"), "utf8").replace("PACKAGE nifty-pager", "PACKAGE nifty-data"),
  );
  writeFileSync(join(dir, "app.nifty.lock"), tampered);
  const r = await lockedBuild(dir, view, "c");
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /is nifty-pager 1\.0-1 \(amd64\), not nifty-data .*\[NIFTY629\]/);
});

test("a stanza no PACKAGE line needs, added to the lock, is refused at its Package line", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, lock, view } = await locked(t, "PACKAGE nifty-pager\n");
  const extra = (await debianArchive()).pkg("nifty-data");
  const stanza = [
    `Package: ${extra.name}`,
    `Version: ${extra.version}`,
    `Architecture: ${extra.architecture}`,
    "Suite: debian bookworm main",
    `Filename: ${extra.filename}`,
    `Size: ${extra.size}`,
    `SHA256: ${extra.sha256.slice(7)}`,
    "Requested-By: nifty-pager",
  ].join("\n");
  // Before nifty-pager's stanza, as the lock's sort order puts it.
  const tampered = lock.replace("Package: nifty-pager", `${stanza}\n\nPackage: nifty-pager`);
  writeFileSync(join(dir, "app.nifty.lock"), tampered);
  const r = await lockedBuild(dir, view, "c");
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `app\\.nifty\\.lock:${lineOf(tampered, /^Package: nifty-data/)}:1: error: nifty-data 1\\.0-1 \\(all\\) is needed by no PACKAGE line.* \\[NIFTY630\\]`,
    ),
  );
});

test("with the suite's signed index in the store, a stanza naming a version that index does not list is refused (no download for it)", async (t) => {
  if (!requireArchive(t)) return;
  // nifty-app needs nifty-lib (>= 1.0): the lock takes 1.1-1 from the security suite.
  const { dir, lock, view } = await locked(t, "PACKAGE nifty-app\n");
  const old = (await debianArchive()).pkg("nifty-lib", "1.0-1");
  // Roll nifty-lib back to 1.0-1 while still claiming the security suite, whose signed index has only 1.1-1;
  // its .deb is in the store already (as after any build that used it), so nothing else would notice.
  const store = await openStore(join(dir, "c"));
  await store.putFile(old.path, old.sha256);
  const tampered = editStanza(lock, "nifty-lib", (s) =>
    s
      .replace(/^Version: .*$/m, `Version: ${old.version}`)
      .replace(/^Filename: .*$/m, `Filename: ${old.filename}`)
      .replace(/^Size: .*$/m, `Size: ${old.size}`)
      .replace(/^SHA256: .*$/m, `SHA256: ${old.sha256.slice(7)}`),
  );
  t.regex(
    tampered,
    /Package: nifty-lib\nVersion: 1\.0-1\nArchitecture: amd64\nSuite: debian-security bookworm-security main/,
  );
  writeFileSync(join(dir, "app.nifty.lock"), tampered);
  const before = view.requests().length;
  const r = await lockedBuild(dir, view, "c");
  t.is(r.code, 1, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(
      `app\\.nifty\\.lock:${lineOf(tampered, /^Package: nifty-lib$/) + 1}:1: error: nifty-lib 1\\.0-1 \\(amd64\\) is not in the signed index of debian-security bookworm-security .*has 1\\.1-1 \\[NIFTY631\\]`,
    ),
  );
  t.deepEqual(
    view
      .requests()
      .slice(before)
      .filter((p) => /InRelease|Packages/.test(p)),
    [],
    "the index came from the store",
  );
});

test("an untouched lock still builds with --locked, in the store that made it and in a fresh one", async (t) => {
  if (!requireArchive(t)) return;
  const { dir, view } = await locked(t, "PACKAGE nifty-app\n");
  const r = await lockedBuild(dir, view, "c");
  t.is(r.code, 0, r.stderr);
  const fresh = await lockedBuild(dir, view, "c3");
  t.is(fresh.code, 0, fresh.stderr);
});

for (const offline of [false, true]) {
  test(`a SHA256 edited by hand is refused at its line against the stored signed index, before any download${offline ? " (--offline)" : ""}`, async (t) => {
    if (!requireArchive(t)) return;
    const { dir, lock, view } = await locked(t, "PACKAGE nifty-pager\n");
    const bogus = "ab".repeat(32);
    const tampered = editStanza(lock, "nifty-pager", (s) => s.replace(/^SHA256: .*$/m, `SHA256: ${bogus}`));
    writeFileSync(join(dir, "app.nifty.lock"), tampered);
    const before = view.requests().length;
    // The store that made the lock holds the suite's signed index.
    const r = await niftyc(dir, [
      "build",
      "app.nifty",
      "--locked",
      ...(offline ? ["--offline"] : []),
      "--cache",
      "c",
      "--out",
      "o2",
      "--format",
      "rootfs",
      ...mirrorFlags(view),
    ]);
    t.is(r.code, 1, r.stderr);
    t.regex(
      r.stderr,
      new RegExp(
        `app\\.nifty\\.lock:${lineOf(tampered, /^SHA256: /)}:1: error: nifty-pager 1\\.0-1: the lock's SHA256 sha256:${bogus} is not the signed index's sha256:[0-9a-f]{64} .*\\[NIFTY631\\]`,
      ),
    );
    t.notRegex(r.stderr, /NIFTY625|NIFTY102|must be/);
    t.deepEqual(
      view
        .requests()
        .slice(before)
        .filter((p) => p.endsWith(".deb")),
      [],
      "no .deb was asked for",
    );
  });
}
