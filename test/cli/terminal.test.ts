// The password prompt on a real terminal: script(1) gives the CLI a pty; the
// typed password is not echoed, and the build goes on with it.
import test from "ava";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");

test("at a terminal, build asks for a missing password twice without echoing it", async (t) => {
  if (spawnSync("sh", ["-c", "command -v script"]).status !== 0) {
    if (process.env.CI) t.fail("script (util-linux) is not installed");
    else t.log("SKIPPED outside CI: script (util-linux) is not installed");
    t.pass();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "niftyc-tty-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "r.nifty"), "FILE /etc/os-release <<EOF\nID=t\nEOF\nFILE /bin/sh MODE 0755 <<EOF\nx\nEOF\nUSER luser UID 1000 SHELL /bin/sh PASSWORD secret:pw\n");
  const command = `${join(ROOT, "node_modules/.bin/node")} ${join(ROOT, "bin/niftyc")} build r.nifty --cache c --out o --format rootfs -q`;
  const child = spawn("script", ["-qfc", command, "/dev/null"], { cwd: dir, env: { ...process.env, NO_COLOR: "1" } });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
    // Answer each prompt as it appears, as a person would.
    if (/Password for the secret "pw": $/.test(output) || /Again: $/.test(output)) child.stdin.write("s3cret-typed\r");
  });
  const code = await new Promise<number | null>((done) => child.once("close", done));
  t.is(code, 0, output);
  t.regex(output, /Password for the secret "pw": /);
  t.regex(output, /built r: sha256:[0-9a-f]{64}/);
  t.notRegex(output, /s3cret-typed/, "the password is not echoed");
});
