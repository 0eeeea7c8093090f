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
  writeFileSync(
    join(dir, "r.nifty"),
    "FILE /etc/os-release <<EOF\nID=t\nEOF\nFILE /bin/sh MODE 0755 <<EOF\nx\nEOF\nUSER luser UID 1000 SHELL /bin/sh PASSWORD secret:pw\n",
  );
  const command = `${join(ROOT, "node_modules/.bin/node")} ${join(ROOT, "bin/niftyc")} build r.nifty --cache c --out o --format rootfs -q`;
  const child = spawn("script", ["-qfc", command, "/dev/null"], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: "1" },
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
    // Answer each prompt as it appears, as a person would.
    if (/Password for the secret "pw": $/.test(output) || /Again: $/.test(output))
      child.stdin.write("s3cret-typed\r");
  });
  const code = await new Promise<number | null>((done) => child.once("close", done));
  t.is(code, 0, output);
  t.regex(output, /Password for the secret "pw": /);
  t.regex(output, /built r: sha256:[0-9a-f]{64}/);
  t.notRegex(output, /s3cret-typed/, "the password is not echoed");
});

/** Runs a build of a recipe needing the secret "pw" at a pseudo-terminal; `answer` types at each prompt. */
async function atTerminal(
  t: import("ava").ExecutionContext,
  answer: (prompt: "first" | "again", count: number) => string,
): Promise<{ code: number | null; output: string } | undefined> {
  if (spawnSync("sh", ["-c", "command -v script"]).status !== 0) {
    if (process.env.CI) t.fail("script (util-linux) is not installed");
    else t.log("SKIPPED outside CI: script (util-linux) is not installed");
    t.pass();
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), "niftyc-tty-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "r.nifty"),
    "FILE /bin/sh MODE 0755 <<EOF\nx\nEOF\nUSER luser UID 1000 SHELL /bin/sh PASSWORD secret:pw\n",
  );
  const command = `${join(ROOT, "node_modules/.bin/node")} ${join(ROOT, "bin/niftyc")} build r.nifty --cache c --out o --format rootfs -q`;
  // -e: script exits with the command's status.
  const child = spawn("script", ["-qefc", command, "/dev/null"], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: "1" },
  });
  let output = "";
  let prompts = 0;
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
    if (/Password for the secret "pw": $/.test(output)) child.stdin.write(answer("first", ++prompts));
    else if (/Again: $/.test(output)) child.stdin.write(answer("again", ++prompts));
  });
  const code = await new Promise<number | null>((done) => child.once("close", done));
  return { code, output };
}

test("at a terminal, two passwords that differ are told apart, asked again, and three such tries end with NIFTY214", async (t) => {
  const run = await atTerminal(t, (prompt, n) => (prompt === "first" ? "one\r" : `other-${n}\r`));
  if (!run) return;
  t.is(run.code, 1, run.output);
  t.is(run.output.match(/Password for the secret "pw": /g)?.length, 3);
  t.is(run.output.match(/the passwords do not match/g)?.length, 3, run.output);
  t.regex(run.output, /error: the passwords typed for the secret "pw" did not match in 3 tries \[NIFTY214\]/);
  t.notRegex(run.output, /no password was given/);
  t.notRegex(run.output, /one|other-/, "the passwords are not echoed");
});

test("Ctrl-C at the password prompt exits 130 with `interrupted` and nothing about usage", async (t) => {
  const run = await atTerminal(t, () => "\u0003");
  if (!run) return;
  t.is(run.code, 130, run.output);
  t.regex(run.output, /niftyc: interrupted\r?\n/);
  t.notRegex(run.output, /--help|usage/i);
  t.notRegex(run.output, /error/);
});
