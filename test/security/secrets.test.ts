// Secrets and credentials: a password secret is length-bounded before it is
// hashed, and a password inside a source URL is never shown.
import test from "ava";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { formatDiagnostic, diagnosticsToJson } from "../../src/diagnostics/format.ts";
import { hostileServer, announces } from "./server.ts";
import { tempDir, tryBuild } from "./helpers.ts";
import { runMain } from "../support/cli.ts";

test("a 1 MB password secret is NIFTY807 at once, not hours of hashing", async (t) => {
  t.timeout(30_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const recipe = path.join(dir, "pw.nifty");
  await fsp.writeFile(recipe, "USER luser PASSWORD secret:pw\n");
  const outcome = await tryBuild(recipe, dir, { secrets: new Map([["pw", Buffer.alloc(1 << 20, "a")]]) });
  t.false(outcome.ok);
  if (!outcome.ok)
    t.deepEqual(
      outcome.errors.map((e) => e.code),
      ["NIFTY807"],
    );
});

test("a password in a source URL appears in no message, line or JSON of a failed fetch", async (t) => {
  t.timeout(60_000);
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  const server = await hostileServer(announces(-1));
  t.teardown(() => server.close());
  const url = server.url.replace("http://", "http://alice:hunter2secret@");
  const recipe = path.join(dir, "cred.nifty");
  await fsp.writeFile(recipe, `FETCH file ${url}/file sha256:${"0".repeat(64)} TO /srv/file\n`);
  const outcome = await tryBuild(recipe, dir, { offline: false, fetchTimeoutMs: 5_000 });
  t.false(outcome.ok);
  if (outcome.ok) return;
  const shown =
    outcome.errors.map((d) => formatDiagnostic(d, { color: false })).join("\n") +
    JSON.stringify(diagnosticsToJson(outcome.errors));
  t.true(
    outcome.errors.some((d) => d.code === "NIFTY103"),
    shown,
  );
  t.false(shown.includes("hunter2secret"), shown);
  t.regex(shown, /http:\/\/\*\*\*@127\.0\.0\.1/);
});

test("--secret from a file that never ends (/dev/zero) stops at 1 MiB with NIFTY212; an empty file or variable name is a usage error", async (t) => {
  const dir = await tempDir();
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }));
  await fsp.writeFile(path.join(dir, "box.nifty"), "DIR /srv\n");
  const build = (secret: string) =>
    runMain(["build", "box.nifty", "--cache", "cache", "--out", "out", "-q", "--secret", secret], dir);
  const zero = await build("pw=/dev/zero");
  t.is(zero.code, 1, zero.stderr);
  t.regex(zero.stderr, /--secret pw: cannot read \/dev\/zero: it has more than 1 MiB.*\[NIFTY212\]/);
  for (const [secret, what] of [
    ["pw=", "file"],
    ["pw=env:", "variable"],
  ]) {
    const r = await build(secret!);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, new RegExp(`--secret ${secret} names no ${what}: give pw=FILE or pw=env:VARIABLE`));
  }
});
