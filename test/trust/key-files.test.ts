// Key files a user gets wrong: a signing key they may not read (run as nobody, since root
// reads everything) and a private key given where the public one is due. Each is NIFTY731
// saying what is wrong with the file, before anything is sent to a registry.
import test from "ava";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NiftyError } from "../../src/diagnostics/errors.ts";
import { generateSigningKey, loadPublicKey } from "../../src/trust/keys.ts";
import { requireParts } from "../support/skip.ts";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");
const NOBODY = 65534;

function asNobodyUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root, to run niftyc as nobody (root may read any file)";
  if (spawnSync("sh", ["-c", "command -v setpriv"]).status !== 0)
    return "setpriv is not installed (util-linux)";
  const reach = spawnSync("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "--",
    "test",
    "-r",
    NIFTYC,
  ]);
  if (reach.status !== 0) return `nobody cannot read ${NIFTYC}: the checkout must be readable by other users`;
  return undefined;
}

function scratch(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-key-files-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  return dir;
}

test("a signing key the user may not read is NIFTY731 naming EACCES, not an internal error", async (t) => {
  if (!requireParts(t, "an unreadable signing key", asNobodyUnavailable())) return;
  const dir = scratch(t);
  const { privatePem } = await generateSigningKey(undefined);
  writeFileSync(join(dir, "root.key"), privatePem, { mode: 0o600 });
  // Nothing listens on port 9: a key that were read would fail later, at the registry.
  const r = spawnSync(
    "setpriv",
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "--",
      process.execPath,
      NIFTYC,
      "sign",
      "127.0.0.1:9/team/app:1",
      "--insecure",
      "--key",
      "root.key",
    ],
    {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
      timeout: 60_000,
    },
  );
  t.is(r.status, 1, r.stderr);
  t.regex(
    r.stderr,
    /^niftyc: error: root\.key is not a usable signing key: cannot read it \(EACCES\) \[NIFTY731\]$/m,
  );
  t.regex(r.stderr, /hint: run niftyc as the key's owner/);
  t.notRegex(r.stderr, /\n\s+at |internal error|nothing was published/);
});

test("a private key given as the public key is NIFTY731 'not a PEM public key', not an OpenSSL code", async (t) => {
  const dir = scratch(t);
  const { privatePem } = await generateSigningKey(Buffer.from("a passphrase"));
  const file = join(dir, "cosign.key");
  writeFileSync(file, privatePem, { mode: 0o600 });
  const error = await t.throwsAsync(() => loadPublicKey(file, "cosign.key"), { instanceOf: NiftyError });
  t.is(error?.code, "NIFTY731");
  t.is(error?.message, "cosign.key is not a usable public key: not a PEM public key");
  const missing = await t.throwsAsync(() => loadPublicKey(join(dir, "none.pub"), "none.pub"));
  t.is(missing?.message, "none.pub is not a usable public key: ENOENT");
});

test("keygen-signing into a directory that does not exist is NIFTY731, not an internal error", (t) => {
  const dir = scratch(t);
  const r = spawnSync(process.execPath, [NIFTYC, "keygen-signing", "missing/dir/cosign", "--no-passphrase"], {
    cwd: dir,
    encoding: "utf8",
    timeout: 60_000,
  });
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^niftyc: error: cannot write missing\/dir\/cosign\.key: ENOENT \[NIFTY731\]$/m);
  t.notRegex(r.stderr, /\n\s+at |internal error/);
});

test("keygen-signing --no-passphrase with --key-passphrase is a usage error, and no unencrypted key is written", (t) => {
  const dir = scratch(t);
  const r = spawnSync(
    process.execPath,
    [NIFTYC, "keygen-signing", "cosign", "--no-passphrase", "--key-passphrase", "env:KEY_PASS"],
    { cwd: dir, encoding: "utf8", env: { ...process.env, KEY_PASS: "a passphrase" }, timeout: 60_000 },
  );
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /--no-passphrase writes the key unencrypted: not with --key-passphrase/);
  t.false(existsSync(join(dir, "cosign.key")), "no key was written");
});
