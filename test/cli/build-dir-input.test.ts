// run and instances given a build directory: flags that only shape a build are refused rather
// than dropped without a word, and a directory holding a recipe (a Niftyfile) is built, not
// taken for a build directory. verify, whose provenance fixes the platforms, takes no --platform.
import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NIFTYC = join(import.meta.dirname, "../../bin/niftyc");
const niftyc = (cwd: string, ...args: string[]) =>
  spawnSync(process.execPath, [NIFTYC, ...args], { cwd, encoding: "utf8", timeout: 120_000 });
const RECIPE = "FILE /etc/os-release <<EOF\nID=box\nEOF\n";

test("a build directory with flags that only shape a build: exit 2, naming each, before anything runs", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-build-dir-input-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "box.nifty"), RECIPE);
  const built = niftyc(dir, "build", "box.nifty", "--cache", "c", "-q");
  t.is(built.status, 0, built.stderr);

  const limit = niftyc(dir, "run", "out/box", "--limit", "files=1", "--", "/bin/true");
  t.is(limit.status, 2, limit.stderr);
  t.regex(
    limit.stderr,
    /^niftyc: --limit only shapes a build, and out\/box is a build directory, already built: drop it/m,
  );
  const two = niftyc(dir, "run", "out/box", "--secret", "a=env:X", "--strict", "--", "/bin/true");
  t.is(two.status, 2, two.stderr);
  t.regex(two.stderr, /--secret, --strict only shape a build/);
  const out = niftyc(dir, "run", "out/box", "--out", "elsewhere", "--", "/bin/true");
  t.is(out.status, 2, out.stderr);
  t.regex(out.stderr, /--out only shapes a build/);
  const instances = niftyc(dir, "instances", "out/box", "--count", "1", "--out", "i", "--cache", "c");
  t.is(instances.status, 2, instances.stderr);
  t.regex(instances.stderr, /--cache only shapes a build/);
  t.false(existsSync(join(dir, "i")), "nothing was written");
  // instances' own --out is no build flag.
  const fine = niftyc(dir, "instances", "out/box", "--count", "1", "--out", "i");
  t.is(fine.status, 0, fine.stderr);
});

test("instances of a directory holding a Niftyfile builds it, as build and run take it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-build-dir-input-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "app"));
  writeFileSync(join(dir, "app", "Niftyfile"), RECIPE);
  const r = niftyc(dir, "instances", "app", "--count", "1", "--out", "i", "--cache", "c", "-q");
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^wrote 1 instance of nifty \(nifty-1\) in i/m);
  t.true(existsSync(join(dir, "out", "nifty", "build.json")), "built into out/nifty first");
  // A directory with neither a recipe nor a build.json is still answered as a build directory.
  mkdirSync(join(dir, "empty"));
  const empty = niftyc(dir, "instances", "empty", "--count", "1", "--out", "j");
  t.is(empty.status, 1, empty.stderr);
  t.regex(empty.stderr, /empty is not a build directory \(no readable build\.json\) \[NIFTY420\]/);
});

test("verify takes the platforms from the provenance: --platform is no option of it, not one it ignores", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-build-dir-input-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "box.nifty"), RECIPE);
  t.is(niftyc(dir, "build", "box.nifty", "--cache", "c", "-q").status, 0);
  const r = niftyc(dir, "verify", "out/box", "--recipe", "box.nifty", "--platform", "linux/arm64");
  t.is(r.status, 2, r.stderr);
  t.regex(r.stderr, /Unknown option '--platform'/);
  const plain = niftyc(dir, "verify", "out/box", "--recipe", "box.nifty");
  t.is(plain.status, 0, plain.stderr);
  t.regex(plain.stdout, /^reproduced: sha256:/m);
});

test("an edited build.json (null, a config of the wrong shape, a name with ../) is refused by run, instances and install, never a TypeError", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "niftyc-build-json-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "box.nifty"), RECIPE);
  const built = niftyc(dir, "build", "box.nifty", "--cache", "c", "-q", "--format", "rootfs,nspawn");
  t.is(built.status, 0, built.stderr);
  const original = JSON.parse(readFileSync(join(dir, "out/box/build.json"), "utf8"));
  // install --root reads the name and digest alone; run, instances and install here the config too.
  const edits: Array<[string, unknown, RegExp, boolean]> = [
    ["null", null, /build\.json has no name, digest or config/, true],
    [
      "no env",
      { ...original, config: { ...original.config, env: null } },
      /no name, digest or config/,
      false,
    ],
    ["{} config", { ...original, config: {} }, /no name, digest or config/, false],
    ["no stop signal", { ...original, config: { ...original.config, stopSignal: null } }, /no name/, false],
    [
      "a bind without its paths",
      { ...original, config: { ...original.config, binds: [{ hostPath: 1 }] } },
      /no name, digest or config/,
      false,
    ],
    [
      "../ name",
      { ...original, name: "../../evil" },
      /names the image "\.\.\/\.\.\/evil", which cannot name a machine/,
      true,
    ],
  ];
  mkdirSync(join(dir, "root"));
  for (const [what, record, message, install] of edits) {
    writeFileSync(join(dir, "out/box/build.json"), JSON.stringify(record));
    const commands: Array<[string[], string]> = [
      [["run", "out/box", "--tree-cache", "trees", "--", "/bin/true"], "NIFTY759"],
      [["instances", "out/box", "--count", "1", "--out", "inst"], "NIFTY420"],
    ];
    // On this host install judges the binds, so it reads the config as run does.
    commands.push([["install", "out/box", "--machines-dir", "m", "--settings-dir", "s"], "NIFTY300"]);
    if (install) commands.push([["install", "out/box", "--root", "root"], "NIFTY300"]);
    for (const [args, code] of commands) {
      const r = niftyc(dir, ...args);
      t.is(r.status, 1, `${what}, ${args[0]}: ${r.stderr}`);
      t.regex(r.stderr, message, `${what}, ${args[0]}`);
      t.regex(r.stderr, new RegExp(`\\[${code}\\]`), `${what}, ${args[0]}`);
      t.notRegex(r.stderr, /internal error/);
    }
  }
  t.false(existsSync(join(dir, "inst")), "nothing was written");
  t.false(existsSync(join(dir, "m")), "nothing was installed");
});
