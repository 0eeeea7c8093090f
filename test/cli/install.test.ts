// niftyc install refuses what is not a build directory, before touching any machine.
import test from "ava";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.ts";

async function run(argv: string[], cwd: string): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const code = await main(argv, { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {}, cwd });
  return { code, stderr };
}

test("install: no build.json, or a build.json without rootfs.tar, is NIFTY300 and installs nothing", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-install-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const machines = join(dir, "machines");
  const empty = await run(["install", ".", "--machines-dir", machines, "--settings-dir", join(dir, "nspawn")], dir);
  t.is(empty.code, 1);
  t.regex(empty.stderr, /is not a build directory \(no readable build\.json\) \[NIFTY300\]/);
  writeFileSync(join(dir, "build.json"), JSON.stringify({ name: "x", digest: "sha256:00", config: {} }));
  const noTar = await run(["install", ".", "--machines-dir", machines, "--settings-dir", join(dir, "nspawn")], dir);
  t.is(noTar.code, 1);
  t.regex(noTar.stderr, /has no rootfs\.tar \[NIFTY300\]/);
  t.deepEqual(readdirSync(dir).sort(), ["build.json"]);
});
