// An --offline build on a machine whose store lacks the lock's .debs (the air-gapped case) lists
// every missing file at once, each at its lock line, not the first one per build.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runMain } from "../support/cli.ts";
import { mirrorFlags, requireArchive } from "../support/debian-archive.ts";
import { buildAppRootfs, twoSuiteProject } from "../support/package-project.ts";

test("an --offline build lists every locked .deb missing from the store, each at its SHA256 line", async (t) => {
  if (!requireArchive(t)) return;
  // nifty-app depends on nifty-lib: two packages, from two suites.
  const { dir, archive } = await twoSuiteProject(t, "niftyc-offline-missing-", "PACKAGE nifty-app\n");
  const view = archive.view();
  const first = await buildAppRootfs(dir, view);
  t.is(first.code, 0, first.stderr);
  const lock = readFileSync(join(dir, "app.nifty.lock"), "utf8");
  const stanzas = lock.split("\n\n").filter((s) => s.startsWith("Package: "));
  t.true(stanzas.length >= 2, lock);
  const before = view.requests().length;
  const r = await runMain(
    [
      "build",
      "app.nifty",
      "--offline",
      "--locked",
      "--cache",
      "fresh",
      "--out",
      "o2",
      "--format",
      "rootfs",
      ...mirrorFlags(view),
    ],
    dir,
  );
  t.is(r.code, 1, r.stderr);
  const lines = lock.split("\n");
  for (const stanza of stanzas) {
    const name = /^Package: (.*)$/m.exec(stanza)![1]!;
    const sha = /^SHA256: (.*)$/m.exec(stanza)![1]!;
    const line = lines.indexOf(`SHA256: ${sha}`) + 1;
    t.regex(
      r.stderr,
      new RegExp(
        `app\\.nifty\\.lock:${line}:1: error: ${name}_[^ ]+\\.deb \\(pool/[^ ]+, sha256:${sha}\\) is not in the cache, and offline mode forbids downloading it \\[NIFTY102\\]`,
      ),
      name,
    );
  }
  t.regex(r.stderr, new RegExp(`${stanzas.length} errors`));
  t.deepEqual(view.requests().slice(before), [], "nothing was downloaded");
});
