// --out is replaced whole when a build publishes, so it may name only what a build wrote, an
// empty directory or a new one: never the user's files, the recipe beside them, or the store.
import test from "ava";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { setTimeout } from "node:timers/promises";
import { join } from "node:path";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");

function workDir(t: { teardown(f: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-out-dir-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "box.nifty"), "DIR /srv\nFILE /etc/os-release <<EOF\nID=box\nEOF\n");
  writeFileSync(join(dir, "notes.txt"), "mine\n");
  return dir;
}

function build(dir: string, ...args: string[]) {
  return spawnSync(process.execPath, [NIFTYC, "build", "box.nifty", "--format", "rootfs", ...args], {
    cwd: dir,
    encoding: "utf8",
    timeout: 60_000,
  });
}

test("--out naming the recipe's own directory is refused before anything is written, and nothing goes", (t) => {
  const dir = workDir(t);
  const result = build(dir, "--cache", join(dir, "cache"), "--out", ".");
  t.is(result.status, 1, result.stderr);
  t.regex(result.stderr, /the output directory .* cannot be replaced: it holds the recipe .*\[NIFTY217\]/);
  t.true(existsSync(join(dir, "box.nifty")));
  t.is(readFileSync(join(dir, "notes.txt"), "utf8"), "mine\n");
  t.notRegex(result.stderr, /\[1\/\d+\]/, "refused before any step ran");
});

test("--out naming a directory of someone's files is refused, and --json says so", (t) => {
  const dir = workDir(t);
  mkdirSync(join(dir, "thesis"));
  writeFileSync(join(dir, "thesis", "chapter1.txt"), "years of work\n");
  const result = build(dir, "--cache", join(dir, "cache"), "--out", "thesis", "--json");
  t.is(result.status, 1, result.stderr);
  t.like(JSON.parse(result.stdout), { diagnostics: [{ code: "NIFTY217" }] });
  t.regex(result.stderr, /holds files no build wrote \(chapter1\.txt\)/);
  t.is(readFileSync(join(dir, "thesis", "chapter1.txt"), "utf8"), "years of work\n");
});

test("--out through a symlink loop or below a file is NIFTY217 saying so, not an internal error", (t) => {
  const dir = workDir(t);
  symlinkSync("loop-b", join(dir, "loop-a"));
  symlinkSync("loop-a", join(dir, "loop-b"));
  for (const [out, why] of [
    ["loop-a", /its path goes round a loop of symbolic links/],
    ["loop-a/x", /its path goes round a loop of symbolic links/],
    ["notes.txt", /it is a file, not a directory/],
    ["notes.txt/x", /a part of its path is a file, not a directory/],
  ] as const) {
    const result = build(dir, "--cache", join(dir, "cache"), "--out", out);
    t.is(result.status, 1, result.stderr);
    t.regex(result.stderr, /the output directory .* cannot be replaced: .*\[NIFTY217\]/, out);
    t.regex(result.stderr, why, out);
    t.notRegex(result.stderr, /internal error/, out);
  }
  t.is(readFileSync(join(dir, "notes.txt"), "utf8"), "mine\n");
});

test("--out holding the cache is refused", (t) => {
  const dir = workDir(t);
  const result = build(dir, "--cache", join(dir, "out", "cache"), "--out", "out");
  t.is(result.status, 1, result.stderr);
  t.regex(result.stderr, /it holds the cache .*\[NIFTY217\]/);
});

test("an empty directory, a new one, and a build's own output are replaced as before", (t) => {
  const dir = workDir(t);
  mkdirSync(join(dir, "empty"));
  for (const out of ["empty", "new", "new"]) {
    const result = build(dir, "--cache", join(dir, "cache"), "--out", out);
    t.is(result.status, 0, result.stderr);
    t.true(existsSync(join(dir, out, "build.json")));
  }
});

test("the up-to-date short cut does not restore over files that took the output directory's place", async (t) => {
  const dir = workDir(t);
  // The store outside the recipe's directory, whose listing is an input: a store made in it changes it.
  const cache = mkdtempSync(join(tmpdir(), "niftyc-out-dir-cache-"));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  // A build trusts no input changed within the last second, and leaves no stamp then.
  await setTimeout(1100);
  // A warm build into a fresh out/, of blobs older than a second, leaves a stamp that can restore it.
  for (const wait of [1100, 0]) {
    const built = build(dir, "--cache", cache, "--out", "out", "--json");
    t.is(built.status, 0, built.stderr);
    await setTimeout(wait);
    rmSync(join(dir, "out"), { recursive: true });
  }
  const restored = build(dir, "--cache", cache, "--out", "out", "--json");
  t.deepEqual(
    (JSON.parse(restored.stdout) as { stages: Array<{ name: string }> }).stages.map((s) => s.name),
    ["restored"],
    "the short cut restores a removed output directory",
  );
  rmSync(join(dir, "out"), { recursive: true });
  mkdirSync(join(dir, "out"));
  writeFileSync(join(dir, "out", "draft.txt"), "mine\n");
  const again = build(dir, "--cache", cache, "--out", "out", "--json");
  t.is(again.status, 1, again.stderr);
  t.regex(again.stderr, /\[NIFTY217\]/);
  t.is(readFileSync(join(dir, "out", "draft.txt"), "utf8"), "mine\n");
});

test("several platforms: the top directory is guarded too, and a build's own is replaced", (t) => {
  const dir = workDir(t);
  const platforms = ["--platform", "linux/amd64,linux/arm64"];
  const first = build(dir, "--cache", join(dir, "cache"), "--out", "multi", ...platforms);
  t.is(first.status, 0, first.stderr);
  t.true(existsSync(join(dir, "multi", "linux-arm64", "build.json")));
  const again = build(dir, "--cache", join(dir, "cache"), "--out", "multi", ...platforms);
  t.is(again.status, 0, again.stderr);
  mkdirSync(join(dir, "mine"));
  writeFileSync(join(dir, "mine", "keep.txt"), "mine\n");
  const refused = build(dir, "--cache", join(dir, "cache"), "--out", "mine", ...platforms);
  t.is(refused.status, 1, refused.stderr);
  t.regex(refused.stderr, /\[NIFTY217\]/);
  t.is(readFileSync(join(dir, "mine", "keep.txt"), "utf8"), "mine\n");
});
