// Options a command spells otherwise than another (or than docker): push signs with --sign KEY,
// sign and verify take --key, and a password is read only from standard input. The mistake is
// a usage error that names the option meant, before anything is read or sent.
import test from "ava";
import { main } from "../../src/cli/main.ts";
import type { CliIo } from "../../src/cli/io.ts";

async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const io: CliIo = {
    stdout: { write: () => true, isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: {},
    cwd: "/",
  };
  const code = await main(argv, io);
  return { code, stderr };
}

const REF = "127.0.0.1:9/team/app:1";

for (const [argv, unknown, meant] of [
  [["push", "out/app", REF, "--key", "cosign.key"], "--key", "--sign"],
  [["sign", REF, "--sign", "cosign.key"], "--sign", "--key"],
  [["verify", REF, "--recipe", "app.nifty", "--sign", "cosign.pub"], "--sign", "--key"],
  [["push", "out/app", REF, "--username", "me", "--password", "pw"], "--password", "--password-stdin"],
  [["push", "out/app", REF, "--username", "me", "-p", "pw"], "-p", "--password-stdin"],
] as const) {
  test(`${argv[0]} ${unknown}: a usage error that names ${meant}`, async (t) => {
    const r = await run([...argv]);
    t.is(r.code, 2, r.stderr);
    t.true(r.stderr.startsWith(`niftyc: Unknown option '${unknown}' — did you mean ${meant}?\n`), r.stderr);
  });
}

test("an option no command spells that way still gets no suggestion", async (t) => {
  const r = await run(["sign", REF, "--frobnicate", "x"]);
  t.is(r.code, 2);
  t.true(r.stderr.startsWith("niftyc: Unknown option '--frobnicate'\n"), r.stderr);
});

test("push --help and sign --help name cosign's key format, the one keygen-signing writes", async (t) => {
  const { PUSH_HELP, SIGN_HELP } = await import("../../src/cli/usage.ts");
  for (const help of [PUSH_HELP, SIGN_HELP])
    t.regex(help.replace(/\s+/g, " "), /cosign's format,? \(?as keygen-signing writes/);
});
